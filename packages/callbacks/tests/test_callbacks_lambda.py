"""LambdaCallback: functions given by keyword are called at their hooks in real fits."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import LambdaCallback
from fulmen_callbacks._lambda import LAMBDA_HOOKS


class Small(LightningModule):
    """A linear regressor with validation and prediction steps."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out: torch.Tensor = self.layer(batch[0])
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader[tuple[torch.Tensor, ...]]:
    return DataLoader(TensorDataset(torch.randn(6, 4), torch.randn(6, 1)), batch_size=2)


def test_given_hooks_run_in_a_fit() -> None:
    """Each function given runs at its hook, with the hook's arguments, in the loops' order."""
    calls: list[tuple[Any, ...]] = []
    callback = LambdaCallback(
        setup=lambda trainer, module, stage: calls.append(("setup", stage)),
        on_fit_start=lambda trainer, module: calls.append(("fit_start", trainer.current_epoch)),
        on_train_batch_end=lambda trainer, module, outputs, batch, idx: calls.append(("batch_end", idx, "loss" in outputs)),
        on_validation_end=lambda trainer, module: calls.append(("val_end", trainer.sanity_checking)),
        on_train_epoch_end=lambda trainer, module: calls.append(("epoch_end", trainer.current_epoch)),
        on_fit_end=lambda trainer, module: calls.append(("fit_end", trainer.global_step)),
    )
    runner = Runner(callbacks=[callback], settings=LoopSettings(max_epochs=2, num_sanity_val_steps=1))
    runner.fit(Small(), _loader(), _loader())
    epoch = [("batch_end", 0, True), ("batch_end", 1, True), ("batch_end", 2, True), ("val_end", False)]
    assert calls == [
        ("setup", "fit"),
        ("fit_start", 0),
        ("val_end", True),
        *epoch,
        ("epoch_end", 0),
        *epoch,
        ("epoch_end", 1),
        ("fit_end", 6),
    ]


def test_predict_and_exception_hooks() -> None:
    """Predict hooks run during predict, and on_exception receives the error that stopped the stage."""
    seen: list[Any] = []
    callback = LambdaCallback(
        on_predict_batch_end=lambda trainer, module, outputs, batch, idx: seen.append(tuple(outputs.shape)),
        on_exception=lambda trainer, module, error: seen.append(str(error)),
    )
    runner = Runner(callbacks=[callback])
    runner.predict(Small(), _loader())
    assert seen == [(2, 1)] * 3

    class Broken(Small):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Runner(callbacks=[callback], settings=LoopSettings(max_epochs=1)).fit(Broken(), _loader())
    assert seen[-1] == "boom"


def test_attribute_is_the_function_given() -> None:
    """As in Lightning, ``callback.<hook>`` is the function passed, and positional arguments follow Lightning's order."""

    def on_fit_start(trainer: Any, module: Any) -> None:
        return None

    def setup(trainer: Any, module: Any, stage: str) -> None:
        return None

    assert LambdaCallback(on_fit_start=on_fit_start).on_fit_start is on_fit_start
    assert LambdaCallback(setup).setup is setup


def test_hooks_not_given_do_nothing() -> None:
    """Every hook not given can be called, with any arguments, and returns None."""
    callback: Callback = LambdaCallback()  # conforms to the Callback Protocol (checked by mypy)
    assert Callback in type(callback).__mro__
    results = [getattr(callback, name)(None, Small(), None, None, 0, 1) for name in LAMBDA_HOOKS]
    assert results == [None] * len(LAMBDA_HOOKS)


def test_unknown_name_suggests_the_hook() -> None:
    """A keyword that is no hook raises a TypeError naming it and the closest hook names."""
    with pytest.raises(TypeError, match=r"'on_trian_start', which is not a callback hook; did you mean 'on_train_start'"):
        LambdaCallback(on_trian_start=lambda trainer, module: None)
    with pytest.raises(TypeError, match="not a callback hook; the hooks are: setup, teardown"):
        LambdaCallback(state_dict=lambda: {})


def test_value_must_be_callable() -> None:
    """A non-callable value raises a TypeError naming the hook."""
    with pytest.raises(TypeError, match=r"LambdaCallback\(on_fit_start=\.\.\.\) got str, which is not callable"):
        LambdaCallback(on_fit_start="print")  # type: ignore[arg-type]  # the wrong value under test


def test_accepts_every_callback_hook() -> None:
    """The keywords are exactly the hooks of the Callback class (its state methods aside), in the signature's order."""
    hooks = {
        name
        for name, member in vars(Callback).items()
        if callable(member) and not name.startswith("_") and name not in ("state_dict", "load_state_dict")
    }
    assert set(LAMBDA_HOOKS) == hooks
    parameters = [p for p in inspect.signature(LambdaCallback).parameters if p != "unknown"]
    assert parameters == list(LAMBDA_HOOKS)
