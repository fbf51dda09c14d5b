"""torchmetrics objects logged with self.log (per step from their forward, per epoch from compute(), reset
after each epoch) give the same metric dictionaries as in Lightning."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torchmetrics")
sys.path.insert(0, str(Path(__file__).parent / "parity"))
import torchmetrics_logging  # noqa: E402

EXPECTED: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "torchmetrics_logging.json").read_text())


def test_torchmetrics_logging_equals_lightnings() -> None:
    """Step values, epoch values, validation results and final dictionaries all equal Lightning's."""
    ours = torchmetrics_logging.run("fulmen")
    assert ours["snapshots"] == EXPECTED["snapshots"]
    assert ours["validate"] == EXPECTED["validate"]
    assert ours["after"] == EXPECTED["after"]
