"""Trainer(profiler=...): Lightning's names and instances, the error for an unknown name, and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen.profilers import AdvancedProfiler, PassThroughProfiler, Profiler, PyTorchProfiler, SimpleProfiler
from fulmen_core import MisconfigurationException


class Model(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self.layer(batch[0])
        return out.pow(2).mean()

    def on_train_epoch_start(self) -> None:
        with self.trainer.profiler.profile("my_epoch_setup"):  # user code profiling its own action
            pass

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Counter(L.Callback):
    def on_train_batch_start(self, trainer: Any, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        pass


def loader() -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(8, 3)), batch_size=2)


def trainer(**flags: Any) -> L.Trainer:
    quiet: dict[str, Any] = dict(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    quiet.update(flags)
    return L.Trainer(**quiet)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("simple", SimpleProfiler), ("advanced", AdvancedProfiler), ("pytorch", PyTorchProfiler), ("Simple", SimpleProfiler)],
)
def test_profiler_names_become_instances(name: str, kind: type) -> None:
    """profiler="simple" / "advanced" / "pytorch" (any case) gives trainer.profiler of that class."""
    assert isinstance(trainer(profiler=name).profiler, kind)


def test_profiler_instance_is_used_as_given(tmp_path: Path) -> None:
    """A profiler instance becomes trainer.profiler itself, and its report goes where it was told."""
    profiler = SimpleProfiler(dirpath=tmp_path, filename="perf")
    run = trainer(profiler=profiler, callbacks=[Counter()])
    assert run.profiler is profiler
    run.fit(Model(), loader())
    report = (tmp_path / "fit-perf.txt").read_text()
    assert "[LightningModule]Model.on_train_epoch_start" in report
    assert "[Callback]Counter.on_train_batch_start" in report
    assert "my_epoch_setup" in report
    assert profiler.recorded["run_training_batch"][0] == 4


def test_unknown_profiler_name_lists_the_known_ones() -> None:
    """An unknown name is a MisconfigurationException naming the three known names."""
    with pytest.raises(MisconfigurationException, match=r"profiler='fancy'.*\['simple', 'advanced', 'pytorch'\]"):
        trainer(profiler="fancy")


def test_no_profiler_is_a_pass_through() -> None:
    """Without a profiler trainer.profiler is a PassThroughProfiler, so user code profiling itself still runs."""
    run = trainer()
    assert isinstance(run.profiler, PassThroughProfiler)
    run.fit(Model(), loader())
    assert run.global_step == 4


def test_simple_profiler_prints_its_report_after_fit(capsys: pytest.CaptureFixture[str]) -> None:
    """profiler="simple" prints the FIT report with per-hook rows at the end of fit."""
    run = trainer(profiler="simple")
    run.fit(Model(), loader())
    printed = capsys.readouterr().out
    assert "FIT Profiler Report" in printed
    assert "run_training_batch" in printed and "[LightningModule]Model.optimizer_step" in printed


def test_pytorch_profiler_trace_lands_in_the_log_dir(tmp_path: Path) -> None:
    """profiler="pytorch" writes its Chrome trace into the trainer's log_dir when no dirpath is given."""
    run = trainer(profiler="pytorch", default_root_dir=tmp_path)
    run.fit(Model(), loader())
    trace = json.loads((tmp_path / "fit-pytorch.pt.trace.json").read_text())
    assert any(event.get("name") == "run_training_epoch" for event in trace["traceEvents"])


def test_profilers_namespace_matches_lightning() -> None:
    """fulmen.profilers offers Lightning's names, and each profiler satisfies the Profiler Protocol."""
    profiler: Profiler = SimpleProfiler()
    assert isinstance(trainer(profiler=profiler).profiler, SimpleProfiler)
