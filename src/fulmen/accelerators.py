"""Lightning's ``lightning.pytorch.accelerators`` names: ``from fulmen.accelerators import CPUAccelerator``."""

from fulmen_accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
from fulmen_core import Accelerator

__all__ = ["Accelerator", "CPUAccelerator", "CUDAAccelerator", "MPSAccelerator"]
