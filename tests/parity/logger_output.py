"""What the loggers receive: a script mixing on_step/on_epoch, reduce_fx, log_dict and a torchmetrics
object, with a CSV and a TensorBoard logger, under either framework. ``run(framework, directory)``
returns the (step, name, value) points read back from metrics.csv (csv module) and from the
TensorBoard event file (tensorboard's EventAccumulator), plus the three metric dictionaries."""

from __future__ import annotations

import csv
import glob
import importlib
import os
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset


def run(framework: str, directory: str) -> dict[str, Any]:
    # Chosen at run time: Lightning in the parity environment, fulmen everywhere else.
    L: Any = importlib.import_module("lightning.pytorch" if framework == "lightning" else "fulmen")
    loggers: Any = importlib.import_module("lightning.pytorch.loggers" if framework == "lightning" else "fulmen.loggers")
    import torchmetrics
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]  # tensorboard ships no type information

    warnings.filterwarnings("ignore")

    class Model(L.LightningModule):  # base chosen at run time
        def __init__(self, hidden: int = 6) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))
            self.acc = torchmetrics.Accuracy(task="multiclass", num_classes=3)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            logits = self.layer(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            self.log("loss", loss, on_step=True, on_epoch=True, prog_bar=True)
            self.log("loss_max", loss, on_step=False, on_epoch=True, reduce_fx="max")
            self.log_dict({"a": float(batch_idx), "b": loss * 2}, on_step=True, on_epoch=False)
            self.acc(logits, y)
            self.log("acc", self.acc, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.3)

    generator = torch.Generator().manual_seed(4)
    x, y = torch.randn(40, 4, generator=generator), torch.randint(0, 3, (40,), generator=generator)
    torch.manual_seed(0)
    csv_logger = loggers.CSVLogger(directory, name="csv")
    tb_logger = loggers.TensorBoardLogger(directory, name="tb")
    trainer = L.Trainer(
        max_epochs=3, log_every_n_steps=3, logger=[csv_logger, tb_logger], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(Model(), DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=20))
    with open(os.path.join(csv_logger.log_dir, "metrics.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    csv_points = sorted(
        (int(row["step"]), name, round(float(value), 5))
        for row in rows
        for name, value in row.items()
        if name != "step" and value != ""
    )
    events = EventAccumulator(glob.glob(os.path.join(tb_logger.log_dir, "events.out.tfevents.*"))[0])
    events.Reload()
    tb_points = sorted(
        (event.step, tag, round(event.value, 5)) for tag in events.Tags()["scalars"] for event in events.Scalars(tag)
    )

    def plain(metrics: dict[str, Any]) -> dict[str, float]:
        return {k: round(float(v), 5) for k, v in metrics.items()}

    return {
        "csv_header": list(rows[0].keys()),
        "csv": [list(p) for p in csv_points],
        "tensorboard": [list(p) for p in tb_points],
        "callback_metrics": plain(trainer.callback_metrics),
        "logged_metrics": plain(trainer.logged_metrics),
        "progress_bar_metrics": plain(trainer.progress_bar_metrics),
    }
