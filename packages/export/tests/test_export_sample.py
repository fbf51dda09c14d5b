"""Tests of input-sample handling: its form, its batch axis, and samples of other batch sizes."""

from __future__ import annotations

import pytest
import torch

from fulmen_export import InvalidInputSampleError
from fulmen_export._sample import (
    as_args,
    batch_dynamic_shapes,
    batch_size,
    batched,
    describe,
    with_batch_size,
)


def test_as_args_accepts_a_tensor_or_a_sequence_of_tensors() -> None:
    """A tensor becomes a one-element tuple and a list of tensors becomes a tuple of them."""
    x, y = torch.zeros(2, 3), torch.ones(2)
    assert as_args(x, owner="E") == (x,)
    assert as_args([x, y], owner="E") == (x, y)


def test_as_args_rejects_a_sample_that_is_not_tensors() -> None:
    """A dict sample is refused with an error that names the exporter, what it got and the fix."""
    with pytest.raises(InvalidInputSampleError, match=r"MyExporter needs .*dict\(x=Tensor\(2, 3\)"):
        as_args({"x": torch.zeros(2, 3)}, owner="MyExporter")
    with pytest.raises(ValueError, match="example_input_array"):
        as_args([], owner="MyExporter")


def test_describe_gives_shapes_and_dtypes() -> None:
    """Samples are described by shape and dtype, so error messages stay short."""
    assert describe((torch.zeros(2, 3), torch.zeros(4, dtype=torch.int64))) == (
        "(Tensor(2, 3) float32, Tensor(4,) int64)"
    )


def test_batch_size_is_dim_zero_of_the_first_tensor_with_dimensions() -> None:
    """Zero-dimensional tensors carry no batch axis and are skipped when finding the batch size."""
    assert batch_size((torch.tensor(1.0), torch.zeros(5, 2))) == 5
    assert batch_size((torch.tensor(1.0),)) is None


def test_with_batch_size_resizes_only_batched_tensors_with_rows_of_the_sample() -> None:
    """Batched tensors get the new number of rows, taken from the sample; other tensors are kept."""
    x = torch.arange(6.0).reshape(2, 3)
    weights = torch.arange(4.0)  # dim 0 is 4, not the batch size 2: not batched
    grown_x, same_weights = with_batch_size((x, weights), 2, 5)
    assert batched((x, weights), 2) == (True, False)
    assert grown_x.shape == (5, 3)
    assert all(any(torch.equal(row, original) for original in x) for row in grown_x)
    assert torch.equal(same_weights, weights)
    (shrunk,) = with_batch_size((x,), 2, 1)
    assert shrunk.shape == (1, 3)


def test_batch_dynamic_shapes_share_one_batch_dimension() -> None:
    """Every batched input gets the same dynamic dim 0, so torch.export ties their sizes."""
    shapes = batch_dynamic_shapes((True, False, True))
    first, second, third = shapes
    assert second is None
    assert first is not None and third is not None
    assert first[0] is third[0]
