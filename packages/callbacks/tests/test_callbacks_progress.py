"""TQDMProgressBar: what it prints during real fits, and how rarely it redraws and reads metrics."""

from __future__ import annotations

import io
import math
import pickle
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import fulmen_callbacks._progress as progress_module
from fulmen_callbacks import TQDMProgressBar, format_metric, format_metrics, get_standard_metrics


class Regressor(LightningModule):
    """A linear regressor logging ``loss`` (and ``val_loss``/``test_loss``) to the progress bar."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if batch_idx == self.fail_at:
            raise RuntimeError("boom")
        loss = torch.nn.functional.mse_loss(self(batch[0]), batch[1])
        self.log("loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.log("val_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]), prog_bar=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", torch.nn.functional.mse_loss(self(batch[0]), batch[1]), prog_bar=True)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self(batch[0])
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _loader(batches: int, batch_size: int = 4) -> DataLoader[tuple[torch.Tensor, ...]]:
    n = batches * batch_size
    return DataLoader(TensorDataset(torch.randn(n, 4), torch.randn(n, 1)), batch_size=batch_size)


class _Stream(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """A dataset with no length: the bar's total is unknown."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.batches):
            yield torch.randn(4, 4), torch.randn(4, 1)


class VersionLogger:
    """A do-nothing logger with a version, for ``v_num``."""

    def __init__(self, version: int | str | None) -> None:
        self._version = version

    @property
    def name(self) -> str | None:
        return "test"

    @property
    def version(self) -> int | str | None:
        return self._version

    @property
    def save_dir(self) -> str | None:
        return None

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        return None

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        return None

    def save(self) -> None:
        return None

    def finalize(self, status: str) -> None:
        return None


class FakeTrainer:
    """The Trainer attributes the bar reads, with a counter of metric reads."""

    def __init__(self, batches: int | float = 10, loggers: list[Any] | None = None) -> None:
        self.num_training_batches = batches
        self.num_val_batches: list[int | float] = [3]
        self.num_sanity_val_batches: list[int | float] = [2]
        self.num_test_batches: list[int | float] = [3]
        self.num_predict_batches: list[int | float] = [3]
        self.current_epoch = 0
        self.global_step = 0
        self.max_epochs: int | None = 1
        self.max_steps = -1
        self.sanity_checking = False
        self.is_global_zero = True
        self.loggers = loggers or []
        self.metric_reads = 0

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        self.metric_reads += 1
        return {"loss": 0.25}


class CountingBar(TQDMProgressBar):
    """Records the training bar's position at each metric read (one read per training-bar redraw)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads_at: list[int] = []

    def get_metrics(self, trainer: Any, pl_module: LightningModule) -> dict[str, Any]:
        self.reads_at.append(int(self.train_progress_bar.n))
        return super().get_metrics(trainer, pl_module)


def _train_epoch(bar: TQDMProgressBar, trainer: FakeTrainer, batches: int) -> None:
    """Drive the training hooks by hand for one epoch of ``batches`` batches."""
    module = Regressor()
    bar.setup(trainer, module, "fit")
    bar.on_train_start(trainer, module)
    bar.on_train_epoch_start(trainer, module)
    for index in range(batches):
        bar.on_train_batch_end(trainer, module, None, None, index)
    bar.on_train_epoch_end(trainer, module)
    bar.on_train_end(trainer, module)


@pytest.fixture(autouse=True)
def _no_tqdm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the environment's TQDM_* and COLAB_GPU settings out of these tests."""
    for name in ("TQDM_MININTERVAL", "TQDM_MINITERS", "COLAB_GPU"):
        monkeypatch.delenv(name, raising=False)


def test_is_a_callback() -> None:
    """TQDMProgressBar satisfies fulmen_core.Callback and keeps Lightning's defaults."""
    bar: Callback = TQDMProgressBar()
    assert isinstance(bar, TQDMProgressBar)
    assert (bar.refresh_rate, bar.process_position, bar.is_enabled) == (1, 0, True)


def test_import_does_not_import_tqdm() -> None:
    """Importing fulmen_callbacks never imports tqdm (torch may have; it is unloaded and blocked first)."""
    script = textwrap.dedent(
        """
        import sys
        import torch
        for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")]:
            del sys.modules[name]
        sys.modules["tqdm"] = None  # any import of tqdm now raises ImportError
        import fulmen_callbacks
        fulmen_callbacks.TQDMProgressBar(refresh_rate=5)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_fit_output_shows_epochs_batches_rate_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    """A fit prints the sanity, epoch and validation bars with counts, rate, v_num and the logged metrics."""
    runner = Runner(
        callbacks=[TQDMProgressBar(mininterval=0)],
        loggers=[VersionLogger(7)],
        settings=LoopSettings(max_epochs=2),
    )
    runner.fit(Regressor(), _loader(8), _loader(3))
    out = capsys.readouterr().out
    assert "Sanity Checking DataLoader 0: 100%" in out and "| 2/2 [" in out
    assert re.search(r"Epoch 0:  38%\|[^|]*\| 3/8 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+it/s, v_num=7, loss=[\d.e-]+\]", out)
    assert re.search(r"Epoch 1: 100%\|[^|]*\| 8/8 \[.*, v_num=7, loss=[\d.e-]+, val_loss=[\d.e-]+\]", out)
    assert "Validation DataLoader 0: 100%" in out and "| 3/3 [" in out


def test_test_and_predict_bars(capsys: pytest.CaptureFixture[str]) -> None:
    """test and predict print their own bars, left on screen at 100%."""
    runner = Runner(callbacks=[TQDMProgressBar(mininterval=0)])
    module = Regressor()
    runner.test(module, _loader(5))
    runner.predict(module, _loader(4))
    out = capsys.readouterr().out
    assert re.search(r"Testing DataLoader 0: 100%\|[^|]*\| 5/5 \[[^\]]*\] *\n", out)
    assert re.search(r"Predicting DataLoader 0: 100%\|[^|]*\| 4/4 \[[^\]]*\] *\n", out)


def test_validate_with_two_dataloaders(capsys: pytest.CaptureFixture[str]) -> None:
    """validate shows one bar per dataloader, each with its own total."""
    runner = Runner(callbacks=[TQDMProgressBar(mininterval=0)])
    runner.validate(Regressor(), [_loader(2), _loader(5)])
    out = capsys.readouterr().out
    assert "Validation DataLoader 0: 100%" in out and "| 2/2 [" in out
    assert "Validation DataLoader 1: 100%" in out and "| 5/5 [" in out
    assert "| 2/5 [" in out  # the second dataloader's bar was reset, not continued


def test_refresh_rate_limits_metric_reads_in_a_fit() -> None:
    """With refresh_rate=3 over 8 batches the metrics are read at batches 3, 6 and 8 and at the epoch's end only."""
    bar = CountingBar(refresh_rate=3, mininterval=0)
    runner = Runner(callbacks=[bar], settings=LoopSettings(max_epochs=1, limit_val_batches=0))
    runner.fit(Regressor(), _loader(8))
    assert bar.reads_at == [3, 6, 8, 8]


def test_refresh_rate_counts_redraws_and_metric_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 100 batches with refresh_rate=10 the bar redraws and reads the trainer's metrics exactly 10 times (+1 at the epoch's end)."""
    redraws = 0
    bar = TQDMProgressBar(refresh_rate=10, mininterval=0)
    trainer = FakeTrainer(batches=100)
    module = Regressor()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    bar.setup(trainer, module, "fit")
    bar.on_train_start(trainer, module)
    bar.on_train_epoch_start(trainer, module)
    real_refresh = bar.train_progress_bar.refresh

    def counting_refresh(*args: Any, **kwargs: Any) -> None:
        nonlocal redraws
        redraws += 1
        real_refresh(*args, **kwargs)

    monkeypatch.setattr(bar.train_progress_bar, "refresh", counting_refresh)
    for index in range(100):
        bar.on_train_batch_end(trainer, module, None, None, index)
    assert (redraws, trainer.metric_reads) == (10, 10)
    bar.on_train_epoch_end(trainer, module)
    assert (redraws, trainer.metric_reads) == (11, 11)


class _Clock:
    """A fake monotonic clock advanced by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "step", "expected"), [(_TTY, 0.06, [2, 4, 6, 8, 10, 10]), (io.StringIO, 4.0, [3, 6, 9, 10, 10])])
def test_redraws_are_throttled_in_time(
    monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], step: float, expected: list[int]
) -> None:
    """By default a terminal is redrawn at most every 0.1 s and a file every 10 s; the last batch and the epoch's end always are."""
    clock = _Clock()
    monkeypatch.setattr(progress_module, "_monotonic", clock)
    monkeypatch.setattr(sys, "stdout", stream())
    bar = CountingBar()
    trainer = FakeTrainer(batches=10)
    module = Regressor()
    bar.setup(trainer, module, "fit")
    bar.on_train_start(trainer, module)
    bar.on_train_epoch_start(trainer, module)
    for index in range(10):
        clock.now += step
        bar.on_train_batch_end(trainer, module, None, None, index)
    bar.on_train_epoch_end(trainer, module)
    assert bar.reads_at == expected


def test_non_tty_output_is_not_one_line_per_batch(capsys: pytest.CaptureFixture[str]) -> None:
    """When stdout is not a terminal (here captured), a 60-batch epoch is drawn a handful of times, not 60."""
    runner = Runner(callbacks=[TQDMProgressBar()], settings=LoopSettings(max_epochs=1, limit_val_batches=0))
    runner.fit(Regressor(), _loader(60))
    out = capsys.readouterr().out
    assert 1 <= out.count("Epoch 0:") <= 6
    assert "60/60" in out


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """TQDM_MINITERS raises the refresh rate, COLAB_GPU turns 1 into 20, and TQDM_MININTERVAL sets the interval (Lightning/tqdm conventions)."""
    monkeypatch.setenv("TQDM_MINITERS", "7")
    assert TQDMProgressBar(refresh_rate=2).refresh_rate == 7
    assert TQDMProgressBar(refresh_rate=9).refresh_rate == 9
    monkeypatch.delenv("TQDM_MINITERS")
    monkeypatch.setenv("COLAB_GPU", "1")
    assert TQDMProgressBar().refresh_rate == 20
    monkeypatch.setenv("TQDM_MININTERVAL", "0")
    monkeypatch.delenv("COLAB_GPU")
    bar = CountingBar()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    _train_epoch(bar, FakeTrainer(batches=5), 5)
    assert bar.reads_at == [1, 2, 3, 4, 5, 5]


def test_disabled_bar_prints_and_reads_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """refresh_rate=0 or disable() prints nothing and never reads the metrics; enable() turns it back on."""
    for bar in (TQDMProgressBar(refresh_rate=0), TQDMProgressBar()):
        if bar.refresh_rate:
            bar.disable()
        assert bar.is_disabled
        trainer = FakeTrainer(batches=5)
        _train_epoch(bar, trainer, 5)
        assert trainer.metric_reads == 0
    assert capsys.readouterr().out == ""
    bar.enable()
    assert bar.is_enabled
    _train_epoch(bar, FakeTrainer(batches=5), 5)
    assert "Epoch 0: 100%" in capsys.readouterr().out


def test_non_global_zero_processes_are_disabled() -> None:
    """setup disables the bar on every process but global zero, as Lightning does."""
    bar = TQDMProgressBar()
    trainer = FakeTrainer()
    trainer.is_global_zero = False
    bar.setup(trainer, Regressor(), "fit")
    assert bar.is_disabled


def test_unsized_dataloader_shows_the_final_count(capsys: pytest.CaptureFixture[str]) -> None:
    """With no known length the bar shows "n/?" and still ends on the epoch's real batch count."""
    runner = Runner(callbacks=[TQDMProgressBar(mininterval=3600)], settings=LoopSettings(max_epochs=1))
    runner.fit(Regressor(), DataLoader(_Stream(5), batch_size=None))
    out = capsys.readouterr().out
    assert "Epoch 0: |" in out and "5/? [" in out
    assert "1/? [" not in out  # throttled: no redraw between the start and the end


def test_max_steps_bounds_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    """When only max_steps bounds the run, the epoch's total is the steps left (5), not the loader's 8 batches."""
    runner = Runner(callbacks=[TQDMProgressBar(mininterval=0)], settings=LoopSettings(max_steps=5))
    runner.fit(Regressor(), _loader(8))
    out = capsys.readouterr().out
    assert "| 5/5 [" in out and "/8 [" not in out


def test_leave_keeps_a_line_per_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    """leave=True leaves each epoch's finished bar on its own line."""
    runner = Runner(callbacks=[TQDMProgressBar(leave=True, mininterval=0)], settings=LoopSettings(max_epochs=3))
    runner.fit(Regressor(), _loader(2))
    out = capsys.readouterr().out
    for epoch in range(3):
        assert re.search(rf"Epoch {epoch}: 100%\|[^|]*\| 2/2 \[[^\]]*\] *\n", out)


def test_print_writes_above_the_bar(capsys: pytest.CaptureFixture[str]) -> None:
    """print() during training writes a whole line through tqdm instead of breaking the bar."""
    bar = TQDMProgressBar(mininterval=0)

    class Talker(Regressor):
        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            if batch_idx == 1:
                bar.print("hello", 42)

    Runner(callbacks=[bar], settings=LoopSettings(max_epochs=1)).fit(Talker(), _loader(3))
    assert "hello 42\n" in capsys.readouterr().out


def test_exception_closes_the_bars(capsys: pytest.CaptureFixture[str]) -> None:
    """A failing training step leaves no open bar and the output ends on a fresh line."""
    bar = TQDMProgressBar(mininterval=0)
    with pytest.raises(RuntimeError, match="boom"):
        Runner(callbacks=[bar], settings=LoopSettings(max_epochs=1)).fit(Regressor(fail_at=2), _loader(4))
    assert bar._train_progress_bar is None and bar._eval_bar is None
    assert capsys.readouterr().out.endswith("\n")


def test_pickle_drops_the_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar pickled mid-run (e.g. deep-copied with the Trainer) comes back without tqdm objects."""
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    bar = TQDMProgressBar(refresh_rate=4)
    trainer = FakeTrainer()
    bar.setup(trainer, Regressor(), "fit")
    bar.on_train_start(trainer, Regressor())
    copy = pickle.loads(pickle.dumps(bar))
    assert isinstance(copy, TQDMProgressBar)
    assert copy._train_progress_bar is None and copy.refresh_rate == 4


def test_get_metrics_adds_v_num_from_the_loggers() -> None:
    """get_metrics is progress_bar_metrics after v_num: an int version, the last 4 characters of a string, several loggers joined."""
    bar = TQDMProgressBar()
    module = Regressor()
    assert bar.get_metrics(FakeTrainer(), module) == {"loss": 0.25}
    assert bar.get_metrics(FakeTrainer(loggers=[VersionLogger(3)]), module) == {"v_num": 3, "loss": 0.25}
    assert get_standard_metrics(FakeTrainer(loggers=[VersionLogger("version_12345")])) == {"v_num": "2345"}
    assert get_standard_metrics(FakeTrainer(loggers=[VersionLogger(1), VersionLogger(2), VersionLogger(1)])) == {"v_num": "1_2"}
    assert get_standard_metrics(FakeTrainer(loggers=[VersionLogger(None)])) == {}
    assert list(bar.get_metrics(FakeTrainer(loggers=[VersionLogger(0)]), module)) == ["v_num", "loss"]


def test_duplicate_v_num_warns_once() -> None:
    """Logging a metric called v_num with prog_bar=True warns (once) that it overrides the version."""

    class Clash(FakeTrainer):
        @property
        def progress_bar_metrics(self) -> dict[str, float]:
            return {"v_num": 1.5}

    bar = TQDMProgressBar()
    trainer = Clash(loggers=[VersionLogger(3)])
    with pytest.warns(UserWarning, match="v_num"):
        assert bar.get_metrics(trainer, Regressor()) == {"v_num": 1.5}
    bar.get_metrics(trainer, Regressor())  # a second call does not warn again (pytest's config errors on none here)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.123456, "0.123"),
        (0.0442, "0.0442"),
        (0.00123, "0.00123"),
        (1.0, "1.000"),
        (0.5, "0.500"),
        (-0.5, "-0.50"),
        (8.17e-05, "8.17e-5"),
        (12345.6, "12345.6"),
        (100.0, "100.0"),
        (5, "5"),
        (True, "1"),
        (math.nan, "nan"),
        (" padded ", "padded"),
        ({"a": 1.0}, "{'a': 1.0}"),
    ],
)
def test_format_metric_matches_lightning(value: object, text: str) -> None:
    """Values are formatted as Lightning's bar shows them (tqdm's .3g, floats padded to 5 characters), NaN as plain "nan"."""
    assert format_metric(value) == text


def test_format_metrics_joins_in_order() -> None:
    """The postfix lists name=value pairs in the dictionary's order."""
    assert format_metrics({"v_num": 0, "loss": 0.25, "acc": 1.0}) == "v_num=0, loss=0.250, acc=1.000"


@pytest.mark.parametrize("kwargs", [{"refresh_rate": -1}, {"process_position": -1}, {"mininterval": -0.5}])
def test_invalid_arguments_are_rejected(kwargs: dict[str, Any]) -> None:
    """Negative refresh rates, positions and intervals raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TQDMProgressBar(**kwargs)


def test_process_position_offsets_the_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """process_position=1 puts the training bar on line 2 and the validation bar under it on line 3."""
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    bar = TQDMProgressBar(process_position=1)
    trainer = FakeTrainer()
    module = Regressor()
    bar.setup(trainer, module, "fit")
    bar.on_train_start(trainer, module)
    bar.on_validation_start(trainer, module)
    assert bar.train_progress_bar.pos in (2, -2) and bar.val_progress_bar.pos in (3, -3)
    bar.on_validation_end(trainer, module)
    bar.on_train_end(trainer, module)
