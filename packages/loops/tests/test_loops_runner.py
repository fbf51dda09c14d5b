"""The Runner and its parts work without the meta-package: callbacks, settings, metric store, custom loops."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule, Loop, MisconfigurationException
from fulmen_loops import CallbackList, LoopSettings, MetricStore, Runner, is_torchmetrics_metric
from torch.utils.data import DataLoader, TensorDataset


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(n: int = 6) -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(n, 2), torch.randn(n, 1)), batch_size=2)


def test_callback_list_dispatches_only_to_overriders() -> None:
    """CallbackList calls a hook on the callbacks overriding it, in order, and skips the rest."""
    calls: list[str] = []

    class A(Callback):
        def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
            calls.append("A")

    class B(Callback):
        pass

    class C(Callback):
        def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
            calls.append("C")

    composite = CallbackList([A(), B(), C()])
    composite.on_fit_start(None, Tiny())
    assert calls == ["A", "C"]
    assert len(composite._on_fit_start) == 2 and composite._on_train_batch_end == ()
    as_callback: Callback = composite  # the composite is itself a callback
    assert len(list(as_callback.state_dict())) == 0


def test_settings_validate_their_values() -> None:
    """LoopSettings rejects out-of-range limits and accumulation with a message naming the flag."""
    with pytest.raises(MisconfigurationException, match="limit_train_batches=1.5"):
        LoopSettings(limit_train_batches=1.5)
    with pytest.raises(MisconfigurationException, match="accumulate_grad_batches=0"):
        LoopSettings(accumulate_grad_batches=0)


def test_runner_fits_with_core_and_loops_only() -> None:
    """A Runner with default pieces trains a module and records epoch metrics."""
    runner = Runner(settings=LoopSettings(max_epochs=2))
    runner.fit(Tiny(), data())
    assert (runner.global_step, runner.current_epoch) == (6, 2)
    assert {"loss", "loss_step", "loss_epoch"} <= set(runner.callback_metrics)


def test_configure_optimizers_set_on_the_instance_is_used() -> None:
    """A configure_optimizers assigned on the instance (as fulmen.cli does) satisfies fit and is called."""

    class NoOptimizer(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

    module = NoOptimizer()
    chosen = torch.optim.Adam(module.parameters(), lr=0.01)
    module.configure_optimizers = lambda: chosen  # type: ignore[method-assign]  # the behaviour under test
    runner = Runner(settings=LoopSettings(max_epochs=1))
    runner.fit(module, data())
    assert runner.optimizers == [chosen] and runner.global_step == 3


def test_a_custom_loop_replaces_the_fit_loop() -> None:
    """Assigning an object with run() to fit_loop changes how fit runs (Loop Protocol)."""

    class CountingLoop:
        def __init__(self, runner: Runner) -> None:
            self.runner = runner
            self.batches = 0

        def run(self) -> None:
            for loader in self.runner.loaders_for("train"):
                for _ in loader:
                    self.batches += 1

    runner = Runner(settings=LoopSettings(max_epochs=1))
    loop = CountingLoop(runner)
    typed: Loop[None] = loop
    runner.fit_loop = typed
    runner.fit(Tiny(), data(8))
    assert loop.batches == 4 and runner.global_step == 0


def test_metric_store_weights_epoch_means_by_batch_size() -> None:
    """An epoch mean is weighted by each batch's size, as in Lightning (0,1,2 over sizes 2,2,1 -> 0.8)."""
    store = MetricStore(training=False)
    store.hook = "validation_step"
    for value, size in ((0.0, 2), (1.0, 2), (2.0, 1)):
        store.set_batch(torch.zeros(size, 1), None)
        store.log("m", torch.tensor(value), prog_bar=False, logger=True, on_step=None, on_epoch=None, reduce_fx="mean",
                  enable_graph=False, sync_dist=False, add_dataloader_idx=True, batch_size=None, rank_zero_only=False)
    logged, _, callback = store.metrics(on_step=False)
    assert logged["m"].item() == pytest.approx(0.8)
    assert callback["m"].dtype == torch.float32


def test_torchmetrics_objects_are_recognised_by_name_only() -> None:
    """A class named Metric from a torchmetrics module is recognised without importing torchmetrics."""
    fake = type("Metric", (), {"__module__": "torchmetrics.metric"})
    sub = type("Accuracy", (fake,), {"__module__": "torchmetrics.classification"})
    assert is_torchmetrics_metric(sub()) and not is_torchmetrics_metric(torch.tensor(1.0))


def test_step_epoch_name_clash_is_refused() -> None:
    """Logging 'loss' per step and epoch and also a metric named 'loss_step' is an error naming both."""
    store = MetricStore(training=True)
    store.hook = "training_step"
    options: dict[str, Any] = dict(prog_bar=False, logger=True, reduce_fx="mean", enable_graph=False,
                                   sync_dist=False, add_dataloader_idx=True, batch_size=1, rank_zero_only=False)
    store.log("loss", torch.tensor(1.0), on_step=True, on_epoch=True, **options)
    with pytest.raises(MisconfigurationException, match="'loss_step'.*clashes with.*'loss'|clashes"):
        store.log("loss_step", torch.tensor(1.0), on_step=True, on_epoch=False, **options)


def test_enable_graph_keeps_the_autograd_graph() -> None:
    """self.log detaches values unless enable_graph=True, which keeps the graph (as in Lightning)."""
    store = MetricStore(training=True)
    store.hook = "training_step"
    weight = torch.ones((), requires_grad=True)
    options: dict[str, Any] = dict(prog_bar=False, logger=True, on_step=True, on_epoch=False, reduce_fx="mean",
                                   sync_dist=False, add_dataloader_idx=True, batch_size=1, rank_zero_only=False)
    store.log("kept", weight * 2, enable_graph=True, **options)
    store.log("detached", weight * 2, enable_graph=False, **options)
    _, _, callback = store.metrics(on_step=True)
    assert callback["kept"].requires_grad and not callback["detached"].requires_grad


def test_run_trial_restores_the_runner() -> None:
    """run_trial trains with its own callbacks and settings from step 0, then the Runner's settings,
    callbacks, loggers, progress and stop flag are as before."""
    steps: list[int] = []

    class Count(Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
            steps.append(trainer.global_step)
            trainer.should_stop = trainer.global_step == 2

    class Trial(Callback):
        def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
            trainer.run_trial([Count()], max_steps=5, num_sanity_val_steps=0)

    user = Trial()
    runner = Runner(callbacks=[user], settings=LoopSettings(max_epochs=1))
    settings = runner.settings
    runner.fit(Tiny(), data(8))
    assert steps == [1, 2]  # the trial counted from zero and honoured its stop request
    assert runner.settings is settings and runner.callbacks == [user]
    assert runner.global_step == 4 and runner.current_epoch == 1 and not runner.should_stop


def test_fit_ended_by_a_callback_is_a_success_with_teardown_and_no_on_exception() -> None:
    """A callback raising FitEnded ends fit at once: fit returns, teardown hooks run, on_exception does not."""
    from fulmen_core import FitEnded

    calls: list[str] = []

    class Ender(Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            calls.append(f"batch {batch_idx}")
            raise FitEnded()

        def on_exception(self, trainer: Any, pl_module: LightningModule, exception: BaseException) -> None:
            calls.append("on_exception")

        def teardown(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
            calls.append(f"teardown {stage}")

    runner = Runner(callbacks=[Ender()], settings=LoopSettings(max_epochs=3))
    runner.fit(Tiny(), data())
    assert calls == ["batch 0", "teardown fit"]
    assert runner.state.status == "finished" and runner.global_step == 1
