"""Lightning's ``lightning.pytorch.callbacks`` names: ``from fulmen.callbacks import ModelCheckpoint``."""

from fulmen_callbacks import (
    BatchSizeFinder,
    EarlyStopping,
    GradientAccumulationScheduler,
    LambdaCallback,
    LearningRateFinder,
    LearningRateMonitor,
    ModelCheckpoint,
    ModelSummary,
    Timer,
    TQDMProgressBar,
)
from fulmen_core import Callback
from fulmen_export import ExportCallback

__all__ = [
    "BatchSizeFinder",
    "Callback",
    "EarlyStopping",
    "ExportCallback",
    "GradientAccumulationScheduler",
    "LambdaCallback",
    "LearningRateFinder",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ModelSummary",
    "TQDMProgressBar",
    "Timer",
]
