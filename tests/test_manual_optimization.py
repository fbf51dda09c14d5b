"""Manual optimization (two optimizers, toggling, manual_backward, clip_gradients, a scheduler stepped by
hand) behaves exactly as in Lightning: same hook calls, step count, learning rate and final weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen_core import MisconfigurationException

sys.path.insert(0, str(Path(__file__).parent / "parity"))
import manual_optimization  # noqa: E402

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "manual_optimization.json").read_text())
OURS = manual_optimization.run("fulmen")


def test_hook_calls_and_step_counts_equal_lightnings() -> None:
    """Each optimizer step runs on_before_optimizer_step (callbacks first) and counts toward global_step, as in Lightning."""
    assert OURS["events"] == EXPECTED["events"]
    assert OURS["global_step"] == EXPECTED["global_step"] == 12


def test_final_weights_and_learning_rate_equal_lightnings() -> None:
    """The trained weights and the hand-stepped scheduler's learning rate equal Lightning's exactly."""
    assert OURS["lr_g"] == EXPECTED["lr_g"]
    assert OURS["weights"] == EXPECTED["weights"]
    assert OURS["callback_metrics"] == EXPECTED["callback_metrics"]


class Manual(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        (x,) = batch
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(self.layer(x).pow(2).mean())
        opt.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data() -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)


def _trainer(**flags: Any) -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=1, **flags)


@pytest.mark.parametrize(("flag", "value"), [("gradient_clip_val", 0.5), ("accumulate_grad_batches", 2)])
def test_trainer_side_clipping_and_accumulation_are_refused_in_manual_mode(flag: str, value: Any) -> None:
    """gradient_clip_val and accumulate_grad_batches with manual optimization are errors that say what to do instead."""
    with pytest.raises(MisconfigurationException, match=flag):
        _trainer(**{flag: value}).fit(Manual(), _data())


def test_manual_backward_in_automatic_mode_is_refused() -> None:
    """Calling manual_backward while automatic optimization is on names the setting to change."""

    class Wrong(Manual):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = True

        def training_step(self, batch: Any, batch_idx: int) -> None:
            (x,) = batch
            self.manual_backward(self.layer(x).sum())

    with pytest.raises(MisconfigurationException, match="automatic_optimization = False"):
        _trainer().fit(Wrong(), _data())
