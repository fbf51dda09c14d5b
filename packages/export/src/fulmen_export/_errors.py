"""The errors an export raises, each naming what went wrong and the fix."""

from __future__ import annotations

from pathlib import Path


class ExportError(RuntimeError):
    """The module could not be written as an artifact (e.g. its ``forward`` cannot be traced)."""


class InvalidInputSampleError(ExportError, ValueError):
    """The input sample is not tensors, or not something the module's ``forward`` accepts."""


class ExportVerificationError(ExportError):
    """The written artifact does not reproduce the eager module within tolerance.

    The numbers are kept as attributes so that a caller can decide what to do with them.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        batch_size: int | None,
        output_index: int,
        max_abs_error: float,
        atol: float,
        rtol: float,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.batch_size = batch_size
        self.output_index = output_index
        self.max_abs_error = max_abs_error
        self.atol = atol
        self.rtol = rtol
