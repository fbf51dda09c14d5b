"""Walking nested batches: apply a function to every tensor, move a batch to a device."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Callable

import torch


def apply_to_tensors(data: Any, function: Callable[[torch.Tensor], Any]) -> Any:
    """Return ``data`` with ``function`` applied to each tensor inside lists, tuples, dicts and
    dataclasses; other values are returned unchanged."""
    if isinstance(data, torch.Tensor):
        return function(data)
    if isinstance(data, (list, tuple)):
        items = [apply_to_tensors(item, function) for item in data]
        if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
            return type(data)(*items)
        return type(data)(items) if type(data) in (list, tuple) else _rebuild(data, items)
    if isinstance(data, Mapping):
        mapped = {key: apply_to_tensors(value, function) for key, value in data.items()}
        return mapped if type(data) is dict else _rebuild(data, mapped)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        changes = {
            f.name: apply_to_tensors(getattr(data, f.name), function)
            for f in dataclasses.fields(data)
            if f.init
        }
        return dataclasses.replace(data, **changes)
    return data


def _rebuild(original: Any, contents: Any) -> Any:
    try:
        return type(original)(contents)
    except TypeError:  # a container type whose constructor takes something else
        return contents


def move_data_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in ``batch`` (and any object with a ``.to(device)`` method) to ``device``."""
    non_blocking = device.type != "cpu"

    def move(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device, non_blocking=non_blocking)

    if isinstance(batch, torch.Tensor):
        return move(batch)
    if not isinstance(batch, (list, tuple, Mapping)) and hasattr(batch, "to"):
        return batch.to(device)
    return apply_to_tensors(batch, move)
