"""Loggers receive what Lightning's receive: the (step, name, value) points in metrics.csv and in the
TensorBoard event file, read back with the csv module and tensorboard's EventAccumulator, for a script
mixing on_step/on_epoch, reduce_fx, log_dict and a torchmetrics object with two loggers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorboard")
pytest.importorskip("torchmetrics")
sys.path.insert(0, str(Path(__file__).parent / "parity"))
import logger_output  # noqa: E402

EXPECTED: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "logger_output.json").read_text())


def test_csv_and_tensorboard_points_equal_lightnings(tmp_path: Path) -> None:
    """Every logged point (step, name, value), the CSV columns, and the metric dictionaries equal Lightning's."""
    ours = logger_output.run("fulmen", str(tmp_path))
    assert ours["csv_header"] == EXPECTED["csv_header"]
    assert ours["csv"] == EXPECTED["csv"]
    assert ours["tensorboard"] == EXPECTED["tensorboard"]
    for key in ("callback_metrics", "logged_metrics", "progress_bar_metrics"):
        assert ours[key] == EXPECTED[key], key
