"""Tests of ``python -m fulmen_export``: checkpoint in, verified artifact out."""

from __future__ import annotations

import importlib
import runpy
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fulmen_export.__main__ import main

_MODEL_SOURCE = textwrap.dedent(
    """
    import torch
    from fulmen_core import LightningModule


    class CliNet(LightningModule):
        def __init__(self, hidden: int = 8, with_example: bool = True) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(5, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2)
            )
            if with_example:
                self.example_input_array = torch.randn(3, 5)

        def forward(self, x):
            return self.net(x)
    """
)
_MODULE = "fulmen_export_cli_model"


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, torch.nn.Module]:
    """A module file importable as ``fulmen_export_cli_model`` and a checkpoint of its class."""
    (tmp_path / f"{_MODULE}.py").write_text(_MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, _MODULE, raising=False)
    module_class = importlib.import_module(_MODULE).CliNet
    model = module_class(hidden=6)
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path, model


def test_cli_exports_a_checkpoint_to_pt2(
    checkpoint: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    """--format pt2 writes a program with the checkpoint's weights and reports the check."""
    ckpt, model = checkpoint
    output = ckpt.parent / "out" / "model.pt2"
    status = main(
        [str(ckpt), "--module", f"{_MODULE}:CliNet", "--format", "pt2", "--output", str(output)]
    )
    assert status == 0
    assert f"wrote {output} (pt2)" in capsys.readouterr().out
    x = torch.randn(4, 5)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(output).module()(x), model(x))


def test_cli_exports_a_checkpoint_to_onnx(checkpoint: tuple[Path, torch.nn.Module]) -> None:
    """--format onnx with --opset writes a model onnxruntime runs like the checkpoint's module."""
    ort = pytest.importorskip("onnxruntime")
    ckpt, model = checkpoint
    status = main([str(ckpt), "--module", f"{_MODULE}:CliNet", "--opset", "18"])
    output = ckpt.with_suffix(".onnx")  # the default output: the checkpoint's name, new suffix
    assert status == 0 and output.is_file()
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = torch.randn(9, 5)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    model.eval()
    torch.testing.assert_close(torch.as_tensor(got), model(x).detach(), atol=1e-4, rtol=1e-3)


def test_cli_uses_input_shape_when_the_module_has_no_example(
    tmp_path: Path, checkpoint: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without example_input_array the CLI asks for --input-shape, and exports once given one."""
    _, model = checkpoint
    ckpt = tmp_path / "bare.ckpt"
    hparams = {"hidden": 6, "with_example": False}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, ckpt)
    args = [str(ckpt), "--module", f"{_MODULE}:CliNet", "--format", "pt2"]
    assert main(args) == 1
    assert "pass --input-shape, e.g. --input-shape 1,64" in capsys.readouterr().err
    assert main([*args, "--input-shape", "2,5", "--no-dynamic-batch"]) == 0
    assert "batch sizes [2]" in capsys.readouterr().out


def test_cli_reports_errors_with_exit_status_one_and_writes_nothing(
    checkpoint: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong --module or a bad input shape is one error line on stderr and no output file."""
    ckpt, _ = checkpoint
    output = ckpt.parent / "never.pt2"
    assert (
        main(
            [
                str(ckpt),
                "--module",
                f"{_MODULE}:Missing",
                "--format",
                "pt2",
                "--output",
                str(output),
            ]
        )
        == 1
    )
    assert "has no attribute 'Missing'" in capsys.readouterr().err
    bad_shape = ["--input-shape", "2,7", "--format", "pt2", "--output", str(output)]
    assert main([str(ckpt), "--module", f"{_MODULE}:CliNet", *bad_shape]) == 1
    assert "CliNet.forward failed on the input sample Tensor(2, 7)" in capsys.readouterr().err
    assert not output.exists()


def test_cli_runs_as_python_dash_m(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running the package as __main__ (as `python -m fulmen_export` does) returns main's status."""
    monkeypatch.setattr(sys, "argv", ["fulmen_export", "--help"])
    monkeypatch.delitem(sys.modules, "fulmen_export.__main__")  # run it fresh, as -m does
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("fulmen_export", run_name="__main__")
    assert caught.value.code == 0
    assert "--module PACKAGE.MODULE:CLASS" in capsys.readouterr().out
