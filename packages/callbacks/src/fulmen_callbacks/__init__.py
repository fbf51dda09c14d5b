"""fulmen-callbacks: the callbacks Lightning turns on by default, with Lightning's arguments and output.

``TQDMProgressBar`` draws the progress bars, ``ModelSummary`` prints the layer table when fit starts,
and ``summarize`` returns that table as numbers. tqdm is imported when the first bar is drawn, not here.
"""

from fulmen_callbacks._progress import TQDMProgressBar, format_metric, format_metrics, get_standard_metrics
from fulmen_callbacks._summary import (
    LayerSummary,
    ModelSummary,
    Summary,
    get_formatted_model_size,
    get_human_readable_count,
    summarize,
)
from fulmen_callbacks._version import __version__

__all__ = [
    "LayerSummary",
    "ModelSummary",
    "Summary",
    "TQDMProgressBar",
    "__version__",
    "format_metric",
    "format_metrics",
    "get_formatted_model_size",
    "get_human_readable_count",
    "get_standard_metrics",
    "summarize",
]
