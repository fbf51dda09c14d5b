"""Every README's Python examples run as written: each README's ```python blocks, in order, as one
script in a fresh process and an empty working directory (a README is read top to bottom). Fragments
that need the reader's own code are fenced as ```py and not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _script(readme: Path) -> str:
    return "\n\n".join(_BLOCK.findall(readme.read_text()))


@pytest.mark.parametrize("readme", [r for r in READMES if _script(r)], ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_examples_run(readme: Path, tmp_path: Path) -> None:
    """The README's Python blocks run without error."""
    script = tmp_path / "readme_example.py"
    script.write_text(_script(readme))
    env = {**os.environ, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, f"{readme}:\n{result.stderr[-3000:]}"
