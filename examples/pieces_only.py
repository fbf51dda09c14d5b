"""Train with fulmen-core and fulmen-loops alone: no meta-package, logger, exporter or metrics library.

This composes the pieces by hand, as someone building their own trainer would: a ``Runner`` from
fulmen-loops, given ``LoopSettings``, runs a ``LightningModule`` from fulmen-core.

Run:  python examples/pieces_only.py
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from fulmen_core import LightningModule, seed_everything
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset


class LinearRegression(LightningModule):
    """Fits y = 3x - 1 from noisy samples."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main() -> None:
    seed_everything(0, verbose=False)
    x = torch.rand(512, 1) * 2 - 1
    y = 3 * x - 1 + 0.05 * torch.randn_like(x)
    train: DataLoader[Any] = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    val: DataLoader[Any] = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=64)
    model = LinearRegression()
    runner = Runner(settings=LoopSettings(max_epochs=20))
    runner.fit(model, train, val)
    weight, bias = model.layer.weight.item(), model.layer.bias.item()
    print(f"learned y = {weight:.2f}x {bias:+.2f}; val_loss {runner.callback_metrics['val_loss'].item():.4f}")
    heavy = [m for m in ("fulmen", "fulmen_loggers", "fulmen_export", "torchmetrics", "tensorboard") if m in sys.modules]
    print("heavy or meta modules imported:", heavy or "none")


if __name__ == "__main__":
    main()
