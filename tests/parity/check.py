"""The parity suite: each scenario runs under Lightning and under fulmen in this process and must agree.

Run in the ``parity`` hatch environment (which installs Lightning as a test-only dependency):
``hatch run parity:check``. It also reports when Lightning's live results drift from the fixtures
recorded in ``tests/fixtures/lightning`` (which the regular test suite compares fulmen against).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures" / "lightning"
sys.path.insert(0, str(HERE))

import checkpoint_interop  # noqa: E402
import logger_output  # noqa: E402
import loop_flags  # noqa: E402
import manual_optimization  # noqa: E402
import torchmetrics_logging  # noqa: E402


def same(a: Any, b: Any, tolerance: float = 1e-5) -> bool:
    """Equal structures, floats within ``tolerance``."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=0, abs_tol=tolerance)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, tolerance) for x, y in zip(a, b))
    return bool(a == b)


def main() -> int:
    failures: list[str] = []
    drift: list[str] = []
    scenarios: dict[str, Any] = {
        "manual_optimization": manual_optimization.run,
        "loop_flags": loop_flags.run,
        "torchmetrics_logging": torchmetrics_logging.run,
    }
    for name, run in scenarios.items():
        theirs, ours = run("lightning"), run("fulmen")
        print(f"{name}: {'same' if same(ours, theirs) else 'DIFFERENT'}", flush=True)
        if not same(ours, theirs):
            failures.append(name)
        fixture = FIXTURES / f"{name}.json"
        if fixture.exists() and not same(json.loads(fixture.read_text()), json.loads(json.dumps(theirs))):
            drift.append(name)
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        theirs, ours = logger_output.run("lightning", first), logger_output.run("fulmen", second)
    print(f"logger_output: {'same' if same(ours, theirs) else 'DIFFERENT'}", flush=True)
    if not same(ours, theirs):
        failures.append("logger_output")
    with tempfile.TemporaryDirectory() as directory:
        results = {
            (saver, resumer): checkpoint_interop.run(saver, resumer, directory)
            for saver in ("lightning", "fulmen")
            for resumer in ("lightning", "fulmen")
        }
    reference = results[("lightning", "lightning")]
    for combination, result in results.items():
        ok = same(result, reference)
        print(f"checkpoint {combination[0]} -> {combination[1]}: {'same' if ok else 'DIFFERENT'}", flush=True)
        if not ok:
            failures.append(f"checkpoint {combination}")
    if drift:
        print(f"note: Lightning's live results differ from the recorded fixtures for {drift}; re-record them")
    print(f"parity: {len(failures)} failed" + (f": {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
