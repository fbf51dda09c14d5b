"""fulmen-loops: the fit, evaluation and prediction loops, and the ``Runner`` that drives them."""

from fulmen_loops._callbacks import CallbackList
from fulmen_loops._evaluation import EvaluationLoop
from fulmen_loops._fit import FitLoop
from fulmen_loops._optim import parse_optimizers
from fulmen_loops._precision import Precision, canonical_precision
from fulmen_loops._prediction import PredictionLoop
from fulmen_loops._profilers import AdvancedProfiler, PassThroughProfiler, PyTorchProfiler, SimpleProfiler
from fulmen_loops._results import MetricStore, is_torchmetrics_metric
from fulmen_loops._runner import Runner, RunState
from fulmen_loops._settings import LoopSettings
from fulmen_loops._strategy import SingleDeviceStrategy
from fulmen_loops._version import __version__

__all__ = [
    "AdvancedProfiler",
    "CallbackList",
    "EvaluationLoop",
    "FitLoop",
    "LoopSettings",
    "MetricStore",
    "PassThroughProfiler",
    "Precision",
    "PredictionLoop",
    "PyTorchProfiler",
    "RunState",
    "Runner",
    "SimpleProfiler",
    "SingleDeviceStrategy",
    "__version__",
    "canonical_precision",
    "is_torchmetrics_metric",
    "parse_optimizers",
]
