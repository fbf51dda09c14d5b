"""fulmen-callbacks: Lightning's callbacks, with Lightning's arguments, behaviour and output.

``TQDMProgressBar`` draws the progress bars, ``ModelSummary`` prints the layer table when fit starts,
and ``summarize`` returns that table as numbers. tqdm is imported when the first bar is drawn, not here.
``EarlyStopping``, ``LearningRateMonitor``, ``Timer``, ``GradientAccumulationScheduler`` and
``LambdaCallback`` are the callbacks users add themselves. ``LearningRateFinder`` and
``BatchSizeFinder`` tune the learning rate and batch size when fit starts (``fulmen.tuner.Tuner``
runs them on their own); ``LRFinderResult.plot`` needs matplotlib, imported only there.
"""

from fulmen_callbacks._accumulation import GradientAccumulationScheduler
from fulmen_callbacks._batch_size_finder import BatchSizeFinder
from fulmen_callbacks._early_stopping import EarlyStopping, EarlyStoppingReason
from fulmen_callbacks._lambda import LambdaCallback
from fulmen_callbacks._lr_finder import LearningRateFinder, LRFinderResult
from fulmen_callbacks._lr_monitor import LearningRateMonitor
from fulmen_callbacks._model_checkpoint import ModelCheckpoint
from fulmen_callbacks._progress import TQDMProgressBar, format_metric, format_metrics, get_standard_metrics
from fulmen_callbacks._summary import (
    LayerSummary,
    ModelSummary,
    Summary,
    get_formatted_model_size,
    get_human_readable_count,
    summarize,
)
from fulmen_callbacks._timer import Timer
from fulmen_callbacks._tuning import TunerExitException
from fulmen_callbacks._version import __version__

__all__ = [
    "BatchSizeFinder",
    "EarlyStopping",
    "EarlyStoppingReason",
    "GradientAccumulationScheduler",
    "LRFinderResult",
    "LambdaCallback",
    "LayerSummary",
    "LearningRateFinder",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ModelSummary",
    "Summary",
    "TQDMProgressBar",
    "Timer",
    "TunerExitException",
    "__version__",
    "format_metric",
    "format_metrics",
    "get_formatted_model_size",
    "get_human_readable_count",
    "get_standard_metrics",
    "summarize",
]
