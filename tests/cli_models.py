"""Tiny modules for tests/test_cli.py, in an importable module so that class paths resolve."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L


def _loader(n: int = 8, batch_size: int = 2) -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 3, generator=generator), torch.randn(n, 1, generator=generator))
    return DataLoader(data, batch_size=batch_size)


class TinyModel(L.LightningModule):
    """A linear regressor with a configurable hidden width."""

    def __init__(self, hidden: int = 4, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Linear(hidden, 1))

    def _loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self.net(batch[0])
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class WiderModel(TinyModel):
    """A TinyModel subclass with its own constructor argument, for subclass mode."""

    def __init__(self, width: int = 8) -> None:
        super().__init__(hidden=width)


class NoOptimizerModel(L.LightningModule):
    """A module without configure_optimizers: only --optimizer can train it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))


class TinyData(L.LightningDataModule):
    """Eight random samples of 3 features, in batches of ``batch_size``."""

    def __init__(self, batch_size: int = 2, samples: int = 8) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.samples = samples

    def train_dataloader(self) -> DataLoader[Any]:
        return _loader(self.samples, self.batch_size)

    def val_dataloader(self) -> DataLoader[Any]:
        return _loader(self.samples, self.batch_size)

    def test_dataloader(self) -> DataLoader[Any]:
        return _loader(self.samples, self.batch_size)

    def predict_dataloader(self) -> DataLoader[Any]:
        return _loader(self.samples, self.batch_size)
