"""The ``Loop`` role: how a stage runs."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

_T_co = TypeVar("_T_co", covariant=True)


class Loop(Protocol[_T_co]):
    """Runs one stage (fit, validate, test or predict) to completion and returns its result."""

    def run(self) -> _T_co:
        """Run the stage."""
        ...


class SupportsStateDict(Protocol):
    """An object whose progress can be saved into and restored from a checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        """The state to save, as plain data."""
        ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...
