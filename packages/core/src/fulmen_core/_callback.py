"""The ``Callback`` role: behaviour injected at the Trainer's hooks.

``Callback`` is a Protocol whose hooks have no-op bodies. A class that lists it as a base (as Lightning
users do) inherits the no-ops and overrides what it needs; any other object with the same methods
satisfies it structurally. The ``trainer`` argument is typed ``Any`` on purpose: subclasses annotate it
as ``fulmen.Trainer`` (the concrete class lives in the meta-package, which this package cannot import),
and a narrower annotation in an override is only accepted by type checkers when the base says ``Any``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from fulmen_core._lightning_module import LightningModule


class Callback(Protocol):
    """Hooks called by the Trainer; every hook does nothing unless overridden."""

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint's ``"callbacks"`` entry."""
        return type(self).__qualname__

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        """Called when fit, validate, test or predict begins, on every process."""
        return None

    def teardown(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        """Called when fit, validate, test or predict ends."""
        return None

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when fit begins."""
        return None

    def on_fit_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when fit ends."""
        return None

    def on_sanity_check_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the validation sanity check starts."""
        return None

    def on_sanity_check_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the validation sanity check ends."""
        return None

    def on_train_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Called when a training batch begins."""
        return None

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Called when a training batch ends; ``outputs`` is what ``training_step`` returned."""
        return None

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a training epoch begins."""
        return None

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a training epoch ends, after that epoch's validation."""
        return None

    def on_validation_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a validation epoch begins."""
        return None

    def on_validation_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a validation epoch ends."""
        return None

    def on_test_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a test epoch begins."""
        return None

    def on_test_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a test epoch ends."""
        return None

    def on_predict_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a predict epoch begins."""
        return None

    def on_predict_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a predict epoch ends."""
        return None

    def on_validation_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a validation batch begins."""
        return None

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a validation batch ends."""
        return None

    def on_test_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a test batch begins."""
        return None

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a test batch ends."""
        return None

    def on_predict_batch_start(
        self,
        trainer: Any,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a predict batch begins."""
        return None

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Called when a predict batch ends."""
        return None

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when training begins, after the sanity check."""
        return None

    def on_train_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when training ends."""
        return None

    def on_validation_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a validation loop begins."""
        return None

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when a validation loop ends."""
        return None

    def on_test_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the test loop begins."""
        return None

    def on_test_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the test loop ends."""
        return None

    def on_predict_start(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the predict loop begins."""
        return None

    def on_predict_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called when the predict loop ends."""
        return None

    def on_exception(
        self, trainer: Any, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """Called when a stage is interrupted by an exception, before it propagates."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """This callback's state to store in a checkpoint."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        return None

    def on_save_checkpoint(
        self, trainer: Any, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Called when a checkpoint is being saved; may add entries to ``checkpoint``."""
        return None

    def on_load_checkpoint(
        self, trainer: Any, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Called when a checkpoint is being loaded."""
        return None

    def on_before_backward(
        self, trainer: Any, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        """Called before ``loss.backward()``."""
        return None

    def on_after_backward(self, trainer: Any, pl_module: LightningModule) -> None:
        """Called after ``loss.backward()`` and before optimizers step."""
        return None

    def on_before_optimizer_step(
        self, trainer: Any, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Called before ``optimizer.step()``, after gradients are unscaled."""
        return None

    def on_before_zero_grad(
        self, trainer: Any, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        """Called before ``optimizer.zero_grad()``."""
        return None
