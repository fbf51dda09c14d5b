"""A module, callback and datamodule that record every hook call, for comparing hook order with
Lightning's (the fixtures in ``fixtures/lightning`` were recorded from Lightning 2.6.6 with the same
classes, importing ``lightning.pytorch`` instead of ``fulmen``)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L

CALLS: list[dict[str, Any]] = []
_KEYS = ("batch_idx", "dataloader_idx", "stage")


def record(who: str, hook: str, trainer: Any = None, **details: Any) -> None:
    """Append one call with the trainer's progress and state at that moment."""
    entry: dict[str, Any] = {"who": who, "hook": hook, **details}
    if trainer is not None:
        entry.update(
            gs=trainer.global_step,
            ep=trainer.current_epoch,
            fn=trainer.state.fn,
            st=trainer.state.stage,
        )
    CALLS.append(entry)


def dataset(n: int = 4, seed: int = 0) -> TensorDataset:
    """``n`` samples of 3 features and 1 target from a private generator (no global RNG use)."""
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, generator=generator), torch.randn(n, 1, generator=generator))


def _recording(who: str, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(self, *args, **kwargs).arguments
        details = {k: str(bound[k]) if k == "stage" else bound[k] for k in _KEYS if k in bound}
        if who == "callback":
            trainer = args[0] if args else kwargs.get("trainer")
        elif who == "module":
            trainer = self._trainer
        else:
            trainer = self.trainer
        record(who, name, trainer, **details)
        return original(self, *args, **kwargs)

    return wrapper


CALLBACK_HOOKS = [
    "setup", "teardown", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
    "on_train_batch_start", "on_train_batch_end", "on_train_epoch_start", "on_train_epoch_end",
    "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start", "on_test_epoch_end",
    "on_predict_epoch_start", "on_predict_epoch_end", "on_validation_batch_start",
    "on_validation_batch_end", "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start",
    "on_predict_batch_end", "on_train_start", "on_train_end", "on_validation_start",
    "on_validation_end", "on_test_start", "on_test_end", "on_predict_start", "on_predict_end",
    "on_exception", "state_dict", "load_state_dict", "on_save_checkpoint", "on_load_checkpoint", "on_before_backward",
    "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
]  # fmt: skip

MODULE_HOOKS = [
    "setup", "teardown", "prepare_data", "configure_model", "on_fit_start", "on_fit_end",
    "on_train_start", "on_train_end", "on_validation_start", "on_validation_end", "on_test_start",
    "on_test_end", "on_predict_start", "on_predict_end", "on_train_epoch_start", "on_train_epoch_end",
    "on_validation_epoch_start", "on_validation_epoch_end", "on_test_epoch_start",
    "on_test_epoch_end", "on_predict_epoch_start", "on_predict_epoch_end", "on_train_batch_start",
    "on_train_batch_end", "on_validation_batch_start", "on_validation_batch_end",
    "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start", "on_predict_batch_end",
    "on_validation_model_eval", "on_validation_model_train", "on_validation_model_zero_grad",
    "on_test_model_eval", "on_test_model_train", "on_predict_model_eval", "on_before_batch_transfer",
    "transfer_batch_to_device", "on_after_batch_transfer", "optimizer_zero_grad",
    "on_before_zero_grad", "on_before_backward", "backward", "on_after_backward",
    "on_before_optimizer_step", "configure_gradient_clipping", "lr_scheduler_step",
    "on_save_checkpoint", "on_load_checkpoint",
]  # fmt: skip


class RecordingCallback(L.Callback):
    """Records each callback hook (wrapped below)."""


class RecordingModule(L.LightningModule):
    """A linear regressor whose every hook records itself."""

    def __init__(self, n_train: int = 4, n_val: int = 4, batch_size: int = 2, scheduler: bool = True) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.n_train, self.n_val, self.batch_size, self.scheduler = n_train, n_val, batch_size, scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        record("module", "training_step[before]", self._trainer, batch_idx=batch_idx)
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        record("module", "training_step[after]", self._trainer, batch_idx=batch_idx)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        record("module", "validation_step", self._trainer, batch_idx=batch_idx, dataloader_idx=dataloader_idx)
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        record("module", "test_step", self._trainer, batch_idx=batch_idx, dataloader_idx=dataloader_idx)
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        record("module", "predict_step", self._trainer, batch_idx=batch_idx, dataloader_idx=dataloader_idx)
        return self.forward(batch[0])

    def configure_optimizers(self) -> Any:
        record("module", "configure_optimizers", self._trainer)
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        if self.scheduler:
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1)}
        return optimizer

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        record("module", "optimizer_step[before]", self._trainer, batch_idx=batch_idx)
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        record("module", "optimizer_step[after]", self._trainer, batch_idx=batch_idx)

    def train_dataloader(self) -> Any:
        record("module", "train_dataloader", self._trainer)
        return DataLoader(dataset(self.n_train), batch_size=self.batch_size)

    def val_dataloader(self) -> Any:
        record("module", "val_dataloader", self._trainer)
        return DataLoader(dataset(self.n_val, seed=1), batch_size=self.batch_size)

    def test_dataloader(self) -> Any:
        record("module", "test_dataloader", self._trainer)
        return DataLoader(dataset(4, seed=2), batch_size=self.batch_size)

    def predict_dataloader(self) -> Any:
        record("module", "predict_dataloader", self._trainer)
        return DataLoader(dataset(4, seed=3), batch_size=self.batch_size)

    def configure_callbacks(self) -> Any:
        record("module", "configure_callbacks", self._trainer)
        return []


for _name in CALLBACK_HOOKS:
    setattr(RecordingCallback, _name, _recording("callback", _name, getattr(L.Callback, _name)))
for _name in MODULE_HOOKS:
    setattr(RecordingModule, _name, _recording("module", _name, getattr(L.LightningModule, _name)))


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """A CPU Trainer with logging, checkpointing, progress bar and summary off."""
    settings: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    settings.update(overrides)
    return L.Trainer(**settings)
