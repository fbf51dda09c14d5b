"""Lightning's ``lightning.pytorch.callbacks`` names: ``from fulmen.callbacks import ModelCheckpoint``."""

from fulmen_callbacks import (
    EarlyStopping,
    GradientAccumulationScheduler,
    LambdaCallback,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    Timer,
    TQDMProgressBar,
)
from fulmen_core import Callback
from fulmen_export import ExportCallback

__all__ = [
    "Callback",
    "EarlyStopping",
    "ExportCallback",
    "GradientAccumulationScheduler",
    "LambdaCallback",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ModelSummary",
    "TQDMProgressBar",
    "Timer",
]
