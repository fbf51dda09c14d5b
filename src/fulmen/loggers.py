"""Lightning's ``lightning.pytorch.loggers`` names: ``from fulmen.loggers import CSVLogger``."""

from fulmen_core import Logger
from fulmen_loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

__all__ = ["CSVLogger", "Logger", "MLFlowLogger", "TensorBoardLogger", "WandbLogger"]
