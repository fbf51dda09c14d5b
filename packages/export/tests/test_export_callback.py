"""Tests of ExportCallback: the best checkpoint (or the trained module) exported when fit ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import Callback, ExportResult, LightningModule, MisconfigurationException

from fulmen_export import ExportCallback, ONNXExporter


class Net(LightningModule):
    def __init__(self, seed: int = 0, with_example: bool = True) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = torch.nn.Linear(4, 2)
        if with_example:
            self.example_input_array = torch.randn(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out


class CheckpointCallback:
    def __init__(self, best_model_path: str) -> None:
        self.best_model_path = best_model_path


class FakeTrainer:
    """The attributes ExportCallback reads of a Trainer, and nothing else."""

    def __init__(
        self, root: Path, best_model_path: str | None = None, is_global_zero: bool = True
    ) -> None:
        self.default_root_dir = str(root)
        self.is_global_zero = is_global_zero
        if best_model_path is not None:
            self.checkpoint_callback = CheckpointCallback(best_model_path)


def _outputs(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = module(x)
    return out


def test_export_callback_is_a_fulmen_callback() -> None:
    """ExportCallback subclasses fulmen's Callback, so the Trainer accepts it like any other."""
    callback: Callback = ExportCallback("pt2")
    assert isinstance(callback, ExportCallback) and callback.filename == "model.pt2"
    default = ExportCallback()
    assert isinstance(default.exporter, ONNXExporter) and default.filename == "model.onnx"


def test_export_callback_exports_the_best_checkpoint_weights(tmp_path: Path) -> None:
    """With a best_model_path the artifact has that checkpoint's weights; the module keeps its."""
    best, last = Net(seed=1), Net(seed=2)
    ckpt = tmp_path / "best.ckpt"
    torch.save({"state_dict": best.state_dict(), "hyper_parameters": {"seed": 1}}, ckpt)
    own_weight = last.layer.weight.detach().clone()
    callback = ExportCallback("pt2")
    trainer = FakeTrainer(tmp_path, best_model_path=str(ckpt))
    callback.setup(trainer, last, "fit")
    callback.on_fit_end(trainer, last)
    assert isinstance(callback.result, ExportResult)
    assert callback.result.path == tmp_path / "model.pt2"
    assert torch.equal(last.layer.weight, own_weight)  # in-memory weights put back
    program = torch.export.load(tmp_path / "model.pt2").module()
    x = torch.randn(5, 4)
    torch.testing.assert_close(_outputs(program, x), _outputs(best, x))
    assert not torch.allclose(_outputs(best, x), _outputs(last, x))  # the weights really differ


def test_export_callback_exports_the_module_without_a_checkpoint_callback(tmp_path: Path) -> None:
    """Without a checkpoint callback (or with an empty best path) the trained module is exported."""
    model = Net(seed=3)
    for trainer in (FakeTrainer(tmp_path), FakeTrainer(tmp_path, best_model_path="")):
        callback = ExportCallback("pt2", dirpath=tmp_path / "out", filename="net.pt2")
        callback.on_fit_end(trainer, model)
        assert callback.result is not None and callback.result.checked_batch_sizes == (3, 4)
        program = torch.export.load(tmp_path / "out" / "net.pt2").module()
        x = torch.randn(2, 4)
        torch.testing.assert_close(_outputs(program, x), _outputs(model, x))


def test_export_callback_writes_in_the_working_directory_when_the_trainer_has_no_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Trainer without default_root_dir makes the callback write in the working directory."""
    monkeypatch.chdir(tmp_path)
    callback = ExportCallback("pt2", input_sample=torch.randn(2, 4))
    callback.on_fit_end(object(), Net(with_example=False))
    assert callback.result is not None
    assert Path(os.getcwd(), "model.pt2").is_file()


def test_export_callback_fails_at_fit_start_without_an_input_sample(tmp_path: Path) -> None:
    """No input_sample and no example_input_array is an error at setup, before any training."""
    with pytest.raises(MisconfigurationException, match="example_input_array"):
        ExportCallback().setup(FakeTrainer(tmp_path), Net(with_example=False), "fit")


def test_export_callback_exports_only_on_global_zero(tmp_path: Path) -> None:
    """Processes other than global zero write nothing."""
    callback = ExportCallback("pt2")
    callback.on_fit_end(FakeTrainer(tmp_path, is_global_zero=False), Net())
    assert callback.result is None and list(tmp_path.iterdir()) == []


def test_export_callback_takes_any_exporter_and_checks_its_arguments(tmp_path: Path) -> None:
    """A custom Exporter gets the module, target and sample; bad arguments fail at once."""
    calls: list[tuple[torch.nn.Module, Path, Any]] = []

    class RecordingExporter:
        def export(
            self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
        ) -> ExportResult:
            calls.append((module, Path(path), input_sample))
            return ExportResult(Path(path), "custom", 0.0, (), ())

    sample = torch.ones(1, 4)
    callback = ExportCallback(RecordingExporter(), filename="m.bin", input_sample=sample)
    model = Net()
    callback.on_fit_end(FakeTrainer(tmp_path), model)
    assert len(calls) == 1
    assert calls[0][0] is model and calls[0][1] == tmp_path / "m.bin"
    assert torch.equal(calls[0][2], sample)
    with pytest.raises(MisconfigurationException, match="needs filename="):
        ExportCallback(RecordingExporter())
    with pytest.raises(
        MisconfigurationException, match=r"exporter='tflite'; use one of \['onnx', 'pt2'\]"
    ):
        ExportCallback("tflite")
