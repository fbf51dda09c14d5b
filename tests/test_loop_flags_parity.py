"""Loop flags (limits, sanity steps, fast_dev_run, validation scheduling, max/min epochs and steps,
reloading, accumulation, clipping) run the same batches in the same order as Lightning, and a seeded run
with shuffled data, dropout, Adam, StepLR, clipping and accumulation gives Lightning's losses and weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "parity"))
import loop_flags  # noqa: E402

EXPECTED: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "loop_flags.json").read_text())
OURS = loop_flags.run("fulmen")


@pytest.mark.parametrize("name", sorted(loop_flags.CONFIGS))
def test_configuration_runs_like_lightning(name: str) -> None:
    """The batch/validation sequence, dataloader requests, counters and metric names equal Lightning's."""
    ours, theirs = OURS[name], EXPECTED[name]
    for key in ("events", "loads", "global_step", "current_epoch", "num_training_batches", "num_val_batches", "callback_metrics"):
        assert ours[key] == theirs[key], key
    assert ours["lr"] == pytest.approx(theirs["lr"], rel=1e-9), "learning rate after the scheduler steps"


@pytest.mark.parametrize("name", ["seeded", "seeded_value_clip"])
def test_seeded_losses_and_weights_equal_lightnings(name: str) -> None:
    """Every loss and final weight of the seeded runs equals Lightning's to 1e-6."""
    assert OURS[name]["losses"] == pytest.approx(EXPECTED[name]["losses"], abs=1e-6)
    for ours, theirs in zip(OURS[name]["weights"], EXPECTED[name]["weights"]):
        assert ours == pytest.approx(theirs, abs=1e-6)
