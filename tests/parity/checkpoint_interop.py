"""Checkpoints cross between frameworks: ``run(saver, resumer, directory)`` trains 2 epochs under
``saver`` ("lightning" or "fulmen"), saves, then resumes to 4 epochs under ``resumer`` and reports the
counters, learning rate, weights and hyperparameters. Every combination must agree."""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

_QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def _framework(name: str) -> Any:
    # Chosen at run time: Lightning in the parity environment, fulmen everywhere else.
    return importlib.import_module("lightning.pytorch" if name == "lightning" else "fulmen")


def _model_class(L: Any) -> Any:
    class Net(L.LightningModule):  # base chosen at run time
        def __init__(self, hidden: int = 8, lr: float = 0.05) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)}

    return Net


def _data() -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 4, generator=generator), torch.randn(16, 1, generator=generator)), batch_size=4)


def save(framework: str, path: str) -> None:
    """Train 2 epochs under ``framework`` and save a full checkpoint to ``path``."""
    warnings.filterwarnings("ignore")
    L = _framework(framework)
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=2, **_QUIET)
    trainer.fit(_model_class(L)(hidden=8, lr=0.05), _data())
    trainer.save_checkpoint(path)


def resume(framework: str, path: str) -> dict[str, Any]:
    """Resume ``path`` to 4 epochs under ``framework``; what the run ended with."""
    warnings.filterwarnings("ignore")
    L = _framework(framework)
    torch.manual_seed(123)
    model = _model_class(L).load_from_checkpoint(path)
    trainer = L.Trainer(max_epochs=4, **_QUIET)
    trainer.fit(model, _data(), ckpt_path=path)
    return {
        "global_step": trainer.global_step,
        "current_epoch": trainer.current_epoch,
        "lr": trainer.optimizers[0].param_groups[0]["lr"],
        "weights": [p.detach().flatten().tolist() for p in model.parameters()],
        "hparams": dict(model.hparams),
    }


def run(saver: str, resumer: str, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, f"{saver}.ckpt")
    if not os.path.exists(path):
        save(saver, path)
    return resume(resumer, path)
