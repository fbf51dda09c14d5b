"""Walking nested batches: apply a function to every tensor, move a batch to a device."""

from __future__ import annotations

import collections
import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, Callable

import torch


def apply_to_tensors(
    data: Any,
    function: Callable[[torch.Tensor], Any],
    other: Callable[[Any], Any] | None = None,
) -> Any:
    """Return ``data`` with ``function`` applied to each tensor inside lists, tuples, dicts and
    dataclasses; other values go through ``other`` when given, else are returned unchanged."""
    if isinstance(data, torch.Tensor):
        return function(data)
    if isinstance(data, (list, tuple)):
        items = [apply_to_tensors(item, function, other) for item in data]
        if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
            return type(data)(*items)
        return type(data)(items) if type(data) in (list, tuple) else _rebuild(data, items)
    if isinstance(data, Mapping):
        mapped = {key: apply_to_tensors(value, function, other) for key, value in data.items()}
        if type(data) is dict:
            return mapped
        if isinstance(data, collections.defaultdict):
            return type(data)(data.default_factory, mapped)
        return _rebuild(data, mapped)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        # A shallow copy with the constructor fields replaced: __post_init__ is not run again, and
        # init=False fields keep their values (as in Lightning).
        result = copy.copy(data)
        for field in dataclasses.fields(data):
            if field.init:
                object.__setattr__(result, field.name, apply_to_tensors(getattr(data, field.name), function, other))
        return result
    return other(data) if other is not None else data


def _rebuild(original: Any, contents: Any) -> Any:
    try:
        return type(original)(contents)
    except TypeError:  # a container type whose constructor takes something else
        return contents


def move_data_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in ``batch`` (and any object with a ``.to(device)`` method) to ``device``.

    Tensors already on ``device`` are returned as they are, so a batch that is where it should be
    costs a device comparison per tensor.
    """
    kind = type(batch)
    if kind is torch.Tensor:
        return batch if batch.device == device else batch.to(device, non_blocking=_non_blocking(device))
    if kind is list or kind is tuple:
        # the common (inputs, targets) batch, without the generic walk
        moved = []
        for item in batch:
            if type(item) is not torch.Tensor:
                break
            moved.append(item if item.device == device else item.to(device, non_blocking=_non_blocking(device)))
        else:
            return moved if kind is list else tuple(moved)
    non_blocking = _non_blocking(device)

    def move(tensor: torch.Tensor) -> torch.Tensor:
        return tensor if tensor.device == device else tensor.to(device, non_blocking=non_blocking)

    def move_other(value: Any) -> Any:
        # Objects that know how to move themselves (e.g. a tokenizer's BatchEncoding).
        mover = getattr(value, "to", None)
        return mover(device) if callable(mover) and not isinstance(value, (str, bytes)) else value

    return apply_to_tensors(batch, move, move_other)


def _non_blocking(device: torch.device) -> bool:
    # Asynchronous copies pay off into accelerator memory; into host memory they could be read early.
    return device.type != "cpu"
