"""The workspace layout and the dependency star, read from the pyproject files."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEAVES = ["core", "loops", "accelerators", "loggers", "callbacks", "export"]


def _requirement_names(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {re.split(r"[ <>=!~;\[]", dep, maxsplit=1)[0].lower().replace("_", "-") for dep in project.get("dependencies", [])}


@pytest.mark.parametrize("leaf", LEAVES)
def test_each_package_has_its_layout(leaf: str) -> None:
    """Every package has a pyproject, README, CHANGELOG, a typed import package with its own version, and tests."""
    base = ROOT / "packages" / leaf
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        assert (base / name).is_file(), f"packages/{leaf}/{name} is missing"
    source = base / "src" / f"fulmen_{leaf}"
    assert (source / "py.typed").is_file()
    assert re.search(r'__version__ = "\d+\.\d+\.\d+"', (source / "_version.py").read_text())
    assert (base / "tests").is_dir()
    project = tomllib.loads((base / "pyproject.toml").read_text())["project"]
    assert project["name"] == f"fulmen-{leaf}"


@pytest.mark.parametrize("leaf", [leaf for leaf in LEAVES if leaf != "core"])
def test_leaves_depend_on_core_and_no_sibling(leaf: str) -> None:
    """A leaf package depends on fulmen-core by a version range and on none of its siblings."""
    pyproject = ROOT / "packages" / leaf / "pyproject.toml"
    names = _requirement_names(pyproject)
    assert "fulmen-core" in names
    siblings = {f"fulmen-{other}" for other in LEAVES if other not in (leaf, "core")}
    assert not names & siblings, f"fulmen-{leaf} depends on {sorted(names & siblings)}"
    core_pin = [d for d in tomllib.loads(pyproject.read_text())["project"]["dependencies"] if d.startswith("fulmen-core")]
    assert core_pin and "==" not in core_pin[0], "depend on fulmen-core by a range, never =="


def test_core_depends_only_on_torch_typing_extensions_attrs() -> None:
    """fulmen-core's runtime dependencies are exactly torch, typing-extensions and attrs."""
    assert _requirement_names(ROOT / "packages" / "core" / "pyproject.toml") == {"torch", "typing-extensions", "attrs"}


def test_meta_package_depends_on_all_six() -> None:
    """The meta-package fulmen depends on every leaf package."""
    names = _requirement_names(ROOT / "pyproject.toml")
    assert {f"fulmen-{leaf}" for leaf in LEAVES} <= names


def test_import_fulmen_pulls_in_no_heavy_library() -> None:
    """import fulmen imports no torchmetrics, tensorboard, onnx, tqdm, rich or torch._dynamo beyond what torch itself does."""
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import fulmen\n"
        "new = set(sys.modules) - before\n"
        "heavy = ('torchmetrics', 'tensorboard', 'onnx', 'tqdm', 'rich', 'torch._dynamo', 'lightning', 'mlflow', 'wandb')\n"
        "print(sorted(m for m in new if m.startswith(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
