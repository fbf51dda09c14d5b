"""Profilers: what each records and reports, where the reports go, and that no profiler means no profiling."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule, Profiler
from fulmen_loops import (
    AdvancedProfiler,
    LoopSettings,
    PassThroughProfiler,
    PyTorchProfiler,
    Runner,
    SimpleProfiler,
)
from fulmen_loops._profiling import ProfiledIterator
from torch.utils.data import DataLoader, TensorDataset

STRATEGY = "[Strategy]SingleDeviceStrategy"


class Plain(LightningModule):
    """Overrides only what fit, validate, test and predict need."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self.layer(batch[0])
        return out.pow(2).mean()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val", self.layer(batch[0]).mean())

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test", self.layer(batch[0]).mean())

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self.layer(batch[0])
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WithHook(Plain):
    """Also overrides on_train_batch_end."""

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass


class EpochEnd(Callback):
    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        pass


class NoHooks(Callback):
    pass


def data(n: int = 8) -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=2)


def runner(profiler: Profiler | None, **settings: Any) -> Runner:
    return Runner(settings=LoopSettings(**settings), callbacks=[EpochEnd(), NoHooks()], profiler=profiler)


def test_protocol_conformance() -> None:
    """Every profiler fulmen-loops ships is a fulmen_core.Profiler (checked by mypy --strict)."""
    profilers: list[Profiler] = [SimpleProfiler(), AdvancedProfiler(), PyTorchProfiler(), PassThroughProfiler()]
    assert len(profilers) == 4


def test_simple_profiler_counts_each_action_once_per_call() -> None:
    """SimpleProfiler records every batch, epoch, step, fetch and optimizer step with its exact count."""
    profiler = SimpleProfiler()
    run = runner(profiler, max_epochs=2, limit_train_batches=3)
    run.fit(WithHook(), data())
    recorded = profiler.recorded
    steps = run.global_step
    assert steps == 6
    assert recorded["run_training_batch"][0] == steps
    assert recorded["run_training_epoch"][0] == 2
    assert recorded[f"{STRATEGY}.training_step"][0] == steps
    assert recorded[f"{STRATEGY}.backward"][0] == steps
    assert recorded[f"{STRATEGY}.batch_to_device"][0] == steps
    assert recorded["[_TrainingEpochLoop].train_dataloader_next"][0] == steps
    assert recorded["[LightningModule]WithHook.optimizer_step"][0] == steps
    assert recorded["[LightningModule]WithHook.optimizer_zero_grad"][0] == steps
    assert recorded["[LightningModule]WithHook.configure_optimizers"][0] == 1
    assert recorded["[LightningModule]WithHook.on_train_batch_end"][0] == steps
    assert recorded["[Callback]EpochEnd.on_train_epoch_end"][0] == 2


def test_simple_profiler_lists_module_and_callback_hooks_only_when_overridden() -> None:
    """A hook that neither the module nor a callback overrides is not called, so not reported."""
    profiler = SimpleProfiler()
    runner(profiler, max_epochs=1).fit(Plain(), data())
    names = set(profiler.recorded)
    assert not any(name.endswith(".on_train_batch_end") for name in names)
    assert not any(name.startswith("[Callback]NoHooks") for name in names)
    assert "[Callback]EpochEnd.on_train_epoch_end" in names
    assert "run_training_batch" in names


def test_simple_profiler_report_is_a_table_sorted_by_total_time(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a file name the report is printed: Lightning's columns, a Total row, longest total first."""
    profiler = SimpleProfiler()
    runner(profiler, max_epochs=1).fit(WithHook(), data())
    printed = capsys.readouterr().out
    assert "FIT Profiler Report" in printed
    header = next(line for line in printed.splitlines() if line.startswith("|  Action"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert columns == ["Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %"]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in printed.splitlines()
        if line.startswith("|  ") and not line.startswith(("|  Action", "|  Total"))
    ]
    assert {row[0] for row in rows} == set(profiler.recorded)
    by_name = {row[0]: row for row in rows}
    assert by_name["run_training_batch"][2] == "4"
    totals = [float(row[3]) for row in rows]
    assert totals == sorted(totals, reverse=True)
    total_row = next(line for line in printed.splitlines() if line.startswith("|  Total"))
    assert total_row.split("|")[3].strip() == str(sum(count for count, _ in profiler.recorded.values()))


def test_simple_profiler_short_report_leaves_out_counts() -> None:
    """extended=False reports only the mean and total per action."""
    profiler = SimpleProfiler(extended=False)
    runner(profiler, max_epochs=1).fit(Plain(), data())
    report = profiler.summary()
    assert "Mean duration (s)" in report and "Total time (s)" in report
    assert "Num calls" not in report and "Percentage" not in report


def test_report_file_goes_to_dirpath_named_by_stage(tmp_path: Path) -> None:
    """With dirpath and filename the report is written to dirpath/{stage}-{filename}.txt per stage."""
    profiler = SimpleProfiler(dirpath=tmp_path, filename="perf")
    run = runner(profiler, max_epochs=1)
    module = Plain()
    run.fit(module, data())
    run.test(module, data(), verbose=False)
    fit_report = (tmp_path / "fit-perf.txt").read_text()
    test_report = (tmp_path / "test-perf.txt").read_text()
    assert "FIT Profiler Report" in fit_report and "run_training_batch" in fit_report
    assert "TEST Profiler Report" in test_report and "[_EvaluationLoop].test_next" in test_report
    assert "run_training_batch" not in test_report  # each stage reports afresh


def test_report_file_defaults_to_the_run_log_dir(tmp_path: Path) -> None:
    """A filename without dirpath writes into the run's log_dir (default_root_dir without loggers)."""
    profiler = SimpleProfiler(filename="perf")
    run = Runner(settings=LoopSettings(max_epochs=1), default_root_dir=tmp_path, profiler=profiler)
    run.fit(Plain(), data())
    assert (tmp_path / "fit-perf.txt").is_file()


def test_evaluation_and_prediction_are_profiled() -> None:
    """validate, test and predict record their steps and batch fetching once per batch."""
    profiler = SimpleProfiler()
    run = runner(profiler)
    module = Plain()
    run.validate(module, data(6), verbose=False)
    assert profiler.recorded[f"{STRATEGY}.validation_step"][0] == 3
    assert profiler.recorded["[_EvaluationLoop].val_next"][0] == 3
    run.predict(module, data(6))
    assert profiler.recorded[f"{STRATEGY}.predict_step"][0] == 3
    assert profiler.recorded["[_PredictionLoop].predict_next"][0] == 3


def test_manual_optimization_batches_are_profiled() -> None:
    """Under manual optimization each batch is still one run_training_batch, and manual_backward is recorded."""

    class Manual(Plain):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            optimizer = self.optimizers()
            out: torch.Tensor = self.layer(batch[0])
            loss = out.pow(2).mean()
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            return loss

    profiler = SimpleProfiler()
    runner(profiler, max_epochs=1).fit(Manual(), data())
    assert profiler.recorded["run_training_batch"][0] == 4
    assert profiler.recorded[f"{STRATEGY}.backward"][0] == 4


def test_advanced_profiler_reports_pstats_per_action() -> None:
    """AdvancedProfiler's report holds a pstats listing for each action, with the functions it ran."""
    profiler = AdvancedProfiler(line_count_restriction=10)
    runner(profiler, max_epochs=1).fit(Plain(), data())
    report = profiler.summary()
    assert report.startswith("FIT Profiler Report")
    section = report.split("Profile stats for: run_training_batch", 1)[1]
    assert "Ordered by: cumulative time" in section
    assert "ncalls" in section and "_automatic_step" in section


def test_advanced_profiler_nests_actions_and_rejects_unbalanced_stops() -> None:
    """An inner action pauses the outer one; stopping an action that is not the innermost is an error."""
    profiler = AdvancedProfiler()
    profiler.setup("fit")
    with profiler.profile("outer"):
        with profiler.profile("inner"):
            sum(range(100))
    assert "Profile stats for: outer" in profiler.summary()
    assert "Profile stats for: inner" in profiler.summary()
    profiler.start("a")
    profiler.start("b")
    with pytest.raises(ValueError, match="reverse order"):
        profiler.stop("a")
    profiler.teardown("fit")


def test_advanced_profiler_dumps_stats_files(tmp_path: Path) -> None:
    """dump_stats=True writes a .prof file per action next to the report."""
    profiler = AdvancedProfiler(dirpath=tmp_path, filename="adv", dump_stats=True)
    runner(profiler, max_epochs=1).fit(Plain(), data())
    assert (tmp_path / "fit-adv.txt").is_file()
    assert (tmp_path / "fit-adv-run_training_batch.prof").is_file()


def test_pytorch_profiler_writes_a_chrome_trace(tmp_path: Path) -> None:
    """PyTorchProfiler writes a Chrome trace (JSON with traceEvents) holding fulmen's action ranges."""
    profiler = PyTorchProfiler(dirpath=tmp_path)
    runner(profiler, max_epochs=1).fit(Plain(), data())
    path = tmp_path / "fit-pytorch.pt.trace.json"
    assert profiler.trace_paths == [os.fspath(path)]
    trace = json.loads(path.read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    assert "run_training_batch" in names and f"{STRATEGY}.training_step" in names
    assert "Self CPU" in profiler.summary()


def test_pytorch_profiler_with_a_schedule_writes_one_trace_per_window(tmp_path: Path) -> None:
    """With a schedule the profiler steps at each training batch and writes each active window's trace."""
    schedule = torch.profiler.schedule(wait=1, warmup=1, active=2, repeat=1)
    profiler = PyTorchProfiler(dirpath=tmp_path, filename="sched", schedule=schedule)
    runner(profiler, max_epochs=2).fit(Plain(), data())
    assert len(profiler.trace_paths) == 1
    written = Path(profiler.trace_paths[0])
    assert written.name.startswith("fit-sched-") and written.name.endswith(".pt.trace.json")
    assert "traceEvents" in json.loads(written.read_text())


class Recording:
    """A profiler written as a plain class (no base class): it notes the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        self.calls.append(f"setup:{stage}")

    def start(self, action_name: str) -> None:
        pass

    def stop(self, action_name: str) -> None:
        pass

    def profile(self, action_name: str) -> Any:
        return PassThroughProfiler().profile(action_name)

    def summary(self) -> str:
        return ""

    def describe(self) -> None:
        self.calls.append("describe")

    def teardown(self, stage: str | None) -> None:
        self.calls.append(f"teardown:{stage}")


def test_stage_lifecycle_and_cleanup_after_an_error() -> None:
    """A stage sets the profiler up, describes and tears down; a failing stage tears down without a report,
    and the profiled stand-ins are removed either way."""
    profiler = Recording()
    conforms: Profiler = profiler
    run = runner(conforms, max_epochs=1)
    module = Plain()
    run.fit(module, data())
    assert profiler.calls == ["setup:fit", "describe", "teardown:fit"]
    assert "training_step" not in vars(module) and "_epoch" not in vars(run.fit_loop)

    class Failing(Plain):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            raise RuntimeError("boom")

    profiler.calls.clear()
    failing = Failing()
    run = runner(conforms, max_epochs=1)
    with pytest.raises(RuntimeError, match="boom"):
        run.fit(failing, data())
    assert profiler.calls == ["setup:fit", "teardown:fit"]
    assert "training_step" not in vars(failing) and "_automatic_step" not in vars(run.fit_loop)


def test_without_a_profiler_the_loop_holds_the_plain_bound_methods() -> None:
    """profiler=None: callbacks, module hooks, batch transfer and data iterator are the unwrapped originals."""
    seen: dict[str, Any] = {}

    class Inspect(Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: LightningModule, *args: Any) -> None:
            seen["callback_hooks"] = trainer.callback_list._on_train_batch_end
            seen["own_hook"] = self.on_train_batch_end
            seen["module_attributes"] = set(vars(pl_module))
            seen["loop_attributes"] = set(vars(trainer.fit_loop))
            seen["transfer"] = trainer._transfer

    run = Runner(settings=LoopSettings(max_epochs=1), callbacks=[Inspect()])
    iterators: list[Any] = []
    original = run.fit_loop._new_iterator  # type: ignore[attr-defined]  # FitLoop's, not the Loop Protocol's

    def keep(*args: Any, **kwargs: Any) -> Any:
        iterators.append(original(*args, **kwargs))
        return iterators[-1]

    run.fit_loop._new_iterator = keep  # type: ignore[attr-defined]  # spying on FitLoop's iterator
    run.fit(WithHook(), data())
    assert seen["callback_hooks"] == (seen["own_hook"],)
    assert not hasattr(seen["callback_hooks"][0], "__wrapped__")
    hooks = {"training_step", "on_train_batch_end", "optimizer_step", "backward", "optimizer_zero_grad"}
    assert not hooks & seen["module_attributes"]
    assert not {"_epoch", "_automatic_step", "_manual_step"} & seen["loop_attributes"]
    assert not hasattr(seen["transfer"], "__wrapped__")
    assert iterators and not any(isinstance(it, ProfiledIterator) for it in iterators)
    assert isinstance(run.profiler, PassThroughProfiler)
    with run.profiler.profile("user action"):  # user code may profile with no profiler set
        pass


def test_pass_through_profiler_means_no_profiling() -> None:
    """A PassThroughProfiler given to the Runner (or assigned later) installs no profiled stand-ins."""
    run = Runner(settings=LoopSettings(max_epochs=1), callbacks=[EpochEnd()], profiler=PassThroughProfiler())
    assert run._profiler is None
    assert not hasattr(run.callback_list._on_train_epoch_end[0], "__wrapped__")
    run.profiler = SimpleProfiler()
    assert hasattr(run.callback_list._on_train_epoch_end[0], "__wrapped__")
    run.profiler = PassThroughProfiler()
    assert run._profiler is None and not hasattr(run.callback_list._on_train_epoch_end[0], "__wrapped__")
