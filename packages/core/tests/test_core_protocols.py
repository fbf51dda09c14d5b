"""The Protocols: plain classes conform statically (mypy --strict on typed_conformance.py) and at run time."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import ExportResult, LightningModule

CONFORMANCE = Path(__file__).with_name("typed_conformance.py")

_NONCONFORMING = '''
"""Classes that miss a member or get a signature wrong; each marked line must be a mypy error."""
from collections.abc import Mapping
from typing import Any

import torch
from fulmen_core import Accelerator, Logger, Loop, Module, SupportsStateDict


class NoTeardown:
    name = "broken"
    autocast_device_type = "cpu"
    distributed_backend = "gloo"
    supported_precisions = frozenset({"32-true"})

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def get_device(self, index: int) -> torch.device:
        return torch.device("cpu")

    def setup_device(self, device: torch.device) -> None:
        pass


class StepFirstLogger:
    name = None
    version = None
    save_dir = None
    log_dir = None

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        pass

    def save(self) -> None:
        pass

    def finalize(self, status: str) -> None:
        pass


class TextLoop:
    def run(self) -> str:
        return "done"


class NoOptimizers:
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return torch.zeros(())


class SaveOnly:
    def state_dict(self) -> dict[str, Any]:
        return {}


acc: Accelerator = NoTeardown()  # expect-error
logger: Logger = StepFirstLogger()  # expect-error
loop: Loop[int] = TextLoop()  # expect-error
module: Module = NoOptimizers()  # expect-error
state: SupportsStateDict = SaveOnly()  # expect-error
fine: Loop[str] = TextLoop()
'''


@pytest.fixture(scope="module")
def mypy_protocol_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One mypy --strict run over typed_conformance.py and a module of non-conforming classes."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    folder = tmp_path_factory.mktemp("mypy-protocols")
    bad = folder / "nonconforming.py"
    bad.write_text(textwrap.dedent(_NONCONFORMING))
    cache = tmp_path_factory.getbasetemp() / "mypy-cache"  # shared with the other mypy run of this session
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), str(CONFORMANCE), str(bad)],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
    )
    error_lines: dict[str, set[int]] = {"conformance": set(), "nonconforming": set()}
    for line in result.stdout.splitlines():
        match = re.match(r"(?P<file>.+?):(?P<line>\d+): error:", line)
        if match is None:
            continue
        key = "conformance" if Path(match["file"]).name == CONFORMANCE.name else "nonconforming"
        error_lines[key].add(int(match["line"]))
    expected = {
        number
        for number, text in enumerate(textwrap.dedent(_NONCONFORMING).splitlines(), start=1)
        if text.endswith("# expect-error")
    }
    return {
        "output": result.stdout + result.stderr,
        "errors": error_lines,
        "expected": expected,
    }


def test_typed_conformance_passes_mypy_strict(mypy_protocol_report: dict[str, Any]) -> None:
    """Plain classes for Accelerator, Logger, Exporter, Loop, Module, SupportsStateDict and ModuleHost type-check."""
    assert mypy_protocol_report["errors"]["conformance"] == set(), mypy_protocol_report["output"]


def test_nonconforming_classes_are_rejected(mypy_protocol_report: dict[str, Any]) -> None:
    """mypy --strict flags exactly the assignments of classes missing a member or with a wrong signature."""
    assert len(mypy_protocol_report["expected"]) == 5
    assert mypy_protocol_report["errors"]["nonconforming"] == mypy_protocol_report["expected"], (
        mypy_protocol_report["output"]
    )


@pytest.fixture(scope="module")
def conformance() -> types.ModuleType:
    """typed_conformance.py executed as a module."""
    spec = importlib.util.spec_from_file_location("fulmen_core_typed_conformance", CONFORMANCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conforming_accelerator_works(conformance: types.ModuleType) -> None:
    """The plain accelerator answers every Accelerator member and the Registry builds it by name."""
    acc = conformance.acc
    assert acc.name == "mine" and acc.is_available() and acc.device_count() == 1
    assert acc.get_device(0) == torch.device("cpu", 0)
    acc.setup_device(torch.device("cpu"))
    assert acc.current == torch.device("cpu")
    acc.teardown()
    assert acc.current is None
    assert "bf16-mixed" in acc.supported_precisions
    assert type(conformance.created) is conformance.MyAccel
    assert conformance.accelerators.create("mine") is not conformance.created


def test_conforming_logger_records(conformance: types.ModuleType) -> None:
    """The plain logger keeps what it is given."""
    logger = conformance.MemoryLogger()
    logger.log_metrics({"loss": 0.5}, step=3)
    logger.log_hyperparams({"lr": 0.1})
    logger.finalize("success")
    assert logger.metrics == [({"loss": 0.5}, 3)]
    assert logger.params == {"lr": 0.1}
    assert logger.status == "success"
    assert (logger.name, logger.version, logger.save_dir, logger.log_dir) == ("memory", 0, None, None)


def test_conforming_exporter_writes_a_file(conformance: types.ModuleType, tmp_path: Path) -> None:
    """The plain exporter writes its artifact and returns an ExportResult describing it."""
    model = conformance.Regressor()
    result = conformance.exporter.export(model, tmp_path / "model.pt", torch.zeros(4, 2))
    assert isinstance(result, ExportResult)
    assert result.path == tmp_path / "model.pt" and result.path.exists()
    assert result.checked_batch_sizes == (4,) and result.output_shapes == ((4, 1),)
    restored = torch.load(result.path, weights_only=True)
    assert set(restored) == {"layer.weight", "layer.bias"}


def test_conforming_loop_and_state(conformance: types.ModuleType) -> None:
    """The plain loop runs to its result and its progress round-trips through state_dict."""
    loop = conformance.CountingLoop(3)
    assert loop.run() == 3
    fresh = conformance.CountingLoop(5)
    fresh.load_state_dict(loop.state_dict())
    assert fresh.done == 3 and fresh.run() == 5


def test_conforming_modules_train(conformance: types.ModuleType) -> None:
    """The LightningModule subclass computes a loss from its step and optimizer from configure_optimizers."""
    module = conformance.module
    assert isinstance(module, LightningModule)
    loss = module.training_step((torch.ones(3, 2), torch.zeros(3, 1)), 0)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and float(loss.detach()) >= 0.0
    assert isinstance(module.configure_optimizers(), torch.optim.SGD)
    assert conformance.plain_module.configure_optimizers() is None


def test_conforming_host_and_callback(conformance: types.ModuleType) -> None:
    """A LightningModule lent the plain ModuleHost forwards ``self.log`` to it; the callback subclass works."""
    model = conformance.Regressor()
    host = conformance.RecordingHost()
    model._host = host
    model.log("loss", 1.5)
    assert host.logged == {"loss": 1.5}
    callback = conformance.MyCallback()
    callback.on_train_start(object(), model)
    assert callback.started == 1
    assert callback.state_dict() == {} and callback.state_key == "MyCallback"
