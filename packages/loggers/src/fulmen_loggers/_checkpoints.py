"""Which checkpoint files of a checkpoint callback a logger has not uploaded yet (duck-typed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def scan_checkpoints(
    checkpoint_callback: Any, logged_model_time: dict[str, float]
) -> list[tuple[float, str, Any, str]]:
    """``(mtime, path, score, tag)`` of each checkpoint file that is new or changed since it was logged.

    Reads ``last_model_path``/``current_score``, ``best_model_path``/``best_model_score`` and
    ``best_k_models`` when the callback has them (any ``ModelCheckpoint``-like object), oldest first.
    """
    found: dict[str, tuple[Any, str]] = {}
    if hasattr(checkpoint_callback, "last_model_path") and hasattr(checkpoint_callback, "current_score"):
        found[checkpoint_callback.last_model_path] = (checkpoint_callback.current_score, "latest")
    if hasattr(checkpoint_callback, "best_model_path") and hasattr(checkpoint_callback, "best_model_score"):
        found[checkpoint_callback.best_model_path] = (checkpoint_callback.best_model_score, "best")
    for path, score in getattr(checkpoint_callback, "best_k_models", {}).items():
        found[path] = (score, "best_k")
    files = sorted(
        (Path(path).stat().st_mtime, path, score, tag)
        for path, (score, tag) in found.items()
        if path and Path(path).is_file()
    )
    return [entry for entry in files if entry[1] not in logged_model_time or logged_model_time[entry[1]] < entry[0]]
