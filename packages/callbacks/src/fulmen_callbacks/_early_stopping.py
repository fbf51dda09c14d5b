"""``EarlyStopping``: stop fitting when a monitored metric stops improving (Lightning's callback).

The check runs once per validation (after ``on_validation_end``) or, when validation happens once at
the end of every training epoch, in ``on_train_epoch_end``, after the module's own hook, so that what
the module logs there is seen. It never runs during the sanity check or outside ``fit``.
"""

from __future__ import annotations

import enum
import math
import sys
import warnings
from typing import Any, Callable, ClassVar

import torch
from fulmen_core import Callback, LightningModule, MisconfigurationException

_Compare = Callable[[torch.Tensor, Any], torch.Tensor]


def _less(a: torch.Tensor, b: Any) -> torch.Tensor:
    return torch.lt(a, b)


def _greater(a: torch.Tensor, b: Any) -> torch.Tensor:
    return torch.gt(a, b)


class EarlyStoppingReason(enum.Enum):
    """Why :class:`EarlyStopping` asked the Trainer to stop (``EarlyStopping.stopping_reason``)."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    r"""Monitor a metric and stop training when it stops improving.

    Args:
        monitor: The key in ``trainer.callback_metrics`` to watch (a name given to ``self.log``).
        min_delta: The smallest change that counts as an improvement: a change of ``min_delta`` or
            less is no improvement.
        patience: How many checks in a row without improvement stop training. By default a check
            happens after every validation, so with ``check_val_every_n_epoch=10`` and
            ``patience=3`` at least 40 epochs run.
        verbose: Print a line at every check that improves the best score or stops training.
        mode: ``"min"`` (stop when the metric stops decreasing) or ``"max"``.
        strict: Raise when ``monitor`` was never logged; ``False`` skips the check (with a warning
            when ``verbose``).
        check_finite: Stop as soon as the metric is NaN or infinite.
        stopping_threshold: Stop as soon as the metric is better than this.
        divergence_threshold: Stop as soon as the metric is worse than this.
        check_on_train_epoch_end: Check at the end of the training epoch (``True``) or after each
            validation (``False``). ``None``: at the training epoch's end when validation runs
            once at the end of every epoch (``val_check_interval=1.0``,
            ``check_val_every_n_epoch=1``), else after each validation.
        log_rank_zero_only: With several processes, print the messages on rank 0 only.

    Attributes:
        wait_count: Checks in a row without improvement.
        stopped_epoch: The epoch at which the stop was asked (0: never).
        best_score: The best value seen (a 0-d tensor; ``inf``/``-inf`` before the first check).
        stopping_reason: An :class:`EarlyStoppingReason`.
        stopping_reason_message: The message that explains the stop, or ``None``.

    Raises:
        MisconfigurationException: If ``mode`` is neither ``"min"`` nor ``"max"``.
        RuntimeError: If ``strict`` and ``monitor`` is not among the logged metrics.
    """

    mode_dict: ClassVar[dict[str, _Compare]] = {"min": _less, "max": _greater}
    order_dict: ClassVar[dict[str, str]] = {"min": "<", "max": ">"}
    # The loops run a "monitoring" callback's on_train_epoch_end after the module's own hook.
    _fulmen_monitoring: ClassVar[bool] = True

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
    ) -> None:
        if mode not in self.mode_dict:
            raise MisconfigurationException(
                f"`mode` can be {', '.join(self.mode_dict)}, got {mode}: pass mode='min' when a lower "
                "value is better (a loss) or mode='max' when a higher one is (an accuracy)"
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise MisconfigurationException(
                f"EarlyStopping(patience={patience!r}): patience is a number of checks, an int >= 0"
            )
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.log_rank_zero_only = log_rank_zero_only
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.wait_count = 0
        self.stopped_epoch = 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None
        # As in Lightning, the stored delta carries the direction: subtracted from the current value
        # it must still beat the best score, so it is negative in "min" mode.
        self.min_delta = min_delta if mode == "max" else -min_delta
        worst = math.inf if mode == "min" else -math.inf
        self.best_score = torch.tensor(worst)

    @property
    def state_key(self) -> str:
        """``EarlyStopping{'monitor': ..., 'mode': ...}``: callbacks watching different metrics
        keep separate states in a checkpoint."""
        return type(self).__qualname__ + repr({"monitor": self.monitor, "mode": self.mode})

    @property
    def monitor_op(self) -> _Compare:
        """``torch.lt`` in ``"min"`` mode, ``torch.gt`` in ``"max"`` mode."""
        return self.mode_dict[self.mode]

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            # Validation once per epoch, at its end: the check waits for the module's
            # on_train_epoch_end. Any other schedule: the check follows each validation.
            interval = _val_check_interval(trainer)
            every = getattr(trainer, "check_val_every_n_epoch", 1)
            self._check_on_train_epoch_end = _is_whole_epoch(interval) and every == 1

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        if not self._check_on_train_epoch_end or self._should_skip_check(trainer):
            return
        self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        if self._check_on_train_epoch_end or self._should_skip_check(trainer):
            return
        self._run_early_stopping_check(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = torch.as_tensor(state_dict["best_score"])
        self.patience = state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(
            state_dict.get("stopping_reason", EarlyStoppingReason.NOT_STOPPED.value)
        )
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    # ------------------------------------------------------------------ the check

    def _should_skip_check(self, trainer: Any) -> bool:
        return bool(trainer.state.fn != "fit" or trainer.sanity_checking)

    def _validate_condition_metric(self, logs: dict[str, Any]) -> bool:
        if logs.get(self.monitor) is not None:
            return True
        available = "`, `".join(logs)
        message = (
            f"Early stopping conditioned on metric `{self.monitor}` which is not available. Pass in or "
            "modify your `EarlyStopping` callback to use any of the following: "
            + (f"`{available}`" if logs else "(no metric has been logged yet)")
            + f". Log it with self.log({self.monitor!r}, value) in a validation or training hook, or "
            "pass strict=False to skip the check while it is missing."
        )
        if self.strict:
            raise RuntimeError(message)
        if self.verbose:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return False

    def _run_early_stopping_check(self, trainer: Any) -> None:
        """Compare the monitored metric with the best so far; ask the Trainer to stop if due."""
        logs = trainer.callback_metrics
        if trainer.fast_dev_run or not self._validate_condition_metric(logs):
            return
        current = _scalar(logs[self.monitor], self.monitor)
        should_stop, reason = self._evaluate_stopping_criteria(current)
        reduce = getattr(trainer, "reduce_boolean_decision", None)
        if callable(reduce):  # several processes: stop when any of them wants to
            should_stop = bool(reduce(should_stop, all=False))
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        """Whether ``current`` stops training, and the message that says why (or that it improved)."""
        compare = self.monitor_op
        if self.check_finite and not bool(torch.isfinite(current)):
            self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
            return True, (
                f"Monitored metric {self.monitor} = {current} is not finite. Previous best value was "
                f"{self.best_score:.3f}. Signaling Trainer to stop."
            )
        if self.stopping_threshold is not None and bool(compare(current, self.stopping_threshold)):
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, (
                f"Stopping threshold reached: {self.monitor} = {current} {self.order_dict[self.mode]} "
                f"{self.stopping_threshold}. Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and bool(compare(-current, -self.divergence_threshold)):
            self.stopping_reason = EarlyStoppingReason.DIVERGENCE_THRESHOLD
            # Lightning prints the "better than" sign here; the metric is on the worse side.
            worse = ">" if self.mode == "min" else "<"
            return True, (
                f"Divergence threshold reached: {self.monitor} = {current} {worse} "
                f"{self.divergence_threshold}. Signaling Trainer to stop."
            )
        if bool(compare(current - self.min_delta, self.best_score.to(current.device))):
            message = self._improvement_message(current)
            self.best_score = current
            self.wait_count = 0
            return False, message
        self.wait_count += 1
        if self.wait_count >= self.patience:
            self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
            return True, (
                f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                f"Best score: {self.best_score:.3f}. Signaling Trainer to stop."
            )
        return False, None

    def _improvement_message(self, current: torch.Tensor) -> str:
        if bool(torch.isfinite(self.best_score)):
            change = abs(self.best_score.to(current.device) - current)
            return (
                f"Metric {self.monitor} improved by {change:.3f} >= min_delta = {abs(self.min_delta)}. "
                f"New best score: {current:.3f}"
            )
        return f"Metric {self.monitor} improved. New best score: {current:.3f}"

    @staticmethod
    def _log_info(trainer: Any, message: str, log_rank_zero_only: bool) -> None:
        world_size = getattr(trainer, "world_size", 1)
        rank = getattr(trainer, "global_rank", 0) if world_size > 1 else None
        if rank is not None:
            message = f"[rank: {rank}] {message}"
        if rank is None or not log_rank_zero_only or rank == 0:
            print(message, file=sys.stdout, flush=True)


def _val_check_interval(trainer: Any) -> int | float:
    """The Trainer's ``val_check_interval`` (1.0, once per epoch, when not set)."""
    value = getattr(trainer, "val_check_interval", None)
    if value is None:
        # A Runner without the property: its loop settings hold the flag.
        value = getattr(getattr(trainer, "settings", None), "val_check_interval", None)
    return 1.0 if value is None else value


def _is_whole_epoch(interval: int | float) -> bool:
    # A float 1.0 is "the whole epoch"; an int 1 is "every batch" (Lightning compares with ==, so
    # it treats val_check_interval=1 as once per epoch and waits for the epoch's end to check).
    return isinstance(interval, float) and interval == 1.0


def _scalar(value: Any, monitor: str) -> torch.Tensor:
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    tensor = tensor.detach().squeeze()
    if tensor.numel() != 1:
        raise ValueError(
            f"EarlyStopping monitors {monitor!r}, which holds {tensor.numel()} values (shape "
            f"{tuple(tensor.shape)}); log a single number under that name, e.g. its mean"
        )
    return tensor
