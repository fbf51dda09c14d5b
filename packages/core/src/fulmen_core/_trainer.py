"""What a module and its callbacks may read of the Trainer, and the services a running loop lends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
from torch.optim import Optimizer

from fulmen_core._logger import Logger
from fulmen_core._profiler import Profiler
from fulmen_core._types import LRSchedulerConfig

if TYPE_CHECKING:
    from fulmen_core._datamodule import LightningDataModule
    from fulmen_core._lightning_module import LightningModule


class TrainerView(Protocol):
    """The Trainer as ``LightningModule.trainer`` sees it: progress, stage flags and metrics."""

    should_stop: bool

    @property
    def current_epoch(self) -> int: ...
    @property
    def global_step(self) -> int: ...
    @property
    def max_epochs(self) -> int | None: ...
    @property
    def max_steps(self) -> int: ...
    @property
    def training(self) -> bool: ...
    @property
    def validating(self) -> bool: ...
    @property
    def testing(self) -> bool: ...
    @property
    def predicting(self) -> bool: ...
    @property
    def sanity_checking(self) -> bool: ...
    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]: ...
    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]: ...
    @property
    def progress_bar_metrics(self) -> dict[str, float]: ...
    @property
    def optimizers(self) -> list[Optimizer]: ...
    @property
    def lr_scheduler_configs(self) -> list[LRSchedulerConfig]: ...
    @property
    def num_training_batches(self) -> int | float: ...
    @property
    def is_last_batch(self) -> bool: ...
    @property
    def world_size(self) -> int: ...
    @property
    def global_rank(self) -> int: ...
    @property
    def local_rank(self) -> int: ...
    @property
    def is_global_zero(self) -> bool: ...
    @property
    def loggers(self) -> list[Logger]: ...
    @property
    def logger(self) -> Logger | None: ...
    @property
    def datamodule(self) -> LightningDataModule | None: ...
    @property
    def lightning_module(self) -> LightningModule: ...
    @property
    def estimated_stepping_batches(self) -> int | float: ...
    @property
    def accumulate_grad_batches(self) -> int: ...
    @property
    def log_every_n_steps(self) -> int: ...
    @property
    def val_check_interval(self) -> int | float: ...
    @property
    def num_val_batches(self) -> list[int | float]: ...
    @property
    def fast_dev_run(self) -> int | bool: ...
    @property
    def profiler(self) -> Profiler:
        """The run's profiler (one that records nothing when none was asked for), so that user code
        can write ``with self.trainer.profiler.profile("my_action"):`` as in Lightning."""
        ...
    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor: ...


class ModuleHost(Protocol):
    """Services a running loop lends to the module it runs (``self.log``, ``manual_backward``)."""

    def log(
        self,
        name: str,
        value: Any,
        *,
        prog_bar: bool,
        logger: bool | None,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: str | Callable[..., Any],
        enable_graph: bool,
        sync_dist: bool,
        add_dataloader_idx: bool,
        batch_size: int | None,
        rank_zero_only: bool,
    ) -> None:
        """Record a value logged by the module in the current hook."""
        ...

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Run backward through the precision and strategy in use (manual optimization)."""
        ...

    def optimizer_step(
        self, optimizer: Optimizer, closure: Callable[[], Any] | None, **kwargs: Any
    ) -> Any:
        """Step ``optimizer`` with the pre-step hooks and precision, counting the step."""
        ...
