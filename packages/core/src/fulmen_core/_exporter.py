"""The ``Exporter`` role: artifacts for serving."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import attrs
import torch


@attrs.frozen
class ExportResult:
    """What an exporter wrote and how closely the artifact reproduced the eager module."""

    path: Path
    format: str
    max_abs_error: float
    checked_batch_sizes: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]


class Exporter(Protocol):
    """Writes a module as a serving artifact and verifies it against the eager module."""

    def export(
        self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
    ) -> ExportResult:
        """Write ``module`` to ``path`` traced on ``input_sample``; raise if the artifact disagrees."""
        ...
