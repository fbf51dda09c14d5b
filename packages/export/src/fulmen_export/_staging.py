"""Atomic artifact writes: write next to the target, verify, then move into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fulmen_export._errors import ExportError


@contextmanager
def staged_artifact(target: Path) -> Iterator[Path]:
    """Yield a path with ``target``'s name inside a private directory next to ``target``.

    The exporter writes there (side files such as ONNX external data land beside it under their
    final names); when the block finishes without error, side files are moved next to ``target``
    and the artifact itself is moved to ``target`` last, with ``os.replace`` (atomic on one file
    system).
    On any error the directory is deleted and ``target`` is left as it was: never a partial file.
    """
    if target.is_dir():
        raise ExportError(
            f"the export target {target} is a directory; pass a file path such as "
            f"{target / 'model.onnx'}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = staging / target.name
    try:
        yield staged
        if not staged.is_file():
            raise ExportError(f"the exporter wrote nothing to {staged}; {target} was not written")
        for side_file in staging.iterdir():
            if side_file != staged:
                os.replace(side_file, target.parent / side_file.name)
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
