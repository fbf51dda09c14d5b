"""How the loops hand their actions to a profiler without paying for it when there is none.

Nothing here is called per step unless a profiler was given: the loops replace the callables they
already hold (bound hooks, the batch transfer, the data iterator) with profiled stand-ins once per
stage, so that a run without a profiler executes exactly the code it executes today.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fulmen_core import LightningModule, Profiler

from fulmen_loops._hooks import overrides

_T = TypeVar("_T")

# The module's hooks a run may call. Each is profiled as "[LightningModule]Name.hook" when the
# module's class overrides it: a default hook is a no-op the loops skip or that costs nothing.
MODULE_HOOKS = (
    "prepare_data", "setup", "configure_model", "configure_optimizers",
    "train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader",
    "on_fit_start", "on_fit_end", "on_train_start", "on_train_end",
    "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start", "on_train_batch_end",
    "on_validation_start", "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end",
    "on_validation_batch_start", "on_validation_batch_end", "on_validation_model_eval",
    "on_validation_model_train", "on_validation_model_zero_grad",
    "on_test_start", "on_test_end", "on_test_epoch_start", "on_test_epoch_end",
    "on_test_batch_start", "on_test_batch_end", "on_test_model_eval", "on_test_model_train",
    "on_predict_start", "on_predict_end", "on_predict_epoch_start", "on_predict_epoch_end",
    "on_predict_batch_start", "on_predict_batch_end", "on_predict_model_eval",
    "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer",
    "on_before_zero_grad", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
    "configure_gradient_clipping", "lr_scheduler_step", "teardown",
)  # fmt: skip

# Always profiled when defined, overridden or not: the steps do the model's work and are named after
# the strategy that runs them, as in Lightning; the optimizer hooks do real work by default.
STEP_HOOKS = ("training_step", "validation_step", "test_step", "predict_step", "backward")
OPTIMIZER_HOOKS = ("optimizer_step", "optimizer_zero_grad")


def profiled(function: Callable[..., _T], action_name: str, profiler: Profiler) -> Callable[..., _T]:
    """``function`` recorded as ``action_name`` by ``profiler`` on every call."""
    start, stop = profiler.start, profiler.stop

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> _T:
        start(action_name)
        try:
            return function(*args, **kwargs)
        finally:
            stop(action_name)

    return call


class ProfiledIterator(Iterator[_T]):
    """An iterator whose every ``next`` (fetching a batch) is recorded as one action."""

    __slots__ = ("_iterator", "_action_name", "_start", "_stop")

    def __init__(self, iterator: Iterator[_T], action_name: str, profiler: Profiler) -> None:
        self._iterator = iterator
        self._action_name = action_name
        self._start, self._stop = profiler.start, profiler.stop

    def __next__(self) -> _T:
        self._start(self._action_name)
        try:
            return next(self._iterator)
        finally:
            self._stop(self._action_name)


class Instrumentation:
    """Profiled stand-ins put on objects as instance attributes for one stage, and their removal.

    An instance attribute shadows the class's method, so code that calls ``module.on_fit_start()``
    or holds ``module.training_step`` reaches the profiled version without knowing about it.
    """

    def __init__(self, profiler: Profiler) -> None:
        self.profiler = profiler
        self._installed: list[tuple[object, str, bool, object]] = []

    def wrap(self, owner: object, attribute: str, action_name: str) -> None:
        """Record calls of ``owner.attribute`` as ``action_name`` until :meth:`remove`."""
        own = vars(owner)
        had_own = attribute in own
        previous = own.get(attribute)
        # Set in __dict__ directly: nn.Module.__setattr__ would treat some values specially.
        own[attribute] = profiled(getattr(owner, attribute), action_name, self.profiler)
        self._installed.append((owner, attribute, had_own, previous))

    def wrap_module(self, module: LightningModule, strategy_name: str) -> None:
        """Profile the hooks ``module`` overrides, its steps and its optimizer hooks."""
        name = type(module).__qualname__
        for hook in MODULE_HOOKS:
            if overrides(module, LightningModule, hook):
                self.wrap(module, hook, f"[LightningModule]{name}.{hook}")
        for hook in OPTIMIZER_HOOKS:
            self.wrap(module, hook, f"[LightningModule]{name}.{hook}")
        for hook in STEP_HOOKS:
            if hasattr(module, hook):
                self.wrap(module, hook, f"[Strategy]{strategy_name}.{hook}")

    def remove(self) -> None:
        """Put back what :meth:`wrap` replaced, last first."""
        for owner, attribute, had_own, previous in reversed(self._installed):
            own = vars(owner)
            if had_own:
                own[attribute] = previous
            else:
                own.pop(attribute, None)
        self._installed.clear()
