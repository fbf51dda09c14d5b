"""Numeric precision: the dtype a module trains in and the autocast around its steps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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
    "16-mixed": "16-mixed",
    "16": "16-mixed",
    16: "16-mixed",
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
        self.autocast = self.name in ("bf16-mixed", "16-mixed")
        self._autocast_dtype = torch.float16 if self.name == "16-mixed" else torch.bfloat16
        #: Loss scaling for float16 mixed precision: scaled backward, unscale before clipping,
        #: steps skipped when gradients overflow.
        self.scaler: torch.amp.GradScaler | None = (
            torch.amp.GradScaler(self._device_type) if self.name == "16-mixed" else None
        )

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
            with torch.autocast(self._device_type, dtype=self._autocast_dtype):
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
    def module_dtype(self) -> torch.dtype | None:
        """The dtype modules are cast to ("-true" precisions), else ``None``."""
        return self._dtype

    @property
    def converts_input(self) -> bool:
        """Whether batches must be cast (the "-true" precisions other than 32)."""
        return self._dtype is not None

    @property
    def needs_context(self) -> bool:
        """Whether :meth:`forward_context` does anything (the loops skip it when not)."""
        return self.autocast or self._dtype is not None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to run backward on: scaled under float16 mixed precision, else unchanged."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def step(
        self, optimizer: Any, closure: Callable[[], Any] | None, after_closure: Callable[[], None], **kwargs: Any
    ) -> Any:
        """Run ``closure`` (forward and backward), ``after_closure`` (pre-step hooks, clipping) on
        unscaled gradients, then step, skipping the step when the gradients overflowed."""
        result = closure() if closure is not None else None
        scaler = self.scaler
        if scaler is None:
            after_closure()
            optimizer.step(**kwargs)
            return result
        scaler.unscale_(optimizer)
        after_closure()
        if closure is None or result is not None:  # a skipped backward has no gradients to step on
            scaler.step(optimizer, **kwargs)
            scaler.update()
        return result

    def state_dict(self) -> dict[str, Any]:
        """The loss scaler's state (empty when there is none)."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the loss scaler's state."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


class ScalingOptimizer:
    """The optimizer handed to ``optimizer_step`` under float16 mixed precision: its ``step(closure)``
    unscales gradients before the pre-step hooks and clipping, and skips steps that overflowed."""

    def __init__(self, optimizer: Any, precision: Precision, after_closure: Callable[[], None]) -> None:
        self.optimizer = optimizer
        self._precision = precision
        self._after_closure = after_closure

    @property
    def param_groups(self) -> Any:
        return self.optimizer.param_groups

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        return self._precision.step(self.optimizer, closure, self._after_closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)
