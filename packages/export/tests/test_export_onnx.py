"""Tests of ONNXExporter: ONNX written, checked in onnxruntime, and never left half-written."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from fulmen_core import Exporter

from fulmen_export import (
    ExportError,
    InvalidInputSampleError,
    ONNXExporter,
)


@pytest.fixture
def ort() -> ModuleType:
    """onnxruntime, or a skip where the onnx extra is not installed."""
    module: ModuleType = pytest.importorskip("onnxruntime")
    return module


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3)
        )
        self.seen: list[tuple[bool, bool]] = []  # (training, grad enabled) at each forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_grad_enabled()))
        out: torch.Tensor = self.net(x)
        return out


class Branching(torch.nn.Module):
    """Branches on a tensor value, which no trace can follow."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x


def _run(ort: ModuleType, path: Path, *inputs: torch.Tensor) -> list[torch.Tensor]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]
    feeds = {name: t.numpy() for name, t in zip(names, inputs, strict=True)}
    return [torch.as_tensor(out) for out in session.run(None, feeds)]


def test_onnx_exporter_satisfies_the_exporter_protocol() -> None:
    """ONNXExporter is usable wherever fulmen expects an Exporter (checked by mypy --strict)."""
    exporter: Exporter = ONNXExporter(opset_version=18)
    assert isinstance(exporter, ONNXExporter) and exporter.opset_version == 18


def test_onnx_export_matches_eager_with_a_dynamic_batch_in_eval_mode(
    ort: ModuleType, tmp_path: Path
) -> None:
    """The model runs in onnxruntime at any batch size with the eager module's outputs; it was
    traced in eval mode without autograd (dropout off) and the modes are restored afterwards."""
    model = MLP()
    model.train()
    model.net[0].eval()  # a submodule kept in eval mode must stay so
    target = tmp_path / "mlp.onnx"
    result = ONNXExporter().export(model, target, torch.randn(4, 8))
    assert result.path == target and result.format == "onnx"
    assert result.checked_batch_sizes == (4, 5)
    assert result.output_shapes == ((4, 3),)
    # Had dropout (p=0.5) been active while tracing or checking, outputs could not agree this well.
    assert 0.0 <= result.max_abs_error < 1e-4
    assert model.seen and set(model.seen) == {(False, False)}
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]  # one file, no leftovers
    x = torch.randn(7, 8)
    (got,) = _run(ort, target, x)
    model.eval()
    torch.testing.assert_close(got, model(x).detach(), atol=1e-4, rtol=1e-3)


def test_onnx_opset_is_selectable(ort: ModuleType, tmp_path: Path) -> None:
    """The opset_version given is the default-domain opset of the written model."""
    onnx = pytest.importorskip("onnx")
    target = tmp_path / "m17.onnx"
    ONNXExporter(opset_version=17).export(MLP(), target, torch.randn(2, 8))
    opsets = {entry.domain: entry.version for entry in onnx.load(str(target)).opset_import}
    assert opsets[""] == 17


def test_onnx_torchscript_exporter_gets_dynamic_axes_and_the_opset(
    ort: ModuleType, tmp_path: Path
) -> None:
    """With dynamo=False the batch axis is made dynamic through named inputs and outputs."""
    onnx = pytest.importorskip("onnx")
    target = tmp_path / "legacy.onnx"
    with pytest.warns(DeprecationWarning):  # torch deprecates this exporter; it still works
        exporter = ONNXExporter(dynamo=False, opset_version=16)
        result = exporter.export(MLP(), target, torch.randn(1, 8))
    assert result.checked_batch_sizes == (1, 3)
    assert {e.domain: e.version for e in onnx.load(str(target)).opset_import}[""] == 16
    # torch keeps its own opset when it cannot convert; the exporter refuses such a file.
    with pytest.raises(ExportError, match="wrote opset 16, not the requested opset_version=15"):
        ONNXExporter(opset_version=15)._check_opset(target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", ["batch", 8])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("output", ["batch", 3])]


def test_onnx_export_handles_several_inputs_and_nested_outputs(
    ort: ModuleType, tmp_path: Path
) -> None:
    """Several inputs and dict/tuple outputs are verified output by output, in flattening order."""

    class TwoHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(3, 2)

        def forward(
            self, x: torch.Tensor, y: torch.Tensor
        ) -> dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
            return {"a": self.proj(x), "b": (y * 2, self.proj(x).sum(1))}

    target = tmp_path / "two.onnx"
    result = ONNXExporter().export(TwoHeads(), target, (torch.randn(2, 3), torch.randn(2, 4)))
    assert result.output_shapes == ((2, 2), (2, 4), (2,))
    assert result.checked_batch_sizes == (2, 3)
    outputs = _run(ort, target, torch.randn(6, 3), torch.randn(6, 4))
    assert [tuple(o.shape) for o in outputs] == [(6, 2), (6, 4), (6,)]


def test_onnx_external_data_lands_next_to_the_model(ort: ModuleType, tmp_path: Path) -> None:
    """With external_data=True the weights file is moved next to the model under its final name."""
    target = tmp_path / "ext.onnx"
    ONNXExporter(external_data=True).export(MLP(), target, torch.randn(2, 8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ext.onnx", "ext.onnx.data"]
    (got,) = _run(ort, target, torch.randn(5, 8))
    assert got.shape == (5, 3)


def test_onnx_untraceable_forward_raises_with_the_fix_and_writes_nothing(
    ort: ModuleType, tmp_path: Path
) -> None:
    """A forward branching on tensor values is an ExportError naming the cause and torch.where."""
    target = tmp_path / "branch.onnx"
    with pytest.raises(ExportError, match=r"could not export Branching to ONNX") as caught:
        ONNXExporter().export(Branching(), target, torch.randn(2, 3))
    assert "torch.where" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_onnx_wrong_shape_sample_raises_and_writes_nothing(tmp_path: Path, ort: ModuleType) -> None:
    """A sample forward cannot take is reported with its shape and forward's own error."""
    target = tmp_path / "m.onnx"
    with pytest.raises(
        InvalidInputSampleError, match=r"MLP.forward failed on the input sample Tensor\(2, 5\)"
    ):
        ONNXExporter().export(MLP(), target, torch.randn(2, 5))
    assert list(tmp_path.iterdir()) == []


def test_onnx_missing_onnxruntime_names_the_install_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without onnxruntime the error says who needs it and to pip install the onnx extra."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'fulmen-export\[onnx\]'") as caught:
        ONNXExporter().export(MLP(), tmp_path / "m.onnx", torch.randn(2, 8))
    assert caught.value.name == "onnxruntime"
    assert list(tmp_path.iterdir()) == []


def test_onnx_exporter_rejects_unknown_and_reserved_options() -> None:
    """Options that torch.onnx.export does not take, or that the exporter sets, fail at once."""
    with pytest.raises(TypeError, match=r"unknown ONNXExporter options \['opset'\]"):
        ONNXExporter(opset=17)
    with pytest.raises(TypeError, match=r"sets \['f'\] itself"):
        ONNXExporter(f="x.onnx")
