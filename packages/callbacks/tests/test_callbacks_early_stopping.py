"""EarlyStopping: when real fits stop, compared with what Lightning 2.6.6 did in the same runs."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import EarlyStopping, EarlyStoppingReason


class Scripted(LightningModule):
    """Logs the next value of ``values`` as ``val_metric`` at every validation after the sanity
    check (or, with ``where="train"``, once per training epoch)."""

    def __init__(self, values: list[float], where: str = "val", sanity_value: float | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.values = values
        self.where = where
        self.sanity_value = sanity_value
        self.validations = 0

    def _next(self, index: int) -> float:
        return self.values[min(index, len(self.values) - 1)]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        if self.where == "train":
            self.log("val_metric", self._next(self.current_epoch), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if self.trainer.sanity_checking:
            if self.sanity_value is not None:
                self.log("val_metric", self.sanity_value)
            return
        if self.where == "val":
            self.log("val_metric", self._next(self.validations))

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validations += 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader() -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=2)


def _fit(module: Scripted, stopper: EarlyStopping, **settings: Any) -> Runner:
    runner = Runner(callbacks=[stopper], settings=LoopSettings(**{"max_epochs": 10, **settings}))
    runner.fit(module, _loader(), _loader() if module.where == "val" else None)
    return runner


DOWN_THEN_FLAT = [5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 2.0, 1.0, 0.5, 0.1]
PATIENCE_MESSAGE = (
    "Monitored metric val_metric did not improve in the last {n} records. Best score: {best}. "
    "Signaling Trainer to stop."
)

# label: (values, EarlyStopping kwargs, LoopSettings kwargs, where the metric is logged,
#         Lightning's stopped_epoch, wait_count, best_score, current_epoch and global_step at the end,
#         stopping_reason) -- recorded with lightning 2.6.6 (4 training batches per epoch).
LIGHTNING_RUNS: dict[str, tuple[list[float], dict[str, Any], dict[str, Any], str, int, int, float, int, int, str]] = {
    "patience": (DOWN_THEN_FLAT, {"patience": 2}, {}, "val", 3, 2, 4.0, 4, 16, "PATIENCE_EXHAUSTED"),
    "after_validation": (
        DOWN_THEN_FLAT, {"patience": 2, "check_on_train_epoch_end": False}, {}, "val", 3, 2, 4.0, 4, 16,
        "PATIENCE_EXHAUSTED",
    ),
    "max_mode_min_delta": (
        [1, 2, 3, 2.5, 2.9, 2.8, 5], {"patience": 3, "mode": "max", "min_delta": 0.5}, {}, "val", 5, 3, 3.0,
        6, 24, "PATIENCE_EXHAUSTED",
    ),
    "stopping_threshold": (
        [5, 4, 3, 2, 1], {"stopping_threshold": 2.5}, {}, "val", 3, 0, 3.0, 4, 16, "STOPPING_THRESHOLD",
    ),
    "divergence_threshold": (
        [5, 4, 30, 2, 1], {"divergence_threshold": 10}, {}, "val", 2, 0, 4.0, 3, 12, "DIVERGENCE_THRESHOLD",
    ),
    "not_finite": ([5, 4, math.nan, 2, 1], {}, {}, "val", 2, 0, 4.0, 3, 12, "NON_FINITE_METRIC"),
    "twice_per_epoch": (
        DOWN_THEN_FLAT * 3, {"patience": 2}, {"val_check_interval": 0.5}, "val", 1, 2, 4.0, 2, 8,
        "PATIENCE_EXHAUSTED",
    ),
    "every_2_batches": (
        DOWN_THEN_FLAT * 3, {"patience": 2}, {"val_check_interval": 2}, "val", 1, 2, 4.0, 2, 8,
        "PATIENCE_EXHAUSTED",
    ),
    "every_2_epochs": (
        DOWN_THEN_FLAT, {"patience": 2}, {"check_val_every_n_epoch": 2}, "val", 7, 2, 4.0, 8, 32,
        "PATIENCE_EXHAUSTED",
    ),
    "train_metric": (DOWN_THEN_FLAT, {"patience": 2}, {}, "train", 3, 2, 4.0, 4, 16, "PATIENCE_EXHAUSTED"),
    "min_epochs": (DOWN_THEN_FLAT, {"patience": 1}, {"min_epochs": 5}, "val", 4, 3, 4.0, 5, 20, "PATIENCE_EXHAUSTED"),
}


@pytest.mark.parametrize("label", sorted(LIGHTNING_RUNS))
def test_stops_where_lightning_stopped(label: str) -> None:
    """Each scripted run stops at Lightning's epoch with Lightning's wait count, best score and reason."""
    values, kwargs, settings, where, stopped, wait, best, epoch, steps, reason = LIGHTNING_RUNS[label]
    stopper = EarlyStopping(monitor="val_metric", **kwargs)
    runner = _fit(Scripted(values, where), stopper, **settings)
    assert (stopper.stopped_epoch, stopper.wait_count, float(stopper.best_score)) == (stopped, wait, best)
    assert (runner.current_epoch, runner.global_step) == (epoch, steps)
    assert stopper.stopping_reason is EarlyStoppingReason[reason]
    assert runner.should_stop


def test_verbose_prints_lightnings_messages(capsys: pytest.CaptureFixture[str]) -> None:
    """verbose=True prints Lightning's improvement and stop lines, and the stop line is kept."""
    stopper = EarlyStopping(monitor="val_metric", patience=2, verbose=True)
    _fit(Scripted(DOWN_THEN_FLAT), stopper)
    stop = PATIENCE_MESSAGE.format(n=2, best="4.000")
    assert capsys.readouterr().out.splitlines() == [
        "Metric val_metric improved. New best score: 5.000",
        "Metric val_metric improved by 1.000 >= min_delta = 0.0. New best score: 4.000",
        stop,
    ]
    assert stopper.stopping_reason_message == stop


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        (
            [5, 4, 3, 2, 1],
            {"stopping_threshold": 2.5},
            "Stopping threshold reached: val_metric = 2.0 < 2.5. Signaling Trainer to stop.",
        ),
        (
            [5, 4, math.nan],
            {},
            "Monitored metric val_metric = nan is not finite. Previous best value was 4.000. Signaling Trainer to stop.",
        ),
        # Lightning prints "30.0 < 10" here; the metric is above the threshold, so fulmen prints ">".
        (
            [5, 4, 30],
            {"divergence_threshold": 10},
            "Divergence threshold reached: val_metric = 30.0 > 10. Signaling Trainer to stop.",
        ),
    ],
)
def test_threshold_messages(values: list[float], kwargs: dict[str, Any], message: str) -> None:
    """The threshold and non-finite stops explain themselves in Lightning's words."""
    stopper = EarlyStopping(monitor="val_metric", **kwargs)
    _fit(Scripted(values), stopper)
    assert stopper.stopping_reason_message == message


def test_missing_metric_names_the_key_and_the_logged_ones() -> None:
    """With strict=True a monitor that was never logged raises, naming it, the metrics there are, and the fix."""
    stopper = EarlyStopping(monitor="val_loss")
    with pytest.raises(RuntimeError) as caught:
        _fit(Scripted(DOWN_THEN_FLAT), stopper)
    message = str(caught.value)
    assert message.startswith(
        "Early stopping conditioned on metric `val_loss` which is not available. Pass in or modify your "
        "`EarlyStopping` callback to use any of the following: `val_metric`"
    )
    assert "self.log('val_loss', value)" in message and "strict=False" in message


def test_missing_metric_without_strict_warns_and_keeps_training() -> None:
    """With strict=False (and verbose) a missing monitor warns and never stops the run."""
    stopper = EarlyStopping(monitor="val_loss", strict=False, verbose=True)
    with pytest.warns(RuntimeWarning, match="`val_loss` which is not available"):
        runner = _fit(Scripted(DOWN_THEN_FLAT), stopper, max_epochs=2)
    assert (runner.current_epoch, stopper.wait_count, stopper.stopped_epoch) == (2, 0, 0)
    assert stopper.stopping_reason is EarlyStoppingReason.NOT_STOPPED
    assert float(stopper.best_score) == math.inf


def test_sanity_check_is_not_a_check() -> None:
    """A NaN logged during the sanity check neither stops training nor counts toward patience."""
    stopper = EarlyStopping(monitor="val_metric", check_on_train_epoch_end=False)
    runner = _fit(Scripted([3.0, 2.0, 1.0], sanity_value=math.nan), stopper, max_epochs=3)
    assert runner.current_epoch == 3 and not runner.should_stop
    assert (stopper.wait_count, float(stopper.best_score)) == (0, 1.0)


def test_validate_outside_fit_is_not_a_check() -> None:
    """trainer.validate logs the metric but leaves the callback's state alone (checks happen in fit only)."""
    stopper = EarlyStopping(monitor="val_metric", check_on_train_epoch_end=False)
    runner = Runner(callbacks=[stopper], settings=LoopSettings(max_epochs=1))
    runner.validate(Scripted([1.0]), _loader())
    assert float(stopper.best_score) == math.inf and stopper.wait_count == 0


def test_fast_dev_run_skips_the_check() -> None:
    """Under fast_dev_run the check is off, so even a missing strict monitor does not raise."""
    stopper = EarlyStopping(monitor="never_logged")
    runner = _fit(Scripted(DOWN_THEN_FLAT), stopper, fast_dev_run=True)
    assert runner.global_step == 1 and float(stopper.best_score) == math.inf


def test_runs_after_the_modules_train_epoch_end() -> None:
    """A metric the module logs in its own on_train_epoch_end is seen by the check of that same epoch."""

    class LogsAtEpochEnd(Scripted):
        def on_train_epoch_end(self) -> None:
            self.log("val_metric", self._next(self.current_epoch))

    stopper = EarlyStopping(monitor="val_metric", patience=2)
    runner = _fit(LogsAtEpochEnd(DOWN_THEN_FLAT, where="none"), stopper)
    assert (stopper.stopped_epoch, runner.current_epoch, float(stopper.best_score)) == (3, 4, 4.0)


def test_is_a_monitoring_callback() -> None:
    """The class carries the mark that makes the loops run it after the module's epoch-end hook."""
    assert getattr(EarlyStopping, "_fulmen_monitoring") is True


def test_defaults_and_signed_min_delta() -> None:
    """Lightning's defaults, the starting best score per mode, and min_delta stored with its sign."""
    low = EarlyStopping("loss", min_delta=0.5)
    high = EarlyStopping("acc", min_delta=0.5, mode="max")
    assert (low.patience, low.verbose, low.strict, low.check_finite, low.log_rank_zero_only) == (3, False, True, True, False)
    assert (low.stopping_threshold, low.divergence_threshold) == (None, None)
    assert (low.min_delta, high.min_delta) == (-0.5, 0.5)
    assert (float(low.best_score), float(high.best_score)) == (math.inf, -math.inf)
    assert (low.monitor_op(torch.tensor(1.0), 2.0).item(), high.monitor_op(torch.tensor(1.0), 2.0).item()) == (True, False)


def test_bad_mode_and_patience_are_rejected() -> None:
    """An unknown mode raises Lightning's error (with the fix); a negative or fractional patience raises too."""
    with pytest.raises(MisconfigurationException, match="`mode` can be min, max, got avg"):
        EarlyStopping("loss", mode="avg")
    with pytest.raises(MisconfigurationException, match="patience"):
        EarlyStopping("loss", patience=-1)


def test_state_key_separates_monitors() -> None:
    """The checkpoint key is Lightning's: the class name and the monitor and mode."""
    assert EarlyStopping("val_loss").state_key == "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
    assert EarlyStopping("acc", mode="max").state_key == "EarlyStopping{'monitor': 'acc', 'mode': 'max'}"


def test_state_round_trips_through_a_weights_only_load() -> None:
    """state_dict has Lightning's keys, survives torch.load(weights_only=True), and load_state_dict restores it."""
    stopper = EarlyStopping(monitor="val_metric", patience=2)
    _fit(Scripted(DOWN_THEN_FLAT), stopper)
    state = stopper.state_dict()
    keys = {"wait_count", "stopped_epoch", "best_score", "patience", "stopping_reason", "stopping_reason_message"}
    assert set(state) == keys
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = EarlyStopping(monitor="val_metric")
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert (restored.wait_count, restored.stopped_epoch, restored.patience) == (2, 3, 2)
    assert float(restored.best_score) == 4.0
    assert restored.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED
    assert restored.stopping_reason_message == PATIENCE_MESSAGE.format(n=2, best="4.000")


def test_older_state_without_reason_loads() -> None:
    """A state saved before the reason existed (Lightning < 2.6) loads as "not stopped"."""
    stopper = EarlyStopping("loss")
    stopper.load_state_dict({"wait_count": 1, "stopped_epoch": 0, "best_score": torch.tensor(0.3), "patience": 3})
    assert stopper.stopping_reason is EarlyStoppingReason.NOT_STOPPED and stopper.stopping_reason_message is None
    assert stopper.wait_count == 1


class _FakeState:
    fn = "fit"


class FakeTrainer:
    """The attributes the check reads, for checks driven by hand."""

    def __init__(self, metrics: dict[str, Any], world_size: int = 1, rank: int = 0) -> None:
        self.callback_metrics = metrics
        self.state = _FakeState()
        self.sanity_checking = False
        self.fast_dev_run = False
        self.should_stop = False
        self.current_epoch = 7
        self.world_size = world_size
        self.global_rank = rank
        self.val_check_interval: int | float | None = 1.0
        self.check_val_every_n_epoch = 1


def test_a_metric_with_many_values_is_rejected() -> None:
    """A monitored value with several elements raises an error that names the metric and its shape."""
    stopper = EarlyStopping("val_loss", check_on_train_epoch_end=False)
    with pytest.raises(ValueError, match=r"'val_loss', which holds 3 values \(shape \(3,\)\)"):
        stopper.on_validation_end(FakeTrainer({"val_loss": torch.ones(3)}), Scripted([]))


def test_setup_picks_where_to_check() -> None:
    """check_on_train_epoch_end=None resolves to the epoch's end only for one validation per epoch."""
    cases = [(1.0, 1, True), (0.5, 1, False), (1.0, 2, False), (1, 1, False), (None, 1, True)]
    for interval, every, expected in cases:
        trainer = FakeTrainer({})
        trainer.val_check_interval = interval
        trainer.check_val_every_n_epoch = every
        stopper = EarlyStopping("x")
        stopper.setup(trainer, Scripted([]), "fit")
        assert stopper._check_on_train_epoch_end is expected, (interval, every)


def test_rank_prefix_and_rank_zero_only(capsys: pytest.CaptureFixture[str]) -> None:
    """With several processes messages carry "[rank: N]", and log_rank_zero_only silences other ranks."""
    for rank, only_zero in [(1, False), (1, True), (0, True)]:
        stopper = EarlyStopping("m", verbose=True, log_rank_zero_only=only_zero, check_on_train_epoch_end=False)
        stopper.on_validation_end(FakeTrainer({"m": torch.tensor(2.0)}, world_size=2, rank=rank), Scripted([]))
    assert capsys.readouterr().out.splitlines() == [
        "[rank: 1] Metric m improved. New best score: 2.000",
        "[rank: 0] Metric m improved. New best score: 2.000",
    ]


def test_stop_sets_should_stop_and_epoch() -> None:
    """A stop sets trainer.should_stop and records the trainer's current epoch; a non-stop leaves it False."""
    stopper = EarlyStopping("m", patience=1, check_on_train_epoch_end=False)
    trainer = FakeTrainer({"m": torch.tensor(1.0)})
    stopper.on_validation_end(trainer, Scripted([]))
    assert not trainer.should_stop
    stopper.on_validation_end(trainer, Scripted([]))
    assert trainer.should_stop and stopper.stopped_epoch == 7


def test_resume_from_a_checkpoint_keeps_counting(tmp_path: Any) -> None:
    """A fit resumed from a Runner checkpoint restores the callback's state and stops where an
    uninterrupted run stops."""
    first = EarlyStopping(monitor="val_metric", patience=2)
    runner = _fit(Scripted(DOWN_THEN_FLAT), first, max_epochs=3)
    assert (first.wait_count, float(first.best_score), runner.should_stop) == (1, 4.0, False)
    path = tmp_path / "three_epochs.ckpt"
    runner.save_checkpoint(path)
    resumed = EarlyStopping(monitor="val_metric", patience=2)
    module = Scripted(DOWN_THEN_FLAT)
    module.validations = 3  # the values continue where the first run's module left off
    second = Runner(callbacks=[resumed], settings=LoopSettings(max_epochs=10))
    second.fit(module, _loader(), _loader(), ckpt_path=path)
    assert (resumed.stopped_epoch, resumed.wait_count, float(resumed.best_score)) == (3, 2, 4.0)
    assert (second.current_epoch, second.global_step) == (4, 16)
