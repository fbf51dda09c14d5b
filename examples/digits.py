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
    """The 1797 digits, scaled to [0, 1], split 70/15/15 with a fixed generator."""

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        images, labels = load_digits(return_X_y=True)
        data = TensorDataset(
            torch.tensor(images, dtype=torch.float32) / 16.0, torch.tensor(labels, dtype=torch.long)
        )
        self.train_set, self.val_set, self.test_set = random_split(
            data, [0.7, 0.15, 0.15], generator=torch.Generator().manual_seed(0)
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val_set, batch_size=256)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test_set, batch_size=256)


class DigitsClassifier(L.LightningModule):
    """A small MLP: 64 pixels -> 10 classes."""

    def __init__(self, hidden: int = 128, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits

    def _loss_and_accuracy(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        return loss, accuracy

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss_and_accuracy(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_acc", accuracy, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        _, accuracy = self._loss_and_accuracy(batch)
        self.log("test_acc", accuracy)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


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
