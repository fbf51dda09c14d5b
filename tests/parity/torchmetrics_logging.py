"""Logging torchmetrics objects (per step, per epoch, in validation) under either framework
(``python torchmetrics_logging.py lightning|fulmen``); prints the metric dictionaries as JSON.
``tests/fixtures/lightning/torchmetrics_logging.json`` is this script's output under Lightning."""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset


def _plain(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in metrics.items()}


def run(framework: str) -> dict[str, Any]:
    # Chosen at run time: Lightning in the parity environment, fulmen everywhere else.
    L: Any = importlib.import_module("lightning.pytorch" if framework == "lightning" else "fulmen")
    import torchmetrics

    warnings.filterwarnings("ignore")
    snapshots: list[dict[str, Any]] = []

    class Snap(L.Callback):  # base chosen at run time
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            snapshots.append({"at": f"batch{batch_idx}", "callback": _plain(trainer.callback_metrics)})

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            snapshots.append({"at": f"epoch{trainer.current_epoch}", "callback": _plain(trainer.callback_metrics)})

    class Classifier(L.LightningModule):  # base chosen at run time
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=3)
            self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=3)
            self.train_mean = torchmetrics.MeanMetric()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            logits = self.layer(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            self.train_acc(logits, y)
            self.log("train_acc", self.train_acc, on_step=True, on_epoch=True)
            self.train_mean.update(loss)
            self.log("train_mean", self.train_mean, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.val_acc.update(self.layer(x), y)
            self.log("val_acc", self.val_acc)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)

    generator = torch.Generator().manual_seed(2)
    x = torch.randn(24, 4, generator=generator)
    y = torch.randint(0, 3, (24,), generator=generator)
    torch.manual_seed(0)
    model = Classifier()
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Snap()], num_sanity_val_steps=0,
    )
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=12))
    result = trainer.validate(model, DataLoader(TensorDataset(x, y), batch_size=12), verbose=False)
    return {
        "snapshots": snapshots,
        "validate": [_plain(r) for r in result],
        "after": {"callback": _plain(trainer.callback_metrics), "logged": _plain(trainer.logged_metrics)},
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1])))
