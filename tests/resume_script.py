"""Trains a small seeded model with ModelCheckpoint(save_last=True, every_n_train_steps=1).

``python resume_script.py DIR full`` trains 3 epochs; ``crash`` dies with os._exit mid-epoch 1;
``resume`` continues from ``ckpt_path="last"``. Each writes the final weights to DIR/<mode>.pt.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen.callbacks import ModelCheckpoint


class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss: torch.Tensor = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.01)


class DieMidEpoch(L.Callback):
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 3:
            os._exit(3)  # no cleanup, as a killed process


def main(directory: str, mode: str) -> None:
    generator = torch.Generator().manual_seed(5)
    x, y = torch.randn(48, 4, generator=generator), torch.randn(48, 1, generator=generator)
    L.seed_everything(1 if mode != "resume" else 77, verbose=False)
    model = Net()
    callbacks: list[L.Callback] = [ModelCheckpoint(dirpath=os.path.join(directory, "ckpt"), save_last=True, every_n_train_steps=1, save_top_k=0)]
    if mode == "crash":
        callbacks.append(DieMidEpoch())
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True), ckpt_path="last" if mode == "resume" else None)
    torch.save([p.detach() for p in model.parameters()], os.path.join(directory, f"{mode}.pt"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
