"""apply_to_tensors and move_data_to_device over nested batches."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, NamedTuple

import pytest
import torch
from fulmen_core import apply_to_tensors, move_data_to_device

META = torch.device("meta")


class Point(NamedTuple):
    coords: torch.Tensor
    name: str


@dataclasses.dataclass
class Batch:
    inputs: torch.Tensor
    targets: list[torch.Tensor]
    tag: str = "train"


class TupleSubclass(tuple[Any, ...]):
    pass


class Movable:
    """A non-tensor with ``.to(device)``, like a tokenizer batch or a sparse structure."""

    def __init__(self) -> None:
        self.device: torch.device | None = None

    def to(self, device: torch.device) -> Movable:
        self.device = device
        return self


def _nested() -> dict[str, Any]:
    return {
        "list": [torch.ones(2), 3, "s"],
        "tuple": (torch.zeros(1), (torch.ones(1), None)),
        "named": Point(torch.ones(2), "p"),
        "data": Batch(torch.ones(2), [torch.zeros(2)]),
        "ordered": collections.OrderedDict(a=torch.ones(1)),
        "plain": 1.5,
    }


def test_apply_to_tensors_on_a_tensor() -> None:
    """A bare tensor is passed to the function and its result returned."""
    assert torch.equal(apply_to_tensors(torch.ones(2), lambda t: t + 1), torch.full((2,), 2.0))


def test_apply_to_tensors_nested_structure() -> None:
    """Every nested tensor is transformed; containers keep their types and other values stay the same objects."""
    data = _nested()
    out = apply_to_tensors(data, lambda t: t + 10)
    assert type(out) is dict and list(out) == list(data)
    assert type(out["list"]) is list
    assert torch.equal(out["list"][0], torch.full((2,), 11.0))
    assert out["list"][1:] == [3, "s"]
    assert type(out["tuple"]) is tuple and type(out["tuple"][1]) is tuple
    assert torch.equal(out["tuple"][1][0], torch.full((1,), 11.0)) and out["tuple"][1][1] is None
    assert type(out["named"]) is Point and out["named"].name == "p"
    assert torch.equal(out["named"].coords, torch.full((2,), 11.0))
    assert type(out["data"]) is Batch and out["data"].tag == "train"
    assert torch.equal(out["data"].targets[0], torch.full((2,), 10.0))
    assert type(out["ordered"]) is collections.OrderedDict
    assert torch.equal(out["ordered"]["a"], torch.full((1,), 11.0))
    assert out["plain"] == 1.5


def test_apply_to_tensors_leaves_input_untouched() -> None:
    """The input structure and its tensors are not modified; new containers are returned."""
    data = _nested()
    out = apply_to_tensors(data, lambda t: t * 0 - 1)
    assert out is not data and out["data"] is not data["data"]
    assert torch.equal(data["list"][0], torch.ones(2))
    assert torch.equal(data["data"].inputs, torch.ones(2))


def test_apply_to_tensors_keeps_tuple_subclasses() -> None:
    """Subclasses of tuple keep their type."""
    out = apply_to_tensors(TupleSubclass((torch.ones(1), 2)), lambda t: t * 3)
    assert type(out) is TupleSubclass
    assert torch.equal(out[0], torch.full((1,), 3.0)) and out[1] == 2


def test_apply_to_tensors_non_tensor_values() -> None:
    """Values with no tensor inside come back unchanged and the function is never called."""
    calls: list[torch.Tensor] = []

    def record(tensor: torch.Tensor) -> torch.Tensor:
        calls.append(tensor)
        return tensor

    value = {"a": [1, 2], "b": ("x", None)}
    assert apply_to_tensors(value, record) == value
    assert apply_to_tensors("text", record) == "text"
    assert calls == []


def test_move_data_to_device_moves_nested_tensors() -> None:
    """Every tensor in a nested batch moves to the device and the structure is kept."""
    data = _nested()
    moved = move_data_to_device(data, META)
    assert moved["list"][0].device == META
    assert moved["tuple"][0].device == META and moved["tuple"][1][0].device == META
    assert type(moved["named"]) is Point and moved["named"].coords.device == META
    assert type(moved["data"]) is Batch and moved["data"].inputs.device == META
    assert moved["data"].targets[0].device == META
    assert moved["ordered"]["a"].device == META
    assert moved["list"][1:] == [3, "s"] and moved["plain"] == 1.5
    assert data["list"][0].device == torch.device("cpu")


def test_move_data_to_device_same_device_returns_same_tensors() -> None:
    """Moving a CPU batch to the CPU returns the very same tensor objects (no copy)."""
    tensor = torch.ones(2)
    assert move_data_to_device(tensor, torch.device("cpu")) is tensor
    assert move_data_to_device([tensor], torch.device("cpu"))[0] is tensor


def test_move_data_to_device_calls_to_on_other_objects() -> None:
    """A batch object that is not a container but has ``.to`` is moved with its own method."""
    batch = Movable()
    assert move_data_to_device(batch, META) is batch
    assert batch.device == META


def test_move_data_to_device_calls_to_on_nested_objects() -> None:
    """Objects with ``.to`` inside lists/dicts are moved too, as the docstring and Lightning promise."""
    inner = Movable()
    move_data_to_device({"tokens": [inner]}, META)
    assert inner.device == META


def test_apply_to_tensors_keeps_defaultdict() -> None:
    """A defaultdict keeps its type and default_factory, as in Lightning."""
    data: collections.defaultdict[str, Any] = collections.defaultdict(list, a=torch.ones(1))
    out = apply_to_tensors(data, lambda t: t * 2)
    assert type(out) is collections.defaultdict
    assert out.default_factory is list


def test_apply_to_tensors_keeps_dataclass_fields_set_after_init() -> None:
    """A dataclass's init=False field keeps its value: __post_init__ is not rerun on the transformed copy."""

    @dataclasses.dataclass
    class WithDerived:
        x: torch.Tensor
        derived: torch.Tensor = dataclasses.field(init=False)

        def __post_init__(self) -> None:
            self.derived = self.x + 1

    batch = WithDerived(torch.zeros(2))
    batch.derived = torch.full((2,), 7.0)
    out = apply_to_tensors(batch, lambda t: t * 10)
    assert torch.equal(out.derived, torch.full((2,), 7.0))
