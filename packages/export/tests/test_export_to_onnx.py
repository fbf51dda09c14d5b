"""Tests of LightningModule.to_onnx (fulmen-core's OnnxExportMixin) and of both formats end to end
on a classifier trained on sklearn's digits."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import ExportResult, LightningModule
from fulmen_core._onnx import OnnxExportMixin

from fulmen_export import TorchExportExporter


class DigitsClassifier(LightningModule):
    def __init__(self, hidden: int = 32, lr: float = 0.02) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(hidden, 10),
        )
        self.example_input_array = torch.zeros(4, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits (shipped with sklearn, no download), pixels scaled to [0, 1]."""
    datasets = pytest.importorskip("sklearn.datasets")
    data = datasets.load_digits()
    return torch.tensor(data.data, dtype=torch.float32) / 16.0, torch.tensor(data.target)


@pytest.fixture(scope="module")
def trained(digits: tuple[torch.Tensor, torch.Tensor]) -> DigitsClassifier:
    """A classifier trained full-batch with its own training_step and configure_optimizers."""
    torch.manual_seed(0)
    model = DigitsClassifier()
    optimizer = model.configure_optimizers()
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: extra threads only add contention on a busy CI box
    try:
        for step in range(60):
            optimizer.zero_grad()
            model.training_step(digits, step).backward()  # type: ignore[no-untyped-call]  # torch leaves backward unannotated
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        accuracy = (model(digits[0]).argmax(1) == digits[1]).float().mean().item()
    assert accuracy > 0.9, "the fixture must really have trained"
    return model


def test_trained_digits_model_to_onnx_matches_eager_in_onnxruntime(
    trained: DigitsClassifier, digits: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    """to_onnx without a sample uses example_input_array and passes kwargs to torch.onnx.export;
    onnxruntime then reproduces the trained model on all 1797 digits (logits within 1e-4, same
    predictions), and the module's train mode is kept."""
    ort = pytest.importorskip("onnxruntime")
    trained.train()
    target = tmp_path / "digits.onnx"
    result = trained.to_onnx(target, input_names=["pixels"], output_names=["logits"])
    assert trained.training
    assert result.path == target and result.format == "onnx"
    assert result.checked_batch_sizes == (4, 5) and result.output_shapes == ((4, 10),)
    assert result.max_abs_error < 1e-4
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    images, _ = digits
    (logits,) = session.run(None, {"pixels": images.numpy()})
    trained.eval()
    with torch.no_grad():
        eager = trained(images)
    onnx_logits = torch.as_tensor(logits)
    assert onnx_logits.shape == (1797, 10)
    assert (onnx_logits - eager).abs().max().item() < 1e-4
    assert torch.equal(onnx_logits.argmax(1), eager.argmax(1))


def test_trained_digits_model_torch_export_is_saved_and_loaded_back(
    trained: DigitsClassifier, digits: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    """The trained model saved with torch.export loads back and gives the same logits everywhere."""
    target = tmp_path / "digits.pt2"
    images, _ = digits
    result = TorchExportExporter().export(trained, target, images[:8])
    assert result.checked_batch_sizes == (8, 9) and result.max_abs_error < 1e-5
    loaded = torch.export.load(target).module()
    trained.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), trained(images))


def test_to_onnx_runs_the_sample_through_the_batch_transfer_hooks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As in Lightning, the sample passes the batch-transfer hooks before the exporter gets it."""
    import fulmen_core._onnx as core_onnx

    received: dict[str, Any] = {}

    class Recorder:
        def export(
            self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
        ) -> ExportResult:
            received.update(module=module, path=path, sample=input_sample)
            return ExportResult(Path(path), "onnx", 0.0, (), ())

    def fake_exporter(options: dict[str, Any]) -> Recorder:
        received["options"] = options
        return Recorder()

    class Hooked(DigitsClassifier):
        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch * 2

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            return batch + 1

    monkeypatch.setattr(core_onnx, "_onnx_exporter", fake_exporter)
    model = Hooked()
    model.to_onnx(tmp_path / "h.onnx", torch.ones(1, 64), opset_version=18)
    assert received["module"] is model and received["options"] == {"opset_version": 18}
    assert torch.equal(received["sample"], torch.full((1, 64), 3.0))


def test_to_onnx_without_a_sample_or_exporter_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No sample asks for example_input_array; no installed exporter names the pip install line."""
    model = DigitsClassifier()
    model.example_input_array = None
    with pytest.raises(ValueError, match=r"set self\.example_input_array"):
        model.to_onnx(tmp_path / "m.onnx")
    monkeypatch.setattr(metadata, "entry_points", lambda **_: [])
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'fulmen-export\[onnx\]'"):
        model.to_onnx(tmp_path / "m.onnx", torch.zeros(1, 64))
    assert list(tmp_path.iterdir()) == []


def test_lightning_module_offers_to_onnx_but_not_to_torchscript() -> None:
    """LightningModule has to_onnx from the mixin and no to_torchscript (a deprecated format)."""
    assert issubclass(LightningModule, OnnxExportMixin)
    assert LightningModule.to_onnx is OnnxExportMixin.to_onnx
    assert not hasattr(LightningModule, "to_torchscript")
