"""A run that crashes keeps what it logged: CSV rows and TensorBoard scalars are on disk after the process dies."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def _scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``tag`` as TensorBoard's own EventAccumulator reads the event file."""
    module: Any = importlib.import_module("tensorboard.backend.event_processing.event_accumulator")
    acc = module.EventAccumulator(str(log_dir))
    acc.Reload()
    return [(event.step, event.value) for event in acc.Scalars(tag)]


@pytest.mark.parametrize("ending", ["raise RuntimeError('boom')", "sys.exit(3)"])
def test_crashed_process_keeps_what_it_logged(tmp_path: Path, ending: str) -> None:
    """Rows still buffered (CSV) and events still queued (TensorBoard) are written when the process dies."""
    script = textwrap.dedent(
        f"""
        import sys
        from fulmen_loggers import CSVLogger
        loggers = [CSVLogger(sys.argv[1], name="csv", flush_logs_every_n_steps=100)]
        if {HAS_TENSORBOARD}:
            from fulmen_loggers import TensorBoardLogger
            loggers.append(TensorBoardLogger(sys.argv[1], name="tb", flush_secs=600, max_queue=1000))
        for step in range(7):
            for logger in loggers:
                logger.log_metrics({{"loss": step / 2}}, step=step)
        {ending}
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    with (tmp_path / "csv" / "version_0" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["step"], row["loss"]) for row in rows] == [(str(s), str(s / 2)) for s in range(7)]
    if HAS_TENSORBOARD:
        assert _scalars(tmp_path / "tb" / "version_0", "loss") == [(s, s / 2) for s in range(7)]
