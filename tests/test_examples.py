"""The examples run as a new user would run them and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_digits_example_trains_and_reports_test_accuracy() -> None:
    """examples/digits.py trains on scikit-learn's digits and prints a test accuracy well above chance."""
    output = _run(str(EXAMPLES / "digits.py"), "--max-epochs", "4")
    found = re.search(r"test accuracy: ([0-9.]+)", output)
    assert found is not None, output[-1000:]
    assert float(found.group(1)) > 0.8
    assert "epoch  3" in output


def test_pieces_only_example_uses_core_and_loops_alone() -> None:
    """examples/pieces_only.py learns y = 3x - 1 without importing the meta-package or any logger, exporter or metrics library."""
    output = _run(str(EXAMPLES / "pieces_only.py"))
    assert "learned y = 3.00x -1.00" in output
    assert "heavy or meta modules imported: none" in output


def test_typed_usage_example_runs() -> None:
    """examples/typed_usage.py (type-checked in CI) trains, checkpoints and tests from the best checkpoint."""
    output = _run(str(EXAMPLES / "typed_usage.py"))
    assert re.search(r"best checkpoint: epoch=\d+-step=\d+\.ckpt; test_loss=", output)


def test_custom_loop_example_interleaves_two_datasets() -> None:
    """examples/custom_loop.py replaces the fit loop with one that alternates batches of two datasets."""
    output = _run(str(EXAMPLES / "custom_loop.py"))
    assert "8 steps; targets seen in order: [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]" in output
