"""Numeric precision: the dtype a module trains in and the autocast around its steps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from fulmen_core import Accelerator, MisconfigurationException, apply_to_tensors

# Lightning's accepted spellings, mapped to the canonical names.
_ALIASES: dict[object, str] = {
    "32-true": "32-true",
    "32": "32-true",
    32: "32-true",
    "64-true": "64-true",
    "64": "64-true",
    64: "64-true",
    "bf16-mixed": "bf16-mixed",
    "bf16": "bf16-mixed",
    "bf16-true": "bf16-true",
    "16-true": "16-true",
}

_TRUE_DTYPES = {"64-true": torch.float64, "bf16-true": torch.bfloat16, "16-true": torch.float16}


def canonical_precision(precision: object) -> str:
    """The canonical name for ``precision`` (``32`` and ``"32"`` are ``"32-true"``, ...)."""
    name = _ALIASES.get(precision)
    if name is None:
        known = sorted({k for k in _ALIASES if isinstance(k, str)})
        raise MisconfigurationException(
            f"precision={precision!r} is not supported; choose one of {known}"
        )
    return name


class Precision:
    """How steps run for one precision: module dtype, input conversion and autocast."""

    def __init__(self, precision: object = "32-true", accelerator: Accelerator | None = None) -> None:
        self.name = canonical_precision(precision)
        if accelerator is not None and self.name not in accelerator.supported_precisions:
            raise MisconfigurationException(
                f"precision={self.name!r} is not supported by the {accelerator.name!r} "
                f"accelerator; it supports {sorted(accelerator.supported_precisions)}"
            )
        self._device_type = accelerator.autocast_device_type if accelerator is not None else "cpu"
        self._dtype: torch.dtype | None = _TRUE_DTYPES.get(self.name)
        self.autocast = self.name == "bf16-mixed"

    def convert_module(self, module: torch.nn.Module) -> None:
        """Cast the module's floating-point parameters for the "-true" precisions."""
        if self._dtype is not None:
            module.to(dtype=self._dtype)

    def convert_input(self, batch: Any) -> Any:
        """Cast floating-point tensors of ``batch`` to the module's dtype (the "-true" precisions)."""
        dtype = self._dtype
        if dtype is None:
            return batch

        def cast(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(dtype) if tensor.is_floating_point() else tensor

        return apply_to_tensors(batch, cast)

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        """Autocast (mixed precision) or the default dtype ("-true") around a step."""
        if self.autocast:
            with torch.autocast(self._device_type, dtype=torch.bfloat16):
                yield
        elif self._dtype is not None:
            previous = torch.get_default_dtype()
            if self._dtype.is_floating_point and self._dtype in (torch.float64, torch.float32):
                torch.set_default_dtype(self._dtype)
            try:
                yield
            finally:
                torch.set_default_dtype(previous)
        else:
            yield

    @property
    def converts_input(self) -> bool:
        """Whether batches must be cast (the "-true" precisions other than 32)."""
        return self._dtype is not None

    @property
    def needs_context(self) -> bool:
        """Whether :meth:`forward_context` does anything (the loops skip it when not)."""
        return self.autocast or self._dtype is not None
