"""Lightning's ``lightning.pytorch.profilers`` names: ``from fulmen.profilers import SimpleProfiler``."""

from fulmen_core import Profiler
from fulmen_loops import AdvancedProfiler, PassThroughProfiler, PyTorchProfiler, SimpleProfiler

__all__ = ["AdvancedProfiler", "PassThroughProfiler", "Profiler", "PyTorchProfiler", "SimpleProfiler"]
