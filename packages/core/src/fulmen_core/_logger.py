"""The ``Logger`` role: where metrics go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Logger(Protocol):
    """A sink for scalar metrics and hyperparameters (CSV files, TensorBoard, a tracking server)."""

    @property
    def name(self) -> str | None:
        """The experiment name, or ``None`` when the backend has none."""
        ...

    @property
    def version(self) -> int | str | None:
        """The run's version inside the experiment."""
        ...

    @property
    def save_dir(self) -> str | None:
        """The root directory the logger writes under, or ``None`` for remote backends."""
        ...

    @property
    def log_dir(self) -> str | None:
        """The directory of this run's files (``save_dir/name/version``), or ``None``."""
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record scalar ``metrics`` at ``step``."""
        ...

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        """Record the run's hyperparameters."""
        ...

    def save(self) -> None:
        """Flush buffered records to the backend."""
        ...

    def finalize(self, status: str) -> None:
        """Close the run; ``status`` is ``"success"``, ``"failed"`` or ``"interrupted"``."""
        ...
