"""LearningRateMonitor: the names, values and steps real fits send to the loggers, compared with
what Lightning 2.6.6 sent in the same runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
import torch
from fulmen_core import LightningModule, Logger, LRSchedulerConfig, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import LearningRateMonitor


class RecordingLogger:
    """A Logger that keeps every ``log_metrics`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str | None:
        return "recording"

    @property
    def version(self) -> int | str | None:
        return 0

    @property
    def save_dir(self) -> str | None:
        return None

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        return None

    def save(self) -> None:
        return None

    def finalize(self, status: str) -> None:
        return None

    def lr_calls(self) -> list[tuple[int | None, dict[str, float]]]:
        """The calls that carry learning-rate values, rounded to 6 places."""
        return [
            (step, {k: round(v, 6) for k, v in metrics.items()})
            for step, metrics in self.calls
            if any(k.startswith(("lr-", "my")) for k in metrics)
        ]


class TwoHeads(LightningModule):
    """Two linear heads; ``kind`` picks what ``configure_optimizers`` returns."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, 1)
        self.b = torch.nn.Linear(4, 1)
        self.kind = kind

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.a(x) + self.b(x), y)

    def configure_optimizers(self) -> Any:
        kind = self.kind
        if kind == "sgd":
            return torch.optim.SGD(self.parameters(), lr=0.1)
        if kind == "adagrad":
            return torch.optim.Adagrad(self.parameters(), lr=0.1)
        if kind == "adam_pg":
            groups: list[dict[str, Any]] = [{"params": self.a.parameters()}, {"params": self.b.parameters(), "lr": 0.01}]
            return torch.optim.Adam(groups, lr=0.1)
        if kind == "adam_pgnamed":
            named: list[dict[str, Any]] = [
                {"params": self.a.parameters(), "name": "enc"},
                {"params": self.b.parameters(), "lr": 0.01},
            ]
            return torch.optim.Adam(named, lr=0.1)
        if kind == "single_named":
            return torch.optim.Adam([{"params": self.parameters(), "name": "enc"}], lr=0.1)
        if kind == "duplicate_names":
            return torch.optim.Adam(
                [{"params": self.a.parameters(), "name": "x"}, {"params": self.b.parameters(), "name": "x"}], lr=0.1
            )
        if kind == "step_sched":
            sgd = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
            step_lr = torch.optim.lr_scheduler.StepLR(sgd, 1, 0.5)
            return {"optimizer": sgd, "lr_scheduler": {"scheduler": step_lr, "interval": "step"}}
        adam = torch.optim.Adam(self.parameters(), lr=0.1)
        if kind == "epoch_sched_named":
            halving = torch.optim.lr_scheduler.StepLR(adam, 1, 0.5)
            return {"optimizer": adam, "lr_scheduler": {"scheduler": halving, "name": "my"}}
        assert kind == "epoch_sched"
        return [adam], [torch.optim.lr_scheduler.StepLR(adam, 1, 0.5)]


def _fit(kind: str, monitor: LearningRateMonitor, loggers: list[Logger] | None = None) -> Runner:
    """Two epochs of 6 batches, logging every 2 steps, as in the Lightning runs."""
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(24, 4), torch.randn(24, 1)), batch_size=4)
    runner = Runner(
        callbacks=[monitor],
        loggers=[RecordingLogger()] if loggers is None else loggers,
        settings=LoopSettings(max_epochs=2, log_every_n_steps=2),
    )
    runner.fit(TwoHeads(kind), data)
    return runner


_EVERY_2 = [0, 1, 3, 5, 6, 7, 9, 11]  # epoch starts (0, 6) and batch starts before steps 2, 4, 6, ...

# (kind, LearningRateMonitor kwargs) -> the calls Lightning 2.6.6 made with learning rates, as
# (step, metrics), and `callback_metrics`' keys after the fit.
LIGHTNING_CALLS: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[list[tuple[int, dict[str, float]]], list[str]]] = {
    ("sgd", ()): ([(s, {"lr-SGD": 0.1}) for s in _EVERY_2], ["lr-SGD"]),
    ("adam_pg", ()): (
        [(s, {"lr-Adam/pg1": 0.1, "lr-Adam/pg2": 0.01}) for s in _EVERY_2],
        ["lr-Adam/pg1", "lr-Adam/pg2"],
    ),
    ("adam_pgnamed", ()): (
        [(s, {"lr-Adam/enc": 0.1, "lr-Adam/pg2": 0.01}) for s in _EVERY_2],
        ["lr-Adam/enc", "lr-Adam/pg2"],
    ),
    ("single_named", ()): ([(s, {"lr-Adam/enc": 0.1}) for s in _EVERY_2], ["lr-Adam/enc"]),
    ("step_sched", ()): (
        [(1, {"lr-SGD": 0.05}), (3, {"lr-SGD": 0.0125}), (5, {"lr-SGD": 0.003125}), (7, {"lr-SGD": 0.000781}),
         (9, {"lr-SGD": 0.000195}), (11, {"lr-SGD": 4.9e-05})],
        ["lr-SGD"],
    ),
    ("epoch_sched_named", ()): ([(0, {"my": 0.1}), (6, {"my": 0.05})], ["my"]),
    ("epoch_sched", ()): ([(0, {"lr-Adam": 0.1}), (6, {"lr-Adam": 0.05})], ["lr-Adam"]),
    ("step_sched", (("logging_interval", "epoch"), ("log_momentum", True), ("log_weight_decay", True))): (
        [(0, {"lr-SGD": 0.1, "lr-SGD-momentum": 0.9, "lr-SGD-weight_decay": 0.01}),
         (6, {"lr-SGD": 0.001563, "lr-SGD-momentum": 0.9, "lr-SGD-weight_decay": 0.01})],
        ["lr-SGD", "lr-SGD-momentum", "lr-SGD-weight_decay"],
    ),
    ("epoch_sched", (("logging_interval", "step"), ("log_momentum", True))): (
        [
            (s, {"lr-Adam": lr, "lr-Adam-momentum": 0.9})
            for s, lr in [(1, 0.1), (3, 0.1), (5, 0.1), (7, 0.05), (9, 0.05), (11, 0.05)]
        ],
        ["lr-Adam", "lr-Adam-momentum"],
    ),
    ("sgd", (("log_momentum", True),)): (
        [(s, {"lr-SGD": 0.1, "lr-SGD-momentum": 0.0}) for s in _EVERY_2],
        ["lr-SGD", "lr-SGD-momentum"],
    ),
}


@pytest.mark.parametrize(("kind", "kwargs"), list(LIGHTNING_CALLS), ids=lambda v: str(v))
def test_logs_what_lightning_logged(kind: str, kwargs: tuple[tuple[str, Any], ...]) -> None:
    """Names, values and steps of every learning-rate call, and callback_metrics' keys, match Lightning's."""
    expected_calls, expected_keys = LIGHTNING_CALLS[(kind, kwargs)]
    logger = RecordingLogger()
    monitor = LearningRateMonitor(**dict(kwargs))
    runner = _fit(kind, monitor, [logger])
    assert logger.lr_calls() == expected_calls
    assert sorted(runner.callback_metrics) == expected_keys
    lr_names = {name for _, metrics in expected_calls for name in metrics if not name.endswith(("momentum", "decay"))}
    assert set(monitor.lrs) == lr_names
    assert all(len(history) == len(expected_calls) for history in monitor.lrs.values())


def test_every_logger_gets_the_values() -> None:
    """With two loggers, both receive the same learning-rate calls."""
    first, second = RecordingLogger(), RecordingLogger()
    _fit("epoch_sched", LearningRateMonitor(), [first, second])
    assert first.lr_calls() == second.lr_calls() == [(0, {"lr-Adam": 0.1}), (6, {"lr-Adam": 0.05})]


def test_callback_metrics_hold_tensors() -> None:
    """The values put in trainer.callback_metrics are tensors equal to the logged numbers."""
    runner = _fit("step_sched", LearningRateMonitor(logging_interval="epoch", log_momentum=True))
    metrics = runner.callback_metrics
    assert isinstance(metrics["lr-SGD"], torch.Tensor)
    assert metrics["lr-SGD-momentum"].item() == pytest.approx(0.9)


def test_last_values_are_kept() -> None:
    """last_momentum_values and last_weight_decay_values hold the latest values under their logged names."""
    monitor = LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    _fit("step_sched", monitor)
    assert monitor.last_momentum_values == {"lr-SGD-momentum": 0.9}
    assert monitor.last_weight_decay_values == {"lr-SGD-weight_decay": 0.01}


def test_no_logger_is_an_error() -> None:
    """Training without a logger raises Lightning's error, with the fix."""
    message = "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger. Pass a logger"
    with pytest.raises(MisconfigurationException, match=message):
        _fit("sgd", LearningRateMonitor(), loggers=[])


def test_bad_interval_is_an_error() -> None:
    """A logging_interval other than "step", "epoch" or None raises, naming the value."""
    message = "logging_interval should be `step` or `epoch` or `None`, got 'batch'"
    with pytest.raises(MisconfigurationException, match=message):
        LearningRateMonitor(logging_interval="batch")  # type: ignore[arg-type]  # the wrong value under test


def test_duplicate_group_names_are_an_error() -> None:
    """Two param groups with one name raise Lightning's error, naming the optimizer and the name."""
    with pytest.raises(MisconfigurationException, match=r"lr-Adam has duplicated parameter group names \{'x'\}"):
        _fit("duplicate_names", LearningRateMonitor())


def test_momentum_missing_warns_and_logs_zero() -> None:
    """log_momentum with an optimizer without momentum or betas warns, then logs 0 as Lightning does."""
    logger = RecordingLogger()
    with pytest.warns(RuntimeWarning, match="some optimizers do not have momentum"):
        _fit("adagrad", LearningRateMonitor(log_momentum=True), [logger])
    assert logger.lr_calls()[0] == (0, {"lr-Adagrad": 0.1, "lr-Adagrad-momentum": 0.0})


class _Trainer:
    """The attributes the monitor reads, for checks without a fit."""

    def __init__(self, optimizers: list[Any], configs: list[LRSchedulerConfig]) -> None:
        self.logger = RecordingLogger()
        self.loggers: list[Logger] = [self.logger]
        self.optimizers = optimizers
        self.lr_scheduler_configs = configs
        self.callback_metrics: dict[str, torch.Tensor] = {}
        self.root_device = torch.device("cpu")
        self.batches_that_stepped = 4
        self.log_every_n_steps = 50
        self.should_stop = False


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(1))]


@attrs.define
class _Wrapped:
    """An optimizer wrapper that keeps the torch optimizer in ``.optimizer``."""

    optimizer: torch.optim.Optimizer


def test_names_of_many_optimizers_match_lightning() -> None:
    """Several optimizers of one class are numbered, and a named scheduler after two unnamed ones of its
    class gets "-1", exactly as Lightning 2.6.6 names them."""
    a1, a2 = torch.optim.Adam(_params(), lr=1), torch.optim.Adam(_params(), lr=2)
    s1 = torch.optim.SGD(_params(), lr=3)
    two_groups: list[dict[str, Any]] = [{"params": _params()}, {"params": _params(), "name": "head"}]
    a3 = torch.optim.Adam(two_groups, lr=4)
    s2 = torch.optim.SGD([{"params": _params(), "name": "enc"}], lr=5)
    a4 = torch.optim.Adam(_params(), lr=6)
    configs = [
        LRSchedulerConfig(torch.optim.lr_scheduler.StepLR(a1, 1)),
        LRSchedulerConfig(torch.optim.lr_scheduler.StepLR(a2, 1)),
        LRSchedulerConfig(torch.optim.lr_scheduler.StepLR(a4, 1), name="named"),
    ]
    monitor = LearningRateMonitor()
    monitor.on_train_start(_Trainer([a1, a2, s1, a3, s2, a4], configs), TwoHeads("sgd"))
    assert list(monitor.lrs) == [
        "lr-Adam", "lr-Adam-1", "named-1", "lr-SGD", "lr-Adam-2/pg1", "lr-Adam-2/head", "lr-SGD-1/enc"
    ]


def test_wrapped_optimizer_is_unwrapped() -> None:
    """An optimizer wrapper exposing ``.optimizer`` is named after, and logs, the optimizer it wraps."""
    trainer = _Trainer([_Wrapped(torch.optim.SGD(_params(), lr=0.3))], [])
    monitor = LearningRateMonitor()
    monitor.on_train_start(trainer, TwoHeads("sgd"))
    monitor.on_train_epoch_start(trainer, TwoHeads("sgd"))
    assert trainer.logger.calls == [(4, {"lr-SGD": 0.3})]


def test_history_moves_when_groups_are_added() -> None:
    """When an optimizer gains a param group mid-run, its history moves from "lr-SGD" to "lr-SGD/pg1"."""
    sgd = torch.optim.SGD(_params(), lr=0.3)
    trainer = _Trainer([sgd], [])
    monitor = LearningRateMonitor(logging_interval="epoch")
    module = TwoHeads("sgd")
    monitor.on_train_start(trainer, module)
    monitor.on_train_epoch_start(trainer, module)
    sgd.add_param_group({"params": _params(), "lr": 0.5})
    monitor.on_train_epoch_start(trainer, module)
    assert monitor.lrs == {"lr-SGD/pg1": [0.3, 0.3], "lr-SGD/pg2": [0.5]}
    assert trainer.logger.calls[-1] == (4, {"lr-SGD/pg1": 0.3, "lr-SGD/pg2": 0.5})


def test_batch_logging_follows_log_every_n_steps_and_stop() -> None:
    """At a batch start values are sent only when the next step is a logging step, or a stop was asked."""
    trainer = _Trainer([torch.optim.SGD(_params(), lr=0.3)], [])
    trainer.log_every_n_steps = 5
    monitor = LearningRateMonitor(logging_interval="step")
    module = TwoHeads("sgd")
    monitor.on_train_start(trainer, module)
    sent = []
    for stepped in range(10):
        trainer.batches_that_stepped = stepped
        monitor.on_train_batch_start(trainer, module, None, stepped)
        sent.append(len(trainer.logger.calls))
    assert sent == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2]
    trainer.should_stop = True
    monitor.on_train_batch_start(trainer, module, None, 10)
    trainer.log_every_n_steps = 0
    monitor.on_train_batch_start(trainer, module, None, 11)
    assert len(trainer.logger.calls) == 3
