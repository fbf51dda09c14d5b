"""Seeded runs: fulmen draws from the global RNG exactly where Lightning does, so the losses are identical.

The expected losses and RNG-state traces in ``fixtures/lightning/rng.json`` were recorded under Lightning
2.6.6 with the same data, network (with dropout), shuffled DataLoader and seed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from hook_recorder import quiet_trainer

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "rng.json").read_text())
_G = torch.Generator().manual_seed(123)
X, Y = torch.randn(10, 4, generator=_G), torch.randn(10, 1, generator=_G)
XV, YV = torch.randn(6, 4, generator=_G), torch.randn(6, 1, generator=_G)


def rng_fingerprint() -> str:
    """A short digest of the global torch RNG state."""
    return hashlib.md5(torch.get_rng_state().numpy().tobytes()).hexdigest()[:8]


class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1)
        )
        self.losses: list[float] = []
        self.trace: list[list[str]] = []

    def _mark(self, where: str) -> None:
        self.trace.append([where, rng_fingerprint()])

    def on_fit_start(self) -> None:
        self._mark("on_fit_start")

    def on_train_start(self) -> None:
        self._mark("on_train_start")

    def on_train_epoch_start(self) -> None:
        self._mark("on_train_epoch_start")

    def on_train_epoch_end(self) -> None:
        self._mark("on_train_epoch_end")

    def on_validation_start(self) -> None:
        self._mark("on_validation_start")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self._mark(f"training_step[{batch_idx}]")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._mark(f"validation_step[{batch_idx}]{'S' if self.trainer.sanity_checking else ''}")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader[Any]:
        self._mark("train_dataloader()")
        return DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        self._mark("val_dataloader()")
        return DataLoader(TensorDataset(XV, YV), batch_size=3, shuffle=False)


def _run(**flags: Any) -> dict[str, Any]:
    L.seed_everything(7, verbose=False)
    model = Net()
    trace = [["after_model_init", rng_fingerprint()]]
    quiet_trainer(max_epochs=2, **flags).fit(model)
    return {"losses": model.losses, "trace": trace + model.trace + [["after_fit", rng_fingerprint()]]}


@pytest.mark.parametrize(
    ("recording", "flags"),
    [
        ("lightning_noval", {"limit_val_batches": 0, "num_sanity_val_steps": 2}),
        ("lightning_val_sanity2", {"num_sanity_val_steps": 2}),
        ("lightning_val_sanity0", {"num_sanity_val_steps": 0}),
    ],
)
def test_seeded_losses_equal_lightnings_bit_for_bit(recording: str, flags: dict[str, Any]) -> None:
    """Shuffled data, dropout and validation give Lightning's loss sequence exactly, with or without a sanity check."""
    ours = _run(**flags)
    assert ours["losses"] == EXPECTED[recording]["losses"]


@pytest.mark.parametrize(
    ("recording", "flags"),
    [
        ("lightning_noval", {"limit_val_batches": 0, "num_sanity_val_steps": 2}),
        ("lightning_val_sanity2", {"num_sanity_val_steps": 2}),
    ],
)
def test_rng_state_at_each_hook_equals_lightnings(recording: str, flags: dict[str, Any]) -> None:
    """The global RNG state seen by each hook equals Lightning's, so hooks that draw random numbers agree too."""
    ours = _run(**flags)
    theirs = [list(item) for item in EXPECTED[recording]["trace"]]
    assert ours["trace"] == theirs
