"""Tests of the comparison between an artifact's outputs and the eager module's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fulmen_export import ExportError, ExportVerificationError, InvalidInputSampleError
from fulmen_export._verify import compare, flatten_tensors, run_eager, trace_failure


def _compare(expected: list[torch.Tensor], actual: list[torch.Tensor], **tol: float) -> float:
    return compare(
        expected,
        actual,
        target=Path("out/model.onnx"),
        format_name="onnx",
        batch_size=3,
        atol=tol.get("atol", 1e-4),
        rtol=tol.get("rtol", 1e-3),
    )


def test_flatten_tensors_walks_containers_in_order_and_skips_non_tensors() -> None:
    """Outputs flatten depth-first (dict values in insertion order) and drop None and numbers."""
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    flat = flatten_tensors({"first": a, "rest": (b, None, [c, 3])})
    assert [t.item() for t in flat] == [0.0, 1.0, 2.0]


def test_compare_returns_the_max_abs_error_within_tolerance() -> None:
    """Outputs within tolerance pass and the largest absolute difference is returned."""
    expected = [torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([[5.0]])]
    actual = [torch.tensor([1.0, 2.00005], dtype=torch.float64), torch.tensor([[5.0]])]
    assert _compare(expected, actual) == pytest.approx(5e-5, rel=1e-3)


def test_compare_raises_with_the_numbers_beyond_tolerance() -> None:
    """A difference beyond tolerance raises an error carrying the output, batch size and error."""
    expected = [torch.zeros(2), torch.tensor([1.0, 1.0])]
    actual = [torch.zeros(2), torch.tensor([1.0, 1.5])]
    with pytest.raises(ExportVerificationError) as caught:
        _compare(expected, actual)
    err = caught.value
    assert (err.output_index, err.batch_size, err.atol, err.rtol) == (1, 3, 1e-4, 1e-3)
    assert err.max_abs_error == pytest.approx(0.5)
    assert "output 1 differs by up to 0.5" in str(err)
    assert "batch size 3" in str(err) and "out/model.onnx" in str(err)


def test_compare_reports_shape_and_count_mismatches() -> None:
    """A wrong output shape or number of outputs is an error naming both sides."""
    with pytest.raises(ExportVerificationError, match=r"shape \(2, 1\) but .* shape \(2,\)"):
        _compare([torch.zeros(2)], [torch.zeros(2, 1)])
    with pytest.raises(
        ExportVerificationError, match="returns 2 outputs but the eager module returns 1"
    ):
        _compare([torch.zeros(2)], [torch.zeros(2), torch.zeros(2)])


def test_compare_treats_nan_in_the_same_place_as_equal() -> None:
    """NaN where the eager module has NaN matches, and does not poison the reported error."""
    nan = float("nan")
    assert _compare([torch.tensor([nan, 1.0])], [torch.tensor([nan, 1.0])]) == 0.0
    with pytest.raises(ExportVerificationError):
        _compare([torch.tensor([0.0, 1.0])], [torch.tensor([nan, 1.0])])


def test_run_eager_names_the_module_and_the_sample_when_forward_fails() -> None:
    """A sample forward cannot take raises an error with the module, the shapes and the fix."""
    module = torch.nn.Linear(4, 2)
    with pytest.raises(
        InvalidInputSampleError,
        match=r"Linear.forward failed on the sample Tensor\(3, 5\) float32: .*Fix it",
    ):
        run_eager(module, (torch.zeros(3, 5),), what="the sample", fix="Fix it.")


def test_run_eager_refuses_a_forward_without_tensor_outputs() -> None:
    """A forward that returns no tensor cannot be exported, and the error says what it returned."""

    class Silent(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> None:
            return None

    with pytest.raises(ExportError, match="returned NoneType with no tensor"):
        run_eager(Silent(), (torch.zeros(1),), what="the sample", fix="")


def test_trace_failure_names_the_root_cause_and_a_fix() -> None:
    """A trace error is summarised by its root cause's first line plus a fix fitting the cause."""
    try:
        try:
            raise RuntimeError("Could not guard on data-dependent expression Eq(u0, 1)\nlong trace")
        except RuntimeError as inner:
            raise RuntimeError("Failed to export the model with torch.export") from inner
    except RuntimeError as err:
        error = trace_failure(err, module=torch.nn.Linear(1, 1), format_name="ONNX", tool="tool")
    message = str(error)
    assert (
        "could not export Linear to ONNX: tool failed with RuntimeError: Could not guard" in message
    )
    assert "long trace" not in message
    assert "torch.where" in message
    fixed = trace_failure(
        RuntimeError("Constraints violated (batch)!"),
        module=torch.nn.Linear(1, 1),
        format_name="pt2",
        tool="torch.export.export",
    )
    assert "dynamic_batch=False" in str(fixed)
