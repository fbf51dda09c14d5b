"""fulmen-accelerators: implementations of the ``Accelerator`` Protocol."""

from fulmen_accelerators._cpu import CPUAccelerator
from fulmen_accelerators._version import __version__

__all__ = ["CPUAccelerator", "__version__"]
