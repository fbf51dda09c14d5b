"""Timer: durations, per-stage times, and stopping real fits at the limit, on a clock the test drives."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

import fulmen_callbacks._timer as timer_module
from fulmen_callbacks import Timer


class Clock:
    """A stand-in for the ``time`` module whose ``monotonic`` moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The Timer's clock, replaced for the test."""
    fake = Clock()
    monkeypatch.setattr(timer_module, "time", fake)
    return fake


class Ticking(LightningModule):
    """Advances ``clock`` by ``per_batch`` seconds in every training step and 1 s per validation or test batch."""

    def __init__(self, clock: Clock, per_batch: float = 10.0) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.clock = clock
        self.per_batch = per_batch

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.clock.now += self.per_batch
        return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.clock.now += 1.0

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.clock.now += 1.0

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.clock.now += 1.0
        out: torch.Tensor = self.layer(batch[0])
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader(batches: int = 4) -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(torch.randn(batches * 2, 4), torch.randn(batches * 2, 1)), batch_size=2)


def _runner(timer: Timer, max_epochs: int = 5) -> Runner:
    return Runner(callbacks=[timer], settings=LoopSettings(max_epochs=max_epochs, num_sanity_val_steps=0))


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("00:12:00:00", 12 * 3600.0),
        (" 01:00:00:30 ", 86400.0 + 30),
        ("10:00:00:00", 10 * 86400.0),
        (timedelta(weeks=1), 7 * 86400.0),
        ({"weeks": 4, "days": 2}, 30 * 86400.0),
        ({"minutes": 1.5}, 90.0),
    ],
)
def test_durations_in_every_format(duration: Any, seconds: float, clock: Clock) -> None:
    """A DD:HH:MM:SS string, a timedelta and a dict all give the same number of seconds."""
    assert Timer(duration).time_remaining() == seconds


def test_no_duration_measures_only(clock: Clock) -> None:
    """Without a duration nothing stops training and time_remaining is None."""
    timer = Timer()
    runner = _runner(timer, max_epochs=2)
    runner.fit(Ticking(clock), _loader())
    assert runner.current_epoch == 2 and not runner.should_stop
    assert timer.time_remaining() is None and timer.time_elapsed() == 80.0


@pytest.mark.parametrize("text", ["12:00:00", "0:1:00:00", "1 day", "00:00:00:00:00"])
def test_bad_duration_string(text: str) -> None:
    """A string that is not DD:HH:MM:SS raises Lightning's error, with an example."""
    message = "is not a valid duration. Expected a string in the format DD:HH:MM:SS"
    with pytest.raises(MisconfigurationException, match=message):
        Timer(text)


def test_bad_duration_dict_and_type() -> None:
    """A dict key that timedelta does not take, or a plain number, raises an error listing what is accepted."""
    with pytest.raises(MisconfigurationException, match="keys must be arguments of datetime.timedelta"):
        Timer({"fortnights": 1})
    with pytest.raises(MisconfigurationException, match="expected a 'DD:HH:MM:SS' string, a datetime.timedelta"):
        Timer(60)  # type: ignore[arg-type]  # the unsupported type under test


def test_bad_interval() -> None:
    """An interval other than "step" or "epoch" raises Lightning's error listing the choices."""
    with pytest.raises(MisconfigurationException, match=r"`Timer\(interval=batch\)`. Possible choices are: step, epoch"):
        Timer("00:00:01:00", interval="batch")


def test_stops_after_the_step_that_reaches_the_limit(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    """interval="step": training stops after the batch that reaches the limit, and says so once."""
    timer = Timer("00:00:00:25")
    runner = _runner(timer)
    runner.fit(Ticking(clock), _loader())
    assert runner.should_stop and runner.global_step == 3 and runner.current_epoch == 1
    assert timer.time_elapsed() == 30.0 and timer.time_remaining() == -5.0
    assert capsys.readouterr().out.splitlines() == [
        "Time limit reached. Elapsed time is 0:00:30. Signaling Trainer to stop."
    ]


def test_epoch_interval_finishes_the_epoch(clock: Clock) -> None:
    """interval="epoch": the epoch that passes the limit is finished, then training stops."""
    timer = Timer("00:00:00:25", interval="epoch", verbose=False)
    runner = _runner(timer)
    runner.fit(Ticking(clock), _loader())
    assert runner.global_step == 4 and runner.current_epoch == 1


def test_stage_times(clock: Clock) -> None:
    """Start, end and elapsed times are kept for training, validation, test and predict."""
    timer = Timer()
    runner = _runner(timer, max_epochs=1)
    runner.fit(Ticking(clock), _loader(), _loader(3))
    runner.test(dataloaders=_loader(2))
    runner.predict(dataloaders=_loader(5))
    assert timer.time_elapsed("train") == 43.0  # 4 batches of 10 s and one validation of 3 batches
    assert timer.time_elapsed("validate") == 3.0
    assert timer.time_elapsed("test") == 2.0
    assert timer.time_elapsed("predict") == 5.0
    start, end = timer.start_time("test"), timer.end_time("test")
    assert start is not None and end is not None and end - start == 2.0
    assert timer.start_time("sanity_check") is None and timer.time_elapsed("sanity_check") == 0.0


def test_elapsed_grows_while_a_stage_runs(clock: Clock) -> None:
    """Before a stage ends, time_elapsed is measured up to now."""
    timer = Timer("00:00:01:00")
    module = Ticking(clock)
    timer.on_train_start(None, module)
    clock.now += 12.0
    assert timer.time_elapsed() == 12.0 and timer.time_remaining() == 48.0


def test_unknown_stage() -> None:
    """A stage name that does not exist raises, listing the valid ones."""
    with pytest.raises(ValueError, match="'training' is not a valid stage; use one of 'train', 'sanity_check'"):
        Timer().time_elapsed("training")


def test_state_round_trip_and_resumed_offset(clock: Clock) -> None:
    """state_dict holds every stage's elapsed time (loadable with weights_only=True); a restored
    train time counts toward the limit."""
    first = Timer("00:00:01:00")
    _runner(first, max_epochs=1).fit(Ticking(clock), _loader())
    state = first.state_dict()
    assert state == {"time_elapsed": {"train": 40.0, "sanity_check": 0.0, "validate": 0.0, "test": 0.0, "predict": 0.0}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    resumed = Timer("00:00:01:00", verbose=False)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.time_elapsed() == 40.0 and resumed.time_remaining() == 20.0
    runner = _runner(resumed)
    runner.fit(Ticking(clock), _loader())
    assert runner.global_step == 2  # 40 s restored + 2 batches of 10 s reach 60 s


def test_depleted_state_stops_before_training(clock: Clock) -> None:
    """A restored state already past the limit stops the fit before its first batch."""
    timer = Timer("00:00:00:30", interval="epoch", verbose=False)
    timer.load_state_dict({"time_elapsed": {"train": 31.0}})
    runner = _runner(timer)
    runner.fit(Ticking(clock), _loader())
    assert runner.global_step == 0 and runner.should_stop


class _Ranked:
    """The attributes the limit check reads, on a process other than global zero."""

    should_stop = False
    is_global_zero = False


def test_message_only_on_global_zero(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    """The stop still happens on other processes, but only global zero prints the message."""
    timer = Timer("00:00:00:00")
    trainer = _Ranked()
    timer.on_fit_start(trainer, Ticking(clock))
    assert trainer.should_stop and capsys.readouterr().out == ""


def test_resume_from_a_checkpoint_counts_the_time_spent(clock: Clock, tmp_path: Any) -> None:
    """A fit resumed from a Runner checkpoint counts the training time saved in it toward the limit."""
    runner = _runner(Timer("00:00:01:00"), max_epochs=1)
    runner.fit(Ticking(clock), _loader())
    path = tmp_path / "one_epoch.ckpt"
    runner.save_checkpoint(path)
    resumed = Timer("00:00:01:00", verbose=False)
    second = _runner(resumed)
    second.fit(Ticking(clock), _loader(), ckpt_path=path)
    assert second.global_step == 4 + 2 and resumed.time_elapsed() == 60.0
