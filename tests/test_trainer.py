"""fulmen.Trainer end to end: flags, stages, results and the errors bad input gets."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen_core import MisconfigurationException


def loader(n: int = 8, batch_size: int = 2, seed: int = 0, shuffle: bool = False) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g)), batch_size=batch_size, shuffle=shuffle)


class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(3, 1)
        self.seen_training_flags: list[bool] = []
        self.grad_enabled_in_eval: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        self.seen_training_flags.append(self.training)
        self.grad_enabled_in_eval.append(torch.is_grad_enabled())
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.forward(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def trainer(**flags: Any) -> L.Trainer:
    settings: dict[str, Any] = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    settings.update(flags)
    return L.Trainer(**settings)


def test_unknown_flag_names_the_valid_ones() -> None:
    """A misspelt Trainer flag raises a TypeError that suggests the right name and lists all flags."""
    with pytest.raises(TypeError, match=r"'max_epoch' \(did you mean 'max_epochs'\?\).*limit_train_batches"):
        L.Trainer(max_epoch=3)  # type: ignore[arg-type]  # the misspelling is the point of the test


def test_unknown_accelerator_lists_known_names() -> None:
    """An accelerator name nobody registered is an error listing the registered ones."""
    with pytest.raises(ValueError, match=r"unknown accelerator 'tpu-x'.*'cpu'"):
        L.Trainer(accelerator="tpu-x")


def test_auto_accelerator_on_this_machine_is_cpu() -> None:
    """accelerator='auto' picks the CPU when no other registered device is available."""
    assert L.Trainer(accelerator="auto", max_epochs=1).accelerator.name == "cpu"  # type: ignore[union-attr]


def test_devices_beyond_the_machine_are_rejected() -> None:
    """devices=[0, 1] on one device, and devices=0, are clear errors."""
    with pytest.raises(MisconfigurationException, match="devices"):
        L.Trainer(devices=0, max_epochs=1)


def test_plain_class_accelerator_instance_trains() -> None:
    """An accelerator written as a plain class (no subclassing) is accepted by instance and used."""

    class HostDevice:
        name = "host-sim"
        autocast_device_type = "cpu"
        distributed_backend = "gloo"
        supported_precisions = frozenset({"32-true"})

        def __init__(self) -> None:
            self.setups: list[torch.device] = []

        def is_available(self) -> bool:
            return True

        def device_count(self) -> int:
            return 1

        def get_device(self, index: int) -> torch.device:
            return torch.device("cpu")

        def setup_device(self, device: torch.device) -> None:
            self.setups.append(device)

        def teardown(self) -> None:
            pass

    device = HostDevice()
    t = trainer(accelerator=device, max_epochs=1)
    t.fit(Regressor(), loader())
    assert device.setups == [torch.device("cpu")]
    assert t.global_step == 4


def test_precision_the_device_cannot_do_is_rejected() -> None:
    """Asking for a precision the accelerator does not list is an error naming what it supports."""
    with pytest.raises(MisconfigurationException, match="'16-true' is not supported by the 'cpu'"):
        L.Trainer(precision="16-true", max_epochs=1)


def test_fit_counts_steps_and_epochs_like_lightning() -> None:
    """fit(max_epochs=2) over 4 batches ends with global_step 8 and current_epoch 2."""
    t = trainer(max_epochs=2)
    t.fit(Regressor(), loader(), loader(seed=1))
    assert (t.global_step, t.current_epoch) == (8, 2)
    assert set(t.callback_metrics) == {"train_loss", "val_loss"}


def test_evaluation_runs_in_eval_mode_without_grad_and_restores_train_mode() -> None:
    """Validation sees eval mode and inference mode; training mode is restored afterwards."""
    model = Regressor()
    t = trainer(max_epochs=1, num_sanity_val_steps=0)
    t.fit(model, loader(), loader(seed=1))
    assert model.seen_training_flags and not any(model.seen_training_flags)
    assert not any(model.grad_enabled_in_eval)
    assert model.training


def test_validate_and_test_return_float_dicts() -> None:
    """validate() and test() return one dict of floats per dataloader."""
    model = Regressor()
    t = trainer(max_epochs=1)
    results = t.validate(model, loader(seed=1))
    assert list(results[0]) == ["val_loss"] and isinstance(results[0]["val_loss"], float)
    two = t.test(model, [loader(seed=1), loader(seed=2)])
    assert [list(r) for r in two] == [["test_loss/dataloader_idx_0"], ["test_loss/dataloader_idx_1"]]


def test_predict_returns_per_batch_outputs() -> None:
    """predict() returns the output of every batch, in order."""
    model = Regressor()
    outputs = trainer().predict(model, loader(n=6, batch_size=4))
    assert outputs is not None
    assert [tuple(o.shape) for o in outputs] == [(4, 1), (2, 1)]


def test_limits_and_fast_dev_run() -> None:
    """limit_train_batches, limit_val_batches and fast_dev_run bound the batches as in Lightning."""
    t = trainer(max_epochs=1, limit_train_batches=0.5, limit_val_batches=1)
    t.fit(Regressor(), loader(), loader(seed=1))
    assert (t.num_training_batches, t.num_val_batches, t.global_step) == (2, [1], 2)
    fast = trainer(fast_dev_run=True)
    fast.fit(Regressor(), loader(), loader(seed=1))
    assert (fast.global_step, fast.current_epoch, fast.max_steps) == (1, 1, 1)


def test_max_steps_stops_mid_epoch() -> None:
    """max_steps ends training at that many optimizer steps, even mid-epoch."""
    t = trainer(max_steps=3, num_sanity_val_steps=0)
    t.fit(Regressor(), loader())
    assert t.global_step == 3
    assert t.max_epochs == -1


def test_should_stop_ends_training_after_the_epoch() -> None:
    """Setting trainer.should_stop in a callback stops fit at the end of that epoch."""

    class Stop(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer.should_stop = True

    t = trainer(max_epochs=5, callbacks=[Stop()])
    t.fit(Regressor(), loader())
    assert t.current_epoch == 1


def test_accumulation_equals_a_manual_loop() -> None:
    """accumulate_grad_batches=2 gives the weights of a hand-written loop that averages two batches' gradients."""
    torch.manual_seed(0)
    model = Regressor()
    reference = Regressor()
    reference.load_state_dict(model.state_dict())
    trainer(max_epochs=1, accumulate_grad_batches=2).fit(model, loader())
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for index, (x, y) in enumerate(loader()):
        torch.autograd.backward(torch.nn.functional.mse_loss(reference(x), y) / 2)
        if index % 2 == 1:
            optimizer.step()
            optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_gradient_clipping_by_norm_bounds_the_step() -> None:
    """gradient_clip_val clips the gradient norm before the optimizer steps."""
    norms: list[float] = []

    class Probe(Regressor):
        def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: int | float | None = None, gradient_clip_algorithm: str | None = None) -> None:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
            grads = [p.grad for p in self.parameters() if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    big = DataLoader(TensorDataset(torch.full((4, 3), 100.0), torch.zeros(4, 1)), batch_size=2)
    trainer(max_epochs=1, gradient_clip_val=0.01).fit(Probe(), big)
    assert norms and all(n <= 0.01 + 1e-6 for n in norms)


def test_training_step_returning_none_skips_the_batch() -> None:
    """A training_step that returns None skips backward (with a warning) but still counts the step."""

    class Skip(Regressor):
        def training_step(self, batch: Any, batch_idx: int) -> None:  # type: ignore[override]  # returning None is the point
            return None

    model = Skip()
    before = [p.clone() for p in model.parameters()]
    t = trainer(max_epochs=1)
    with pytest.warns(UserWarning, match="returned `None`"):
        t.fit(model, loader())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert t.global_step == 4


def test_datamodule_supplies_the_data() -> None:
    """fit(datamodule=...) takes its dataloaders and calls setup with the stage."""

    class Data(L.LightningDataModule):
        def __init__(self) -> None:
            super().__init__()
            self.stages: list[str] = []

        def setup(self, stage: str) -> None:
            self.stages.append(stage)

        def train_dataloader(self) -> DataLoader[Any]:
            return loader()

        def val_dataloader(self) -> DataLoader[Any]:
            return loader(seed=1)

    data = Data()
    t = trainer(max_epochs=1)
    t.fit(Regressor(), datamodule=data)
    t.validate(Regressor(), datamodule=data)
    assert data.stages == ["fit", "validate"]
    assert t.datamodule is data


def test_missing_training_step_is_a_clear_error() -> None:
    """fit on a module without training_step names the missing method."""

    class NoStep(L.LightningModule):
        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)

    with pytest.raises(MisconfigurationException, match="NoStep has no training_step"):
        trainer(max_epochs=1).fit(NoStep(), loader())


def test_missing_configure_optimizers_is_a_clear_error() -> None:
    """fit on a module without configure_optimizers names the missing method and the fix."""

    class NoOptim(L.LightningModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return torch.zeros((), requires_grad=True)

    with pytest.raises(MisconfigurationException, match="NoOptim has no configure_optimizers"):
        trainer(max_epochs=1).fit(NoOptim(), loader())


@pytest.mark.parametrize("returned", [5, "adam", ["not", "an", "optimizer"]])
def test_unsupported_configure_optimizers_return_is_a_clear_error(returned: Any) -> None:
    """An unsupported configure_optimizers return names what was found and the accepted shapes."""

    class Odd(Regressor):
        def configure_optimizers(self) -> Any:
            return returned

    with pytest.raises(MisconfigurationException, match="configure_optimizers returned .* must return one of"):
        trainer(max_epochs=1).fit(Odd(), loader())


def test_empty_training_dataloader_is_a_clear_error() -> None:
    """A training dataloader with no batches is an error, not a silent no-op (Lightning only logs it)."""
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1)), batch_size=2)
    with pytest.raises(MisconfigurationException, match="training dataloader has no batches"):
        trainer(max_epochs=1).fit(Regressor(), empty)


def test_logging_a_non_scalar_is_a_clear_error() -> None:
    """self.log of a tensor with several elements names the metric and the fix."""

    class Vector(Regressor):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.log("vec", torch.ones(3))
            return super().training_step(batch, batch_idx)

    with pytest.raises(ValueError, match="self.log\\('vec'.*single element"):
        trainer(max_epochs=1).fit(Vector(), loader())


def test_logging_from_a_forbidden_hook_is_a_clear_error() -> None:
    """self.log in on_fit_start is refused, naming the hook."""

    class Early(Regressor):
        def on_fit_start(self) -> None:
            self.log("x", 1.0)

    with pytest.raises(MisconfigurationException, match="inside `on_fit_start`"):
        trainer(max_epochs=1).fit(Early(), loader())


def test_estimated_stepping_batches() -> None:
    """estimated_stepping_batches is epochs x ceil(batches / accumulation), capped by max_steps."""
    t = trainer(max_epochs=3, accumulate_grad_batches=3)
    t.fit(Regressor(), loader())
    assert t.estimated_stepping_batches == 3 * math.ceil(4 / 3)


def test_trainer_satisfies_the_trainer_view_protocol() -> None:
    """fulmen.Trainer is a TrainerView (checked statically by mypy --strict on this file)."""
    from fulmen_core import TrainerView

    view: TrainerView = trainer(max_epochs=1)
    assert view.accumulate_grad_batches == 1 and view.val_check_interval == 1.0


def test_barebones_turns_logging_and_sanity_checks_off() -> None:
    """barebones=True adds no callbacks or loggers, skips the sanity check and makes self.log a warned no-op."""
    model = Regressor()
    t = L.Trainer(barebones=True, max_epochs=1)
    assert t.callbacks == [] and t.loggers == [] and t.num_sanity_val_steps == 0
    with pytest.warns(UserWarning, match="barebones"):
        t.fit(model, loader(), loader(seed=1))
    assert t.callback_metrics == {}
    with pytest.raises(MisconfigurationException, match="num_sanity_val_steps"):
        L.Trainer(barebones=True, num_sanity_val_steps=2)


def test_default_callbacks_and_checkpoint_callback(tmp_path: Any) -> None:
    """The defaults add a model summary, a progress bar and a ModelCheckpoint; without one, checkpoint_callback explains."""
    from fulmen.callbacks import ModelCheckpoint, ModelSummary, TQDMProgressBar

    t = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False)
    kinds = [type(c) for c in t.callbacks]
    assert kinds == [ModelSummary, TQDMProgressBar, ModelCheckpoint]
    assert t.checkpoint_callback is t.callbacks[-1] and t.progress_bar_callback is t.callbacks[1]
    quiet = trainer(max_epochs=1)
    with pytest.raises(MisconfigurationException, match="no ModelCheckpoint"):
        _ = quiet.checkpoint_callback
    with pytest.raises(MisconfigurationException, match="enable_checkpointing=False"):
        L.Trainer(enable_checkpointing=False, callbacks=[ModelCheckpoint()])


def test_max_time_stops_training() -> None:
    """max_time bounds the fit's duration: with no time at all, training stops after its first step."""
    import datetime

    t = trainer(max_epochs=5, max_time=datetime.timedelta(0), num_sanity_val_steps=0)
    t.fit(Regressor(), loader())
    assert t.global_step == 1 and t.current_epoch == 1


def test_max_time_string_is_parsed() -> None:
    """max_time='DD:HH:MM:SS' and a dict both become a timedelta; a malformed string names the format."""
    import datetime

    assert trainer(max_time="00:01:30:00").settings.max_time == datetime.timedelta(hours=1, minutes=30)
    assert trainer(max_time={"minutes": 2}).settings.max_time == datetime.timedelta(minutes=2)
    with pytest.raises(MisconfigurationException, match="DD:HH:MM:SS"):
        trainer(max_time="90 minutes")


def test_detect_anomaly_reports_the_nan_producing_operation() -> None:
    """detect_anomaly=True turns a NaN gradient into an error naming the backward function."""

    class Nan(Regressor):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, _ = batch
            return torch.sqrt(self(x) - 1e6).sum()

    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        trainer(max_epochs=1, detect_anomaly=True).fit(Nan(), loader())


def test_deterministic_switches_torch_to_deterministic_algorithms() -> None:
    """deterministic=True enables torch's deterministic algorithms (and 'warn' only warns)."""
    try:
        trainer(deterministic=True, max_epochs=1)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        trainer(deterministic="warn", max_epochs=1)
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_predict_with_several_dataloaders_returns_a_list_per_dataloader() -> None:
    """predict over two dataloaders returns one list of batch outputs for each."""

    class TwoLoaders(Regressor):
        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
            return self.forward(batch[0]) + 100 * dataloader_idx

    outputs = trainer().predict(TwoLoaders(), [loader(n=4), loader(n=6)])
    assert outputs is not None and [len(o) for o in outputs] == [2, 3]
    assert bool((outputs[1][0] > 50).all()) and bool((outputs[0][0] < 50).all())


def test_export_callback_exports_the_best_checkpoint_at_fit_end(tmp_path: Any) -> None:
    """ExportCallback with a real Trainer and ModelCheckpoint writes a verified torch.export artifact at fit end."""
    from fulmen.callbacks import ExportCallback, ModelCheckpoint

    class WithSample(Regressor):
        def __init__(self) -> None:
            super().__init__()
            self.example_input_array = torch.randn(2, 3)

    export_path = tmp_path / "best.pt2"
    t = L.Trainer(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                  enable_model_summary=False,
                  callbacks=[ModelCheckpoint(monitor="val_loss"), ExportCallback("pt2", dirpath=tmp_path, filename="best.pt2")])
    t.fit(WithSample(), loader(), loader(seed=1))
    assert export_path.is_file()
    program = torch.export.load(str(export_path))
    assert program.module()(torch.randn(5, 3)).shape == (5, 1)


def test_validate_prints_lightnings_results_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """validate(verbose=True) prints the metric table Lightning prints (rows sorted, one column per dataloader); verbose=False prints nothing."""
    monkeypatch.setenv("COLUMNS", "80")
    model = Regressor()
    t = trainer()
    t.validate(model, [loader(seed=1), loader(seed=2)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "\u2500" * 80 and lines[2] == "\u2500" * 80
    assert lines[1] == "     Validate metric           DataLoader 0             DataLoader 1"
    assert lines[3].startswith("        val_loss      ")
    t.validate(model, loader(seed=1), verbose=False)
    assert capsys.readouterr().out == ""


def test_missing_max_epochs_is_warned_when_fit_starts_not_before() -> None:
    """As in Lightning, the 1000-epoch default is announced by fit, not by building the Trainer or validating."""
    import warnings

    class StopsAtOnce(Regressor):
        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.trainer.should_stop = True

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built = trainer(accelerator="cpu")
        built.validate(Regressor(), loader(), verbose=False)
    with pytest.warns(UserWarning, match="max_epochs was not set; training runs for 1000 epochs"):
        built.fit(StopsAtOnce(), loader())
    assert built.current_epoch == 1


def test_each_stage_call_uses_the_dataloaders_it_was_given() -> None:
    """As in Lightning, a second validate/test call runs the new dataloaders, not the first call's."""

    class BatchSize(Regressor):
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.log("size", float(batch[0].shape[0]))

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            self.log("size", float(batch[0].shape[0]))

    built = trainer(accelerator="cpu", max_epochs=1)
    model = BatchSize()
    for run in (built.validate, built.test):
        assert run(model, loader(batch_size=2), verbose=False)[0]["size"] == 2.0
        assert run(model, loader(batch_size=4), verbose=False)[0]["size"] == 4.0
    built.fit(model, loader(batch_size=2), loader(batch_size=4))
    assert built.validate(model, loader(batch_size=8), verbose=False)[0]["size"] == 8.0


def test_dataloader_properties_hold_the_loaders_last_asked_for() -> None:
    """trainer.val_dataloaders / test_dataloaders / predict_dataloaders are the loaders of the last such
    stage (a list when there are several), None before any, as in Lightning."""
    built = trainer(accelerator="cpu", max_epochs=1)
    assert built.val_dataloaders is None and built.train_dataloader is None
    first, second = loader(), loader(batch_size=4)
    built.validate(Regressor(), first, verbose=False)
    assert built.val_dataloaders is first
    built.test(Regressor(), [first, second], verbose=False)
    assert built.test_dataloaders == [first, second]
    built.predict(Regressor(), second)
    assert built.predict_dataloaders is second
    built.fit(Regressor(), first)
    assert built.train_dataloader is first
