"""Importing fulmen_core: nothing heavy comes with it, and every exported name exists."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import fulmen_core

FORBIDDEN_PREFIXES = (
    "torchmetrics",
    "tensorboard",
    "onnx",
    "tqdm",
    "rich",
    "torch._dynamo",
    "lightning",
    "pytorch_lightning",
)

_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch
    before = set(sys.modules)
    import fulmen_core
    print(json.dumps(sorted(set(sys.modules) - before)))
    """
)


def _is_forbidden(name: str) -> bool:
    return name.startswith(FORBIDDEN_PREFIXES)


def test_import_pulls_in_no_heavy_library() -> None:
    """In a fresh interpreter, importing fulmen_core after torch adds no torchmetrics/tensorboard/onnx/tqdm/rich/dynamo/lightning module."""
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120)
    added: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    assert "fulmen_core" in added  # the probe measured the import it was meant to
    assert [name for name in added if _is_forbidden(name)] == []


def test_all_names_resolve() -> None:
    """Every name in ``fulmen_core.__all__`` is an attribute of the package, listed once."""
    missing = [name for name in fulmen_core.__all__ if not hasattr(fulmen_core, name)]
    assert missing == []
    assert len(set(fulmen_core.__all__)) == len(fulmen_core.__all__)


def test_public_names_are_exported() -> None:
    """The classes and functions the design names are exported from the top level."""
    expected = {
        "Accelerator",
        "Callback",
        "Exporter",
        "LightningDataModule",
        "LightningModule",
        "Logger",
        "Loop",
        "MisconfigurationException",
        "Module",
        "Registry",
        "SupportsStateDict",
        "apply_to_tensors",
        "isolate_rng",
        "move_data_to_device",
        "seed_everything",
    }
    assert expected <= set(fulmen_core.__all__)
    assert isinstance(fulmen_core.__version__, str) and fulmen_core.__version__
