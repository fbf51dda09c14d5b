"""Tests of importing fulmen_export: nothing heavy comes with it, and every exported name exists."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import fulmen_export

_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch
    before = set(sys.modules)
    import fulmen_export
    print(json.dumps(sorted(set(sys.modules) - before)))
    """
)


def test_import_pulls_in_neither_onnx_nor_the_tracer() -> None:
    """In a fresh interpreter, importing fulmen_export adds no onnx, onnxruntime or dynamo code."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    added: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "fulmen_export" in added  # the probe measured the import it was meant to
    heavy = ("onnx", "onnxruntime", "onnxscript", "onnx_ir", "torch._dynamo", "torch.onnx")
    assert [name for name in added if name.startswith(heavy)] == []


def test_all_names_resolve() -> None:
    """Every name in ``fulmen_export.__all__`` is an attribute of the package, listed once."""
    assert [name for name in fulmen_export.__all__ if not hasattr(fulmen_export, name)] == []
    assert len(set(fulmen_export.__all__)) == len(fulmen_export.__all__)
    assert fulmen_export.__version__ == "0.1.0"
