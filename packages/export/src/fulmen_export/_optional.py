"""Optional dependencies (the ``onnx`` extra), imported only when an export needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

ONNX_EXTRA_INSTALL = "pip install 'fulmen-export[onnx]'"


def require(name: str, *, owner: str, purpose: str) -> ModuleType:
    """Import ``name``, or raise an error naming who needs it, why, and the install line."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ModuleNotFoundError(
            f"{owner} needs the {name!r} package {purpose}, and it is not installed; install the "
            f"ONNX extra: {ONNX_EXTRA_INSTALL}",
            name=name,
        ) from err
