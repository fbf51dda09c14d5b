"""Record Lightning's lr_find and scale_batch_size on the digits scenario of ``tests/test_tuner.py``.

Run under Lightning 2.6.6 (``hatch run parity:python tests/parity/tuner.py``); writes
``tests/fixtures/lightning/tuner.json``, which ``tests/test_tuner.py`` compares fulmen against.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as L  # type: ignore[import-not-found]  # only in the parity environment
import torch
from lightning.pytorch.tuner import Tuner  # type: ignore[import-not-found]  # only in the parity environment
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "lightning" / "tuner.json"


def main() -> None:
    warnings.simplefilter("ignore")
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)

    class Digits(L.LightningModule):  # type: ignore[misc]  # Lightning is untyped here
        def __init__(self, lr: float = 0.01, batch_size: int = 32, oom_above: int | None = None) -> None:
            super().__init__()
            self.lr, self.batch_size, self.oom_above = lr, batch_size, oom_above
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            inputs, targets = batch
            if self.oom_above is not None and inputs.shape[0] > self.oom_above:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return torch.nn.functional.cross_entropy(self.net(inputs), targets)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.lr)

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(TensorDataset(x, y), batch_size=self.batch_size, shuffle=True)

    flags: dict[str, Any] = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    record: dict[str, Any] = {}
    scenarios: dict[str, dict[str, Any]] = {
        "default": {"num_training": 60},
        "linear": {"num_training": 40, "mode": "linear", "max_lr": 3.0},
    }
    for name, kwargs in scenarios.items():
        L.seed_everything(7)
        model = Digits()
        result = Tuner(L.Trainer(max_epochs=3, **flags)).lr_find(model, **kwargs)
        record[f"lr_find_{name}"] = {
            "kwargs": kwargs, "lr": result.results["lr"], "loss": result.results["loss"],
            "suggestion": result.suggestion(), "model_lr": model.lr,
        }
    for mode, margin in (("power", 0.05), ("binsearch", 0.05), ("binsearch", 0.0)):
        L.seed_everything(7)
        model = Digits(oom_above=100)
        found = Tuner(L.Trainer(max_epochs=1, **flags)).scale_batch_size(model, mode=mode, margin=margin)
        record[f"scale_{mode}_{margin}"] = {"found": found, "model_batch_size": model.batch_size}
    OUT.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
