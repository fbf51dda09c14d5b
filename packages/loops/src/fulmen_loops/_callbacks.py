"""``CallbackList``: many callbacks behind one object that is itself a callback.

Each hook is dispatched only to the callbacks that override it. Which ones do is worked out once, when
the list is built, so a hook nobody overrides costs one loop over an empty tuple per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from fulmen_core import Callback, LightningModule, Profiler

from fulmen_loops._hooks import overrides

# Names of the hooks that Lightning runs after the module's own hook for `on_train_epoch_end`
# ("monitoring" callbacks such as ModelCheckpoint and EarlyStopping see the epoch's final metrics).
_MONITORING_MARK = "_fulmen_monitoring"

# Default for dataloader_idx meaning "not given": the loops leave the argument out when a stage has
# one dataloader, and CallbackList must then leave it out too for overrides that omit it.
_SINGLE = -1


def _overriders(
    callbacks: Sequence[Callback], hook: str, profiler: Profiler | None = None
) -> tuple[Callable[..., None], ...]:
    found = [c for c in callbacks if hasattr(type(c), hook) and overrides(c, Callback, hook)]
    if profiler is None:
        return tuple(getattr(c, hook) for c in found)
    from fulmen_loops._profiling import profiled

    return tuple(profiled(getattr(c, hook), f"[Callback]{type(c).__qualname__}.{hook}", profiler) for c in found)


def is_monitoring(callback: object) -> bool:
    """Whether ``callback`` wants ``on_train_epoch_end`` after the module's (checkpointing, stopping)."""
    return bool(getattr(callback, _MONITORING_MARK, False))


class CallbackList(Callback):
    """A sequence of callbacks dispatched as one; ``CallbackList([a, b]).on_fit_start(...)`` calls
    ``a.on_fit_start`` then ``b.on_fit_start``, skipping those that do not override it.

    With a ``profiler``, each hook call is recorded as ``[Callback]ClassName.hook``; the profiled
    callables are made here, once, so a list without a profiler holds the plain bound methods.
    """

    def __init__(self, callbacks: Sequence[Callback] = (), profiler: Profiler | None = None) -> None:
        self._callbacks: tuple[Callback, ...] = tuple(callbacks)
        cbs = self._callbacks
        self.profiler = profiler
        self._setup = _overriders(cbs, "setup", profiler)
        self._teardown = _overriders(cbs, "teardown", profiler)
        self._on_fit_start = _overriders(cbs, "on_fit_start", profiler)
        self._on_fit_end = _overriders(cbs, "on_fit_end", profiler)
        self._on_sanity_check_start = _overriders(cbs, "on_sanity_check_start", profiler)
        self._on_sanity_check_end = _overriders(cbs, "on_sanity_check_end", profiler)
        self._on_train_batch_start = _overriders(cbs, "on_train_batch_start", profiler)
        self._on_train_batch_end = _overriders(cbs, "on_train_batch_end", profiler)
        self._on_train_epoch_start = _overriders(cbs, "on_train_epoch_start", profiler)
        plain = [c for c in cbs if not is_monitoring(c)]
        monitoring = [c for c in cbs if is_monitoring(c)]
        self._on_train_epoch_end = _overriders(plain, "on_train_epoch_end", profiler)
        self._on_train_epoch_end_monitoring = _overriders(monitoring, "on_train_epoch_end", profiler)
        self._on_validation_epoch_start = _overriders(cbs, "on_validation_epoch_start", profiler)
        self._on_validation_epoch_end = _overriders(cbs, "on_validation_epoch_end", profiler)
        self._on_test_epoch_start = _overriders(cbs, "on_test_epoch_start", profiler)
        self._on_test_epoch_end = _overriders(cbs, "on_test_epoch_end", profiler)
        self._on_predict_epoch_start = _overriders(cbs, "on_predict_epoch_start", profiler)
        self._on_predict_epoch_end = _overriders(cbs, "on_predict_epoch_end", profiler)
        self._on_validation_batch_start = _overriders(cbs, "on_validation_batch_start", profiler)
        self._on_validation_batch_end = _overriders(cbs, "on_validation_batch_end", profiler)
        self._on_test_batch_start = _overriders(cbs, "on_test_batch_start", profiler)
        self._on_test_batch_end = _overriders(cbs, "on_test_batch_end", profiler)
        self._on_predict_batch_start = _overriders(cbs, "on_predict_batch_start", profiler)
        self._on_predict_batch_end = _overriders(cbs, "on_predict_batch_end", profiler)
        self._on_train_start = _overriders(cbs, "on_train_start", profiler)
        self._on_train_end = _overriders(cbs, "on_train_end", profiler)
        self._on_validation_start = _overriders(cbs, "on_validation_start", profiler)
        self._on_validation_end = _overriders(cbs, "on_validation_end", profiler)
        self._on_test_start = _overriders(cbs, "on_test_start", profiler)
        self._on_test_end = _overriders(cbs, "on_test_end", profiler)
        self._on_predict_start = _overriders(cbs, "on_predict_start", profiler)
        self._on_predict_end = _overriders(cbs, "on_predict_end", profiler)
        self._on_exception = _overriders(cbs, "on_exception", profiler)
        self._on_save_checkpoint = _overriders(cbs, "on_save_checkpoint", profiler)
        self._on_load_checkpoint = _overriders(cbs, "on_load_checkpoint", profiler)
        self._on_before_backward = _overriders(cbs, "on_before_backward", profiler)
        self._on_after_backward = _overriders(cbs, "on_after_backward", profiler)
        self._on_before_optimizer_step = _overriders(cbs, "on_before_optimizer_step", profiler)
        self._on_before_zero_grad = _overriders(cbs, "on_before_zero_grad", profiler)

    def overrides(self, hook: str) -> bool:
        """Whether any callback in the list overrides ``hook`` (the loops skip hooks nobody wrote)."""
        found: tuple[Callable[..., None], ...] = getattr(self, f"_{hook}")
        return bool(found)

    def __iter__(self) -> Iterator[Callback]:
        return iter(self._callbacks)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __getitem__(self, index: int) -> Callback:
        return self._callbacks[index]

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        for hook in self._setup:
            hook(trainer, pl_module, stage)

    def teardown(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        for hook in self._teardown:
            hook(trainer, pl_module, stage)

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_fit_start:
            hook(trainer, pl_module)

    def on_fit_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_fit_end:
            hook(trainer, pl_module)

    def on_sanity_check_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_sanity_check_start:
            hook(trainer, pl_module)

    def on_sanity_check_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_sanity_check_end:
            hook(trainer, pl_module)

    def on_train_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for hook in self._on_train_batch_start:
            hook(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for hook in self._on_train_batch_end:
            hook(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_train_epoch_start:
            hook(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """The non-monitoring callbacks' hooks; see :meth:`on_train_epoch_end_monitoring`."""
        for hook in self._on_train_epoch_end:
            hook(trainer, pl_module)

    def on_train_epoch_end_monitoring(self, trainer: Any, pl_module: LightningModule) -> None:
        """The monitoring callbacks' ``on_train_epoch_end``, run after the module's own hook."""
        for hook in self._on_train_epoch_end_monitoring:
            hook(trainer, pl_module)

    def on_validation_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_validation_epoch_start:
            hook(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_validation_epoch_end:
            hook(trainer, pl_module)

    def on_test_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_test_epoch_start:
            hook(trainer, pl_module)

    def on_test_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_test_epoch_end:
            hook(trainer, pl_module)

    def on_predict_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_predict_epoch_start:
            hook(trainer, pl_module)

    def on_predict_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_predict_epoch_end:
            hook(trainer, pl_module)

    def on_validation_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_validation_batch_start:
            hook(trainer, pl_module, batch, batch_idx, *extra)

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_validation_batch_end:
            hook(trainer, pl_module, outputs, batch, batch_idx, *extra)

    def on_test_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_test_batch_start:
            hook(trainer, pl_module, batch, batch_idx, *extra)

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_test_batch_end:
            hook(trainer, pl_module, outputs, batch, batch_idx, *extra)

    def on_predict_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_predict_batch_start:
            hook(trainer, pl_module, batch, batch_idx, *extra)

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = _SINGLE,
    ) -> None:
        # dataloader_idx is forwarded only when given (several loaders), as the loops do.
        extra = () if dataloader_idx is _SINGLE else (dataloader_idx,)
        for hook in self._on_predict_batch_end:
            hook(trainer, pl_module, outputs, batch, batch_idx, *extra)

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_train_start:
            hook(trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_train_end:
            hook(trainer, pl_module)

    def on_validation_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_validation_start:
            hook(trainer, pl_module)

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_validation_end:
            hook(trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_test_start:
            hook(trainer, pl_module)

    def on_test_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_test_end:
            hook(trainer, pl_module)

    def on_predict_start(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_predict_start:
            hook(trainer, pl_module)

    def on_predict_end(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_predict_end:
            hook(trainer, pl_module)

    def on_exception(
        self, trainer: Any, pl_module: LightningModule, exception: BaseException
    ) -> None:
        for hook in self._on_exception:
            hook(trainer, pl_module, exception)

    def on_save_checkpoint(
        self, trainer: Any, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        for hook in self._on_save_checkpoint:
            hook(trainer, pl_module, checkpoint)

    def on_load_checkpoint(
        self, trainer: Any, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        for hook in self._on_load_checkpoint:
            hook(trainer, pl_module, checkpoint)

    def on_before_backward(
        self, trainer: Any, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        for hook in self._on_before_backward:
            hook(trainer, pl_module, loss)

    def on_after_backward(self, trainer: Any, pl_module: LightningModule) -> None:
        for hook in self._on_after_backward:
            hook(trainer, pl_module)

    def on_before_optimizer_step(
        self, trainer: Any, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        for hook in self._on_before_optimizer_step:
            hook(trainer, pl_module, optimizer)

    def on_before_zero_grad(
        self, trainer: Any, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        for hook in self._on_before_zero_grad:
            hook(trainer, pl_module, optimizer)
