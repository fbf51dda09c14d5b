"""The Tuner end to end on the Trainer: lr_find and scale_batch_size, compared with Lightning 2.6.6.

The expected numbers in ``fixtures/lightning/tuner.json`` were recorded by ``parity/tuner.py`` under
Lightning on the same seeded digits scenario.
"""

from __future__ import annotations

import json
import re
import math
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy
import pytest
import torch
from fulmen_core import MisconfigurationException
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen.callbacks import ModelCheckpoint
from fulmen.tuner import Tuner

matplotlib.use("Agg")

EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "lightning" / "tuner.json").read_text()
)
_DIGITS = load_digits()
X = torch.tensor(_DIGITS.data, dtype=torch.float32) / 16.0
Y = torch.tensor(_DIGITS.target)


class Digits(L.LightningModule):
    """A small classifier whose dataloader reads ``self.batch_size``; batches larger than
    ``oom_above`` raise ``torch.OutOfMemoryError`` as a full device would."""

    def __init__(self, lr: float = 0.01, batch_size: int = 32, oom_above: int | None = None) -> None:
        super().__init__()
        self.lr, self.batch_size, self.oom_above = lr, batch_size, oom_above
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        if self.oom_above is not None and inputs.shape[0] > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return torch.nn.functional.cross_entropy(self.net(inputs), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(X, Y), batch_size=self.batch_size, shuffle=True)


def _trainer(**flags: Any) -> L.Trainer:
    settings: dict[str, Any] = dict(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    return L.Trainer(**{**settings, **flags})


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["default", "linear"])
def test_lr_find_matches_lightning(name: str) -> None:
    """lr_find records Lightning's learning rates and smoothed losses and gives its suggestion."""
    expected = EXPECTED[f"lr_find_{name}"]
    L.seed_everything(7)
    model = Digits()
    result = Tuner(_trainer()).lr_find(model, **expected["kwargs"])
    assert result is not None
    assert result.results["lr"] == pytest.approx(expected["lr"], rel=1e-12)
    assert result.results["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert result.suggestion() == pytest.approx(expected["suggestion"], rel=1e-12)
    assert model.lr == pytest.approx(expected["model_lr"], rel=1e-12)


def test_lr_find_restores_model_and_trainer(tmp_path: Path) -> None:
    """After lr_find the weights are bit-for-bit unchanged, model.lr holds a suggestion within
    [min_lr, max_lr], the trainer's callbacks, progress and stop flag are as before, and nothing
    was written to the log directory."""
    L.seed_everything(3)
    model = Digits()
    before = _weights(model)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt")
    trainer = _trainer(default_root_dir=tmp_path, logger=True, callbacks=[checkpoint], enable_checkpointing=None)
    callbacks = list(trainer.callbacks)
    result = Tuner(trainer).lr_find(model, min_lr=1e-5, max_lr=1.0, num_training=50)
    assert result is not None
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    suggestion = result.suggestion()
    assert suggestion is not None and 1e-5 <= suggestion <= 1.0 and model.lr == suggestion
    assert len(result.results["lr"]) <= 50 and len(result.results["lr"]) == len(result.results["loss"])
    assert trainer.callbacks == callbacks and len(trainer.loggers) == 1
    assert trainer.global_step == 0 and trainer.current_epoch == 0 and not trainer.should_stop
    assert list(tmp_path.iterdir()) == []


def test_fit_after_lr_find_trains_as_from_scratch() -> None:
    """A fit after lr_find gives the same weights as the same fit without it, at the found lr."""
    L.seed_everything(5)
    tuned = Digits()
    trainer = _trainer(max_epochs=1)
    Tuner(trainer).lr_find(tuned, num_training=30)
    trainer.fit(tuned)
    L.seed_everything(5)
    plain = Digits(lr=tuned.lr)
    _trainer(max_epochs=1).fit(plain)
    assert trainer.global_step == math.ceil(len(X) / 32)
    for key, value in plain.state_dict().items():
        assert torch.equal(value, tuned.state_dict()[key]), key


def test_lr_find_early_stop_gives_fewer_points() -> None:
    """A diverging range (lr up to 1e4) stops before num_training steps."""
    L.seed_everything(7)
    result = Tuner(_trainer()).lr_find(Digits(), min_lr=1e-3, max_lr=1e4, num_training=80)
    assert result is not None and 2 <= len(result.results["lr"]) < 80


def test_plot_marks_the_suggestion() -> None:
    """plot(suggest=True) returns a Figure with the loss curve and a red dot at the suggestion."""
    from matplotlib.figure import Figure

    L.seed_everything(7)
    result = Tuner(_trainer()).lr_find(Digits(), num_training=40, update_attr=False)
    assert result is not None
    figure = result.plot(suggest=True)
    assert isinstance(figure, Figure)
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2 and lines[1].get_color() == "red"
    assert numpy.asarray(lines[1].get_xdata()).tolist() == [result.suggestion()]


@pytest.mark.parametrize(("mode", "margin"), [("power", 0.05), ("binsearch", 0.05), ("binsearch", 0.0)])
def test_scale_batch_size_matches_lightning(mode: str, margin: float) -> None:
    """scale_batch_size finds Lightning's size below a simulated OOM at 100 and writes it to the model."""
    expected = EXPECTED[f"scale_{mode}_{margin}"]
    L.seed_everything(7)
    model = Digits(oom_above=100)
    before = _weights(model)
    found = Tuner(_trainer(max_epochs=1)).scale_batch_size(model, mode=mode, margin=margin)
    assert found == expected["found"] and model.batch_size == expected["model_batch_size"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_scale_batch_size_uses_the_datamodule() -> None:
    """The batch size attribute is found on a datamodule when the model has none."""

    class Data(L.LightningDataModule):
        def __init__(self) -> None:
            super().__init__()
            self.batch_size = 4

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(TensorDataset(X, Y), batch_size=self.batch_size)

    class NoSize(Digits):
        def __init__(self) -> None:
            super().__init__(oom_above=40)
            del self.batch_size

    data = Data()
    found = Tuner(_trainer(max_epochs=1)).scale_batch_size(NoSize(), datamodule=data, mode="binsearch", margin=0.0)
    assert found == 40 and data.batch_size == 40


class Evaluated(Digits):
    """Digits whose evaluation dataloaders read ``self.batch_size`` and whose steps count batches."""

    def __init__(self, oom_above: int) -> None:
        super().__init__(oom_above=oom_above)
        self.steps_run = 0

    def _step(self, batch: Any) -> torch.Tensor:
        inputs, targets = batch
        self.steps_run += 1
        if self.oom_above is not None and inputs.shape[0] > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return torch.nn.functional.cross_entropy(self.net(inputs), targets)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("size", float(batch[0].shape[0]), reduce_fx="max")
        self._step(batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("size", float(batch[0].shape[0]), reduce_fx="max")
        self._step(batch)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch)

    def _loader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(X, Y), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader()

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader()


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_scale_batch_size_for_evaluation_methods(method: Literal["validate", "test", "predict"]) -> None:
    """method='validate'|'test'|'predict' searches with steps_per_trial batches of that stage per size,
    leaves the trainer's callbacks and the weights as they were, and the next run uses the size found."""
    model = Evaluated(oom_above=40)
    before = _weights(model)
    trainer = _trainer()
    callbacks = list(trainer.callbacks)
    found = Tuner(trainer).scale_batch_size(model, method=method, mode="binsearch", margin=0.0, steps_per_trial=2)
    assert found == 40 and model.batch_size == 40
    # init 2, doubling to 64 (OOM at its first batch), then bisecting 32..64 down to 40: 2 batches per success.
    assert model.steps_run <= 2 * 12
    assert trainer.callbacks == callbacks
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    if method != "predict":
        results = getattr(trainer, method)(model, verbose=False)
        assert results[0]["size"] == 40.0


def test_scale_batch_size_errors() -> None:
    """A missing attribute names batch_arg_name, OOM at every size names the sizes, and an unknown
    mode lists the modes."""
    with pytest.raises(MisconfigurationException, match="batch_arg_name='bs'.*model.hparams"):
        Tuner(_trainer()).scale_batch_size(Digits(), batch_arg_name="bs")
    model = Digits(oom_above=0)
    with pytest.raises(MisconfigurationException, match=r"ran out of memory at every size it tried \(2, 1"):
        Tuner(_trainer()).scale_batch_size(model)
    assert model.batch_size == 32
    with pytest.raises(MisconfigurationException, match=r"\['power', 'binsearch'\]"):
        Tuner(_trainer()).scale_batch_size(Digits(), mode="triple")


def test_lr_find_errors() -> None:
    """No lr attribute names attr_name, no finite loss names min_lr/max_lr/num_training, and an
    unknown mode lists the modes."""

    class NoLr(Digits):
        def __init__(self) -> None:
            super().__init__()
            del self.lr

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(MisconfigurationException, match="attr_name"):
        Tuner(_trainer()).lr_find(NoLr())

    class NanLoss(Digits):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return super().training_step(batch, batch_idx) * float("nan")

    with pytest.raises(MisconfigurationException, match="min_lr=1e-08 and max_lr=1 .num_training=20"):
        Tuner(_trainer()).lr_find(NanLoss(), num_training=20)
    with pytest.raises(MisconfigurationException, match=r"\['linear', 'exponential'\]"):
        Tuner(_trainer()).lr_find(Digits(), mode="cosine")


def test_tuning_works_with_a_profiler(capsys: pytest.CaptureFixture[str]) -> None:
    """With profiler='simple' the trials are not profiled twice: lr_find and scale_batch_size work and
    the following fit's report counts only its own batches."""
    trainer = _trainer(max_epochs=1, profiler="simple", limit_train_batches=5)
    model = Digits(oom_above=64)
    assert Tuner(trainer).lr_find(model, num_training=20) is not None
    assert Tuner(trainer).scale_batch_size(model, max_trials=3) == 8
    capsys.readouterr()
    trainer.fit(model)
    report = capsys.readouterr().out
    assert re.search(r"\|\s+run_training_batch\s+\|\s+[\d.e-]+\s+\|\s+5\s+\|", report)


def test_trials_run_the_training_part_only() -> None:
    """As Lightning's trials (fit_loop.run()), tuning calls no on_fit_start/on_fit_end on the module,
    but on_train_start once per trial."""

    class Counting(Digits):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def on_fit_start(self) -> None:
            self.calls.append("on_fit_start")

        def on_fit_end(self) -> None:
            self.calls.append("on_fit_end")

        def on_train_start(self) -> None:
            self.calls.append("on_train_start")

    model = Counting()
    Tuner(_trainer()).lr_find(model, num_training=20)
    assert model.calls == ["on_train_start"]
