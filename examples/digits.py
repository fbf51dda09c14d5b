"""Classify handwritten digits (scikit-learn's bundled 8x8 digits set) with fulmen, Lightning-style.

Run:  python examples/digits.py [--max-epochs N]
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset, random_split

import fulmen as L


class DigitsDataModule(L.LightningDataModule):
    """The 1797 digits, scaled to [0, 1], split into train/val/test with a fixed generator.

    Args:
        batch_size: Training batch size.
        val_fraction: Share of the images held out for validation (the same share again for test).
        split_seed: Seed of the split, independent of --seed_everything.
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.15, split_seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed

    def setup(self, stage: str) -> None:
        images, labels = load_digits(return_X_y=True)
        data = TensorDataset(
            torch.tensor(images, dtype=torch.float32) / 16.0, torch.tensor(labels, dtype=torch.long)
        )
        train = 1.0 - 2 * self.val_fraction
        self.train_set, self.val_set, self.test_set = random_split(
            data, [train, self.val_fraction, self.val_fraction], generator=torch.Generator().manual_seed(self.split_seed)
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=256)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=256)

    def predict_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=256)


class DigitsClassifier(L.LightningModule):
    """A small MLP: 64 pixels -> ``hidden`` -> 10 classes.

    Args:
        hidden: Width of the hidden layer.
        lr: Adam's learning rate (used unless --optimizer is given).
        dropout: Dropout probability after the hidden layer.
    """

    def __init__(self, hidden: int = 128, lr: float = 1e-3, dropout: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr = lr
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits

    def _loss_and_accuracy(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return torch.nn.functional.cross_entropy(logits, y), (logits.argmax(dim=1) == y).float().mean()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss_and_accuracy(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_acc", accuracy, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log("test_loss", loss)
        self.log("test_acc", accuracy)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        predicted: torch.Tensor = self(batch[0]).argmax(dim=1)
        return predicted

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class PrintProgress(L.Callback):
    """One line per epoch with the epoch's validation metrics."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        print(
            f"epoch {trainer.current_epoch:2d}  train_loss {metrics['train_loss'].item():.4f}  "
            f"val_loss {metrics['val_loss'].item():.4f}  val_acc {metrics['val_acc'].item():.3f}"
        )


def main() -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=10)
    args = parser.parse_args()
    L.seed_everything(42)
    data = DigitsDataModule()
    model = DigitsClassifier()
    trainer = L.Trainer(max_epochs=args.max_epochs, callbacks=[PrintProgress()], enable_progress_bar=False)
    trainer.fit(model, datamodule=data)
    results = trainer.test(model, datamodule=data)
    accuracy = results[0]["test_acc"]
    print(f"test accuracy: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
