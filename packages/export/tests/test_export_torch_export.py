"""Tests of TorchExportExporter: a .pt2 program saved, loaded back and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fulmen_core import Exporter

from fulmen_export import ExportError, ExportVerificationError, TorchExportExporter


class MLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def test_torch_export_exporter_satisfies_the_exporter_protocol() -> None:
    """TorchExportExporter is usable wherever fulmen expects an Exporter (mypy --strict checks)."""
    exporter: Exporter = TorchExportExporter(strict=False)
    assert isinstance(exporter, TorchExportExporter) and exporter.format == "pt2"


def test_pt2_is_saved_loaded_back_and_matches_at_any_batch_size(tmp_path: Path) -> None:
    """A batch-of-one sample still gives a dynamic batch, and torch.export.load reproduces eager."""
    model = MLP()
    model.train()
    target = tmp_path / "mlp.pt2"
    result = TorchExportExporter().export(model, target, torch.randn(1, 8))
    assert result.path == target and result.format == "pt2"
    assert result.checked_batch_sizes == (1, 3)
    assert result.output_shapes == ((1, 3),)
    assert result.max_abs_error < 1e-5
    assert model.training  # restored after exporting in eval mode
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.pt2"]
    loaded = torch.export.load(target).module()
    x = torch.randn(6, 8)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_pt2_static_batch_checks_only_the_sample(tmp_path: Path) -> None:
    """With dynamic_batch=False only the sample's batch size is checked and reported."""
    result = TorchExportExporter(dynamic_batch=False).export(
        MLP(), tmp_path / "s.pt2", torch.randn(4, 8)
    )
    assert result.checked_batch_sizes == (4,)


def test_pt2_untraceable_forward_raises_and_writes_nothing(tmp_path: Path) -> None:
    """A forward branching on tensor values is an ExportError with the fix, and no file appears."""

    class Branching(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return x * 2
            return x

    with pytest.raises(ExportError, match="could not export Branching to pt2") as caught:
        TorchExportExporter().export(Branching(), tmp_path / "b.pt2", torch.randn(2, 3))
    assert "torch.where" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_pt2_fixed_batch_forward_points_to_dynamic_batch_false(tmp_path: Path) -> None:
    """A forward that works at one batch size only is reported with dynamic_batch=False as fix."""

    class FixedBatch(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(2, -1)

    with pytest.raises(ValueError, match="dynamic_batch=False"):
        TorchExportExporter().export(FixedBatch(), tmp_path / "f.pt2", torch.randn(2, 3))
    result = TorchExportExporter(dynamic_batch=False).export(
        FixedBatch(), tmp_path / "f.pt2", torch.randn(2, 3)
    )
    assert result.checked_batch_sizes == (2,)


def test_pt2_mismatch_raises_with_numbers_and_keeps_the_old_file(tmp_path: Path) -> None:
    """A program that disagrees with the eager module raises with the numbers and is not kept."""

    class Counting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x + self.calls

    target = tmp_path / "c.pt2"
    target.write_bytes(b"previous artifact")
    with pytest.raises(ExportVerificationError) as caught:
        TorchExportExporter().export(Counting(), target, torch.zeros(2, 3))
    assert caught.value.max_abs_error >= 1.0 and caught.value.path == target
    assert caught.value.batch_size == 2 and caught.value.output_index == 0
    assert f"output 0 differs by up to {caught.value.max_abs_error:.6g}" in str(caught.value)
    assert target.read_bytes() == b"previous artifact"
    assert list(tmp_path.iterdir()) == [target]


def test_pt2_exporter_rejects_unknown_and_reserved_options() -> None:
    """Options torch.export.export does not take, or the exporter sets, fail at construction."""
    with pytest.raises(TypeError, match=r"unknown TorchExportExporter options \['opset_version'\]"):
        TorchExportExporter(opset_version=17)
    with pytest.raises(TypeError, match=r"sets \['args'\] itself"):
        TorchExportExporter(args=())
