"""``GradientAccumulationScheduler``: change how many batches' gradients add up before each optimizer
step, epoch by epoch (Lightning's callback)."""

from __future__ import annotations

import warnings
from typing import Any

from fulmen_core import Callback, LightningModule, MisconfigurationException


class GradientAccumulationScheduler(Callback):
    r"""Set ``trainer.accumulate_grad_batches`` at the start of every training epoch from a schedule.

    Args:
        scheduling: ``{epoch: factor}``: from ``epoch`` (counted from 0) on, accumulate ``factor``
            batches per optimizer step. Epochs before the first key use 1.
            ``{4: 2}`` steps every batch for epochs 0 to 3, then every 2 batches.

    The dict passed in is not modified (Lightning adds the ``0: 1`` entry to it); the completed
    schedule is :attr:`scheduling`.

    Raises:
        TypeError: If ``scheduling`` is empty.
        MisconfigurationException: If a key is not an int >= 0 or a value not an int >= 1.
        RuntimeError: When training starts with manual optimization (``automatic_optimization =
            False``), where the loop does not accumulate.
        ValueError: When training starts with the Trainer's own ``accumulate_grad_batches`` set
            (other than 1): the two would disagree.
    """

    def __init__(self, scheduling: dict[int, int]) -> None:
        if not scheduling:
            raise TypeError(
                "Empty dict cannot be interpreted correct: give GradientAccumulationScheduler at least "
                "one {epoch: factor} entry, e.g. {0: 1, 4: 2}"
            )
        if any(isinstance(key, bool) or not isinstance(key, int) or key < 0 for key in scheduling):
            raise MisconfigurationException(
                f"Epoch should be an int greater than or equal to 0. Got {list(scheduling.keys())}: "
                "the keys of `scheduling` are epochs counted from 0."
            )
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in scheduling.values()):
            raise MisconfigurationException(
                f"Accumulation factor should be an int greater than 0. Got {list(scheduling.values())}: "
                "the values of `scheduling` are numbers of batches per optimizer step (1: no accumulation)."
            )
        complete = dict(scheduling)
        if min(complete) != 0:
            complete[0] = 1
        self.scheduling = complete
        self.epochs = sorted(complete)
        # What this callback last set: a second fit on the same Trainer starts from it, not from 1.
        self._applied: int | None = None

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch."""
        return any(factor > 1 for factor in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The factor in force at ``epoch``."""
        for start in reversed(self.epochs):
            if epoch >= start:
                return self.scheduling[start]
        return 1

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise RuntimeError(
                "Automatic gradient accumulation and the `GradientAccumulationScheduler` is not "
                "supported for manual optimization. Please remove the callback or switch to automatic "
                "optimization (accumulate in training_step yourself with manual optimization)."
            )
        cls = type(pl_module)
        overridden = (
            cls.optimizer_step is not LightningModule.optimizer_step
            or cls.optimizer_zero_grad is not LightningModule.optimizer_zero_grad
        )
        if overridden and self.going_to_accumulate_grad_batches():
            warnings.warn(
                "When using `Trainer(accumulate_grad_batches != 1)` and overriding "
                "`LightningModule.optimizer_{step,zero_grad}`, the hooks will not be called on every "
                "batch (rather, they are called on every optimization step).",
                UserWarning,
                stacklevel=2,
            )
        current = trainer.accumulate_grad_batches
        if current != 1 and current != self._applied:
            raise ValueError(
                "You have set `accumulate_grad_batches` and are using the "
                "`GradientAccumulationScheduler` callback. Either remove `accumulate_grad_batches` "
                f"(={current}) from the Trainer or remove the callback."
            )

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        factor = self.get_accumulate_grad_batches(trainer.current_epoch)
        trainer.accumulate_grad_batches = factor
        self._applied = factor
