"""fulmen-core: the Protocols every fulmen package meets at, and the classes users subclass."""

from fulmen_core._accelerator import Accelerator
from fulmen_core._callback import Callback
from fulmen_core._checkpoint import (
    CheckpointError,
    load_checkpoint_file,
    save_checkpoint_file,
)
from fulmen_core._collections import apply_to_tensors, move_data_to_device
from fulmen_core._datamodule import LightningDataModule
from fulmen_core._exceptions import FitEnded, MisconfigurationException
from fulmen_core._exporter import Exporter, ExportResult
from fulmen_core._hparams import AttributeDict
from fulmen_core._lightning_module import LightningModule, jit_scanning
from fulmen_core._logger import Logger
from fulmen_core._loop import Loop, SupportsStateDict
from fulmen_core._module import Module
from fulmen_core._optimizer import LightningOptimizer
from fulmen_core._profiler import Profiler
from fulmen_core._registry import Registry
from fulmen_core._seed import collect_rng_states, isolate_rng, restore_rng_states, seed_everything
from fulmen_core._strategy import Strategy, SupportsSharding, reduce_boolean_decision
from fulmen_core._trainer import ModuleHost, TrainerView
from fulmen_core._types import EVALUATE_OUTPUT, STEP_OUTPUT, LRSchedulerConfig, OptimizerLRScheduler
from fulmen_core._version import __version__

__all__ = [
    "EVALUATE_OUTPUT",
    "STEP_OUTPUT",
    "Accelerator",
    "AttributeDict",
    "Callback",
    "CheckpointError",
    "ExportResult",
    "Exporter",
    "FitEnded",
    "LRSchedulerConfig",
    "LightningDataModule",
    "LightningModule",
    "LightningOptimizer",
    "Logger",
    "Loop",
    "MisconfigurationException",
    "Module",
    "ModuleHost",
    "OptimizerLRScheduler",
    "Profiler",
    "Registry",
    "Strategy",
    "SupportsSharding",
    "SupportsStateDict",
    "TrainerView",
    "__version__",
    "apply_to_tensors",
    "collect_rng_states",
    "isolate_rng",
    "jit_scanning",
    "load_checkpoint_file",
    "move_data_to_device",
    "reduce_boolean_decision",
    "restore_rng_states",
    "save_checkpoint_file",
    "seed_everything",
]
