"""Input samples: check their form, find the batch axis, and derive samples of other batch sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fulmen_export._errors import InvalidInputSampleError

Args = tuple[torch.Tensor, ...]


def as_args(input_sample: Any, *, owner: str) -> Args:
    """``input_sample`` as ``forward``'s positional arguments: a tensor, or a tuple/list of them."""
    if isinstance(input_sample, torch.Tensor):
        return (input_sample,)
    if (
        isinstance(input_sample, (tuple, list))
        and len(input_sample) > 0
        and all(isinstance(item, torch.Tensor) for item in input_sample)
    ):
        return tuple(input_sample)
    raise InvalidInputSampleError(
        f"{owner} needs an input sample that is a tensor or a non-empty tuple/list of tensors "
        f"(the positional arguments of forward), but got {describe(input_sample)}. Pass e.g. "
        "input_sample=torch.randn(1, 64), or set example_input_array on the module"
    )


def describe(value: Any) -> str:
    """A short description of a sample for error messages: shapes and dtypes, not values."""
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe(item) for item in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={describe(v)}" for k, v in value.items()) + ")"
    return type(value).__name__


def batch_size(args: Args) -> int | None:
    """The size of dim 0 of the first tensor that has dimensions; ``None`` if there is none."""
    for tensor in args:
        if tensor.ndim >= 1:
            return int(tensor.shape[0])
    return None


def batched(args: Args, size: int) -> tuple[bool, ...]:
    """Which arguments carry the batch axis: those whose dim 0 has the sample's batch size."""
    return tuple(t.ndim >= 1 and int(t.shape[0]) == size for t in args)


def with_batch_size(args: Args, size: int, new_size: int) -> Args:
    """``args`` with every batched tensor grown or shrunk to ``new_size`` rows.

    Rows are taken from the sample itself (in reverse order, cycling), so that integer inputs such
    as token ids stay valid; the point is to exercise the batch axis, not new values.
    """
    flags = batched(args, size)
    rows = torch.arange(new_size - 1, -1, -1) % size
    return tuple(
        t.index_select(0, rows.to(t.device)) if is_batched else t
        for t, is_batched in zip(args, flags, strict=True)
    )


def batch_dynamic_shapes(flags: Sequence[bool]) -> tuple[dict[int, Any] | None, ...]:
    """``dynamic_shapes`` for ``torch.export``: one batch dimension shared by the batched inputs."""
    # min=1 because serving at batch size 1 is common; the default lower bound may exclude it.
    batch = torch.export.Dim("batch", min=1)
    return tuple({0: batch} if flag else None for flag in flags)
