"""LearningRateFinder as a callback on a Runner: schedule, smoothing, suggestion, restore, errors."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import LearningRateFinder, LRFinderResult
from fulmen_callbacks._lr_finder import scheduled_lr


class Regression(LightningModule):
    """A linear regression that records the learning rate of every real training step."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(4, 1)
        self.seen_lrs: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def on_train_epoch_start(self) -> None:
        self.seen_lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader(n: int = 64) -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


def test_schedule_is_lightnings() -> None:
    """The first step trains at min_lr and step k at fraction (k+1)/num_training of the range."""
    assert scheduled_lr("exponential", 1e-4, 1.0, 4, 0) == 1e-4
    assert scheduled_lr("exponential", 1e-4, 1.0, 4, 1) == pytest.approx(1e-2)
    assert scheduled_lr("exponential", 1e-4, 1.0, 4, 3) == pytest.approx(1.0)
    assert scheduled_lr("linear", 0.0 + 1e-9, 1.0, 4, 2) == pytest.approx(0.75)


def test_callback_searches_restores_and_continues_the_fit() -> None:
    """At fit start the finder records lr/loss pairs, puts the weights back, sets model.lr to the
    suggestion, and the fit then trains all its steps at that rate."""
    torch.manual_seed(0)
    model = Regression()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finder = LearningRateFinder(min_lr=1e-4, max_lr=1.0, num_training_steps=20, early_stop_threshold=None)
    seen: dict[str, Any] = {}

    runner = Runner(callbacks=[finder], settings=LoopSettings(max_epochs=1))
    original_run = runner.fit_loop.run

    def run_and_compare() -> None:
        seen["weights_at_start"] = {k: v.clone() for k, v in model.state_dict().items()}
        original_run()

    runner.fit_loop.run = run_and_compare  # type: ignore[method-assign]  # spy on the outer run only
    runner.fit(model, _loader(128))
    result = finder.optimal_lr
    assert isinstance(result, LRFinderResult)
    assert len(result.results["lr"]) == 20 and result.results["lr"][0] == 1e-4
    assert all(math.isfinite(loss) for loss in result.results["loss"])
    assert model.lr == result.suggestion()
    assert model.seen_lrs[-1] == model.lr  # the real epoch trained at the suggestion
    assert runner.global_step == 32  # the whole real epoch ran after the search
    for key, value in seen["weights_at_start"].items():
        assert torch.equal(value, before[key])


def test_smoothing_and_early_stop() -> None:
    """Losses are bias-corrected moving averages, and a loss above threshold x best stops the search."""
    result = LRFinderResult("exponential", 1e-3, 1.0, 10)
    from fulmen_callbacks._lr_finder import _Recorder

    class FakeTrainer:
        def __init__(self) -> None:
            self.global_step = 0
            self.should_stop = False
            self.optimizers: list[torch.optim.Optimizer] = []

    trainer = FakeTrainer()
    recorder = _Recorder(result, early_stop_threshold=4.0)
    module = Regression()
    for step, loss in enumerate([1.0, 1.0, 100.0], start=1):
        recorder.on_train_batch_start(trainer, module, None, step - 1)
        trainer.global_step = step
        recorder.on_train_batch_end(trainer, module, torch.tensor(loss), None, step - 1)
    first = 0.02 * 1.0 / (1 - 0.98**2)
    assert result.results["loss"][0] == pytest.approx(first)
    assert trainer.should_stop


def test_suggestion_needs_two_finite_points() -> None:
    """Too few finite points give None with a warning; skip_end=0 keeps the last point."""
    result = LRFinderResult("linear", 0.1, 1.0, 4)
    result.results = {"lr": [0.1, 0.2, 0.3, 0.4], "loss": [1.0, math.nan, 0.5, 0.2]}
    with pytest.warns(UserWarning, match="no learning-rate suggestion"):
        assert result.suggestion(skip_begin=2, skip_end=1) is None
    assert result.suggestion(skip_begin=0, skip_end=0) in (0.1, 0.3, 0.4)


def test_plot_without_matplotlib_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """plot() without matplotlib raises an error naming pip install matplotlib."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    result = LRFinderResult("exponential", 1e-3, 1.0, 4)
    with pytest.raises(ModuleNotFoundError, match="pip install matplotlib"):
        result.plot()


def test_bad_arguments() -> None:
    """An unknown mode lists the modes; an empty lr range and a bad step count are errors."""
    with pytest.raises(MisconfigurationException, match=r"\['linear', 'exponential'\]"):
        LearningRateFinder(mode="cosine")
    with pytest.raises(MisconfigurationException, match="0 < min_lr < max_lr"):
        LearningRateFinder(min_lr=1.0, max_lr=0.1)
    with pytest.raises(MisconfigurationException, match="num_training_steps=0"):
        LearningRateFinder(num_training_steps=0)
