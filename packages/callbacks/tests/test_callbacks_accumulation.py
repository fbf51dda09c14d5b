"""GradientAccumulationScheduler: schedule checks, and the optimizer steps of real fits compared with
what Lightning 2.6.6 did in the same runs."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import GradientAccumulationScheduler


class Recorder(LightningModule):
    """Records (epoch, batch) of every optimizer step; its ``factors`` callback records the
    accumulation in force at each epoch's start."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.factors: list[int] = []
        self.steps: list[tuple[int, int]] = []
        self.batch_idx = 0

    def configure_callbacks(self) -> list[Callback]:
        return [FactorRecorder(self.factors)]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.batch_idx = batch_idx
        return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.steps.append((self.current_epoch, self.batch_idx))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class FactorRecorder(Callback):
    """Appends ``trainer.accumulate_grad_batches`` at each epoch's start (after the scheduler's hook)."""

    def __init__(self, factors: list[int]) -> None:
        self.factors = factors

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.factors.append(trainer.accumulate_grad_batches)


def _fit(module: LightningModule, callback: GradientAccumulationScheduler, batches: int, **settings: Any) -> Runner:
    data = DataLoader(TensorDataset(torch.randn(batches * 2, 4), torch.randn(batches * 2, 1)), batch_size=2)
    runner = Runner(callbacks=[callback], settings=LoopSettings(**{"max_epochs": 3, **settings}))
    runner.fit(module, data)
    return runner


# batches per epoch -> Lightning 2.6.6's global_step, accumulation per epoch and (epoch, batch_idx) of
# every optimizer step, for GradientAccumulationScheduler({1: 2, 2: 4}) over 3 epochs.
LIGHTNING_STEPS: dict[int, tuple[int, list[int], list[tuple[int, int]]]] = {
    8: (14, [1, 2, 4], [(0, i) for i in range(8)] + [(1, 1), (1, 3), (1, 5), (1, 7), (2, 3), (2, 7)]),
    5: (10, [1, 2, 4], [(0, i) for i in range(5)] + [(1, 1), (1, 3), (1, 4), (2, 3), (2, 4)]),
}


@pytest.mark.parametrize("batches", sorted(LIGHTNING_STEPS))
def test_steps_where_lightning_stepped(batches: int) -> None:
    """Each epoch uses its scheduled factor; optimizer steps fall on Lightning's batches, the last
    batch of an epoch always stepping."""
    global_step, factors, steps = LIGHTNING_STEPS[batches]
    module = Recorder()
    runner = _fit(module, GradientAccumulationScheduler({1: 2, 2: 4}), batches)
    assert (runner.global_step, module.factors, module.steps) == (global_step, factors, steps)


def test_schedule_is_completed_without_touching_the_argument() -> None:
    """Epoch 0 defaults to 1; the dict passed in is left as it was (Lightning adds the entry to it)."""
    given = {4: 2, 8: 6}
    scheduler = GradientAccumulationScheduler(given)
    assert given == {4: 2, 8: 6}
    assert scheduler.scheduling == {4: 2, 8: 6, 0: 1} and scheduler.epochs == [0, 4, 8]
    assert [scheduler.get_accumulate_grad_batches(e) for e in (0, 3, 4, 7, 8, 100)] == [1, 1, 2, 2, 6, 6]
    assert scheduler.going_to_accumulate_grad_batches()
    assert not GradientAccumulationScheduler({0: 1, 3: 1}).going_to_accumulate_grad_batches()


def test_empty_schedule() -> None:
    """An empty schedule raises Lightning's TypeError with an example of a valid one."""
    with pytest.raises(TypeError, match=r"Empty dict cannot be interpreted correct.*\{0: 1, 4: 2\}"):
        GradientAccumulationScheduler({})


@pytest.mark.parametrize("key", [-1, 1.5, "2", True])
def test_bad_epoch_keys(key: Any) -> None:
    """A key that is not an int >= 0 raises Lightning's error listing the keys."""
    with pytest.raises(MisconfigurationException, match="Epoch should be an int greater than or equal to 0. Got"):
        GradientAccumulationScheduler({key: 2})


@pytest.mark.parametrize("value", [0, -2, 2.0, None, True])
def test_bad_factors(value: Any) -> None:
    """A factor that is not an int >= 1 raises Lightning's error listing the factors."""
    with pytest.raises(MisconfigurationException, match=r"Accumulation factor should be an int greater than 0. Got \["):
        GradientAccumulationScheduler({0: value})


def test_trainer_accumulation_conflicts() -> None:
    """Training with the Trainer's own accumulate_grad_batches set raises Lightning's ValueError."""
    with pytest.raises(ValueError, match=r"Either remove `accumulate_grad_batches` \(=2\) from the Trainer"):
        _fit(Recorder(), GradientAccumulationScheduler({1: 2}), 4, accumulate_grad_batches=2)


def test_manual_optimization_is_refused() -> None:
    """With manual optimization the callback raises Lightning's RuntimeError when training starts."""

    class Manual(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

    with pytest.raises(RuntimeError, match="is not supported for manual optimization"):
        _fit(Manual(), GradientAccumulationScheduler({1: 2}), 4)


def test_overridden_optimizer_step_warns() -> None:
    """Overriding optimizer_step while the schedule accumulates warns that the hook runs per optimizer step."""

    class OwnStep(Recorder):
        def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
            optimizer.step(closure=optimizer_closure)

    with pytest.warns(UserWarning, match=r"overriding `LightningModule.optimizer_\{step,zero_grad\}`"):
        runner = _fit(OwnStep(), GradientAccumulationScheduler({1: 2}), 4, max_epochs=2)
    assert runner.global_step == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(OwnStep(), GradientAccumulationScheduler({0: 1}), 4, max_epochs=1)


def test_fit_again_after_a_failure() -> None:
    """Fitting again on the Runner whose fit failed mid-schedule resumes with the scheduled factor
    (Lightning raises there, taking the factor it set itself for a Trainer setting)."""

    class FailsOnce(Recorder):
        failed = False

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.current_epoch == 1 and not FailsOnce.failed:
                FailsOnce.failed = True
                raise RuntimeError("interrupted")
            return super().training_step(batch, batch_idx)

    callback = GradientAccumulationScheduler({1: 2})
    data = DataLoader(TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=2)
    runner = Runner(callbacks=[callback], settings=LoopSettings(max_epochs=3))
    with pytest.raises(RuntimeError, match="interrupted"):
        runner.fit(FailsOnce(), data)
    assert runner.accumulate_grad_batches == 2
    module = FailsOnce()
    runner.fit(module, data)
    assert module.factors == [2, 2] and runner.global_step == 4 + 2 + 2
