"""Lightning's ``lightning.pytorch.strategies`` names: ``from fulmen.strategies import FSDPStrategy``."""

from fulmen_accelerators import DDPStrategy, FSDPStrategy
from fulmen_core import Strategy
from fulmen_loops import SingleDeviceStrategy

__all__ = ["DDPStrategy", "FSDPStrategy", "SingleDeviceStrategy", "Strategy"]
