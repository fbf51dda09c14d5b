"""The ``Module`` role: what to compute."""

from __future__ import annotations

from typing import Any, Protocol

from fulmen_core._types import STEP_OUTPUT, OptimizerLRScheduler


class Module(Protocol):
    """A model the loops can train: a training step and the optimizers to step it with.

    :class:`~fulmen_core.LightningModule` is the implementation users subclass; it adds the
    evaluation steps and every hook with a no-op default.
    """

    def training_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Compute the loss of one batch."""
        ...

    def configure_optimizers(self) -> OptimizerLRScheduler:
        """Return the optimizers (and learning-rate schedulers) to train with."""
        ...
