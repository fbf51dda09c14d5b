"""fulmen-loggers: CSV, TensorBoard, MLflow and Weights & Biases loggers for fulmen's ``Logger`` Protocol.

The backends' libraries (tensorboard, mlflow, wandb) are extras, imported only when a logger uses
them, so ``import fulmen_loggers`` costs little more than torch itself.
"""

from fulmen_loggers._csv import CSVLogger, ExperimentWriter
from fulmen_loggers._mlflow import MLFlowLogger, MLflowLogger
from fulmen_loggers._tensorboard import TensorBoardLogger
from fulmen_loggers._version import __version__
from fulmen_loggers._wandb import WandbLogger

__all__ = [
    "CSVLogger",
    "ExperimentWriter",
    "MLFlowLogger",
    "MLflowLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "__version__",
]
