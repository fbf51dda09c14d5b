"""Idiomatic, annotated Lightning-style code that type-checks under ``mypy --strict`` with fulmen.

CI runs mypy over this file; running it trains a tiny regressor and prints the best checkpoint.
"""

from __future__ import annotations

import tempfile

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen.callbacks import ModelCheckpoint


class LitRegressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class EpochPrinter(L.Callback):
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics["train_loss"]
        print(f"epoch {trainer.current_epoch}: train_loss={loss.item():.4f}")

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        pass


def main() -> None:
    L.seed_everything(0)
    x = torch.randn(128, 3)
    y = x.sum(dim=1, keepdim=True)
    train = DataLoader(TensorDataset(x[:96], y[:96]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[96:], y[96:]), batch_size=32)
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_epochs=3,
            default_root_dir=root,
            callbacks=[EpochPrinter(), ModelCheckpoint(monitor="val_loss")],
            enable_progress_bar=False,
        )
        trainer.fit(LitRegressor(), train, val)
        best: str = trainer.checkpoint_callback.best_model_path
        results: list[dict[str, float]] = trainer.test(ckpt_path="best", dataloaders=val)
        print(f"best checkpoint: {best.rsplit('/', 1)[-1]}; test_loss={results[0]['test_loss']:.4f}")


if __name__ == "__main__":
    main()
