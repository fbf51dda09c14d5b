"""fulmen-accelerators: implementations of the ``Accelerator`` Protocol."""

from fulmen_accelerators._cpu import CPUAccelerator
from fulmen_accelerators._cuda import CUDAAccelerator
from fulmen_accelerators._ddp import DDPStrategy
from fulmen_accelerators._fsdp import FSDPStrategy
from fulmen_accelerators._mps import MPSAccelerator
from fulmen_accelerators._version import __version__

__all__ = ["CPUAccelerator", "CUDAAccelerator", "DDPStrategy", "FSDPStrategy", "MPSAccelerator", "__version__"]
