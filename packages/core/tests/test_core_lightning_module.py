"""LightningModule (and LightningDataModule) defaults: properties, hooks, optimization helpers."""

from __future__ import annotations

import dataclasses
import types
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import pytest
import torch
from fulmen_core import (
    LightningDataModule,
    LightningModule,
    LRSchedulerConfig,
    MisconfigurationException,
    TrainerView,
)


class Linear(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = self.layer(x)
        return hidden * 2


class TwoLayers(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Linear(3, 3)
        self.second = torch.nn.Linear(3, 3)


class Pair(NamedTuple):
    x: torch.Tensor
    y: Any


@dataclasses.dataclass
class Sample:
    image: torch.Tensor
    label: str


def fake_trainer(**attributes: Any) -> TrainerView:
    """A stand-in Trainer holding only the attributes a test reads."""
    return cast(TrainerView, types.SimpleNamespace(**attributes))


# ---------------------------------------------------------------------- trainer-facing properties


def test_trainer_property_raises_naming_class_when_unattached() -> None:
    """Reading ``trainer`` with no Trainer attached raises RuntimeError naming the module's class."""
    with pytest.raises(RuntimeError, match="Linear is not attached to a Trainer"):
        _ = Linear().trainer


def test_progress_properties_are_zero_when_unattached() -> None:
    """current_epoch, global_step and the ranks are 0 and there are no loggers without a Trainer."""
    model = Linear()
    assert model.current_epoch == 0
    assert model.global_step == 0
    assert model.global_rank == 0
    assert model.local_rank == 0
    assert model.logger is None
    assert model.loggers == []


def test_progress_properties_read_the_attached_trainer() -> None:
    """Once a Trainer is attached, ``trainer``, current_epoch and global_step come from it."""
    model = Linear()
    trainer = fake_trainer(current_epoch=3, global_step=17, global_rank=1, local_rank=1)
    model.trainer = trainer
    assert model.trainer is trainer
    assert (model.current_epoch, model.global_step, model.global_rank, model.local_rank) == (3, 17, 1, 1)
    model.trainer = None
    assert model.current_epoch == 0


def test_automatic_optimization_and_example_input_defaults() -> None:
    """automatic_optimization defaults to True and example_input_array to None; both are settable."""
    model = Linear()
    assert model.automatic_optimization is True
    assert model.example_input_array is None
    model.automatic_optimization = False
    sample = torch.zeros(1, 4)
    model.example_input_array = sample
    assert model.automatic_optimization is False
    assert model.example_input_array is sample


# ---------------------------------------------------------------------- logging and printing


def test_log_unattached_warns_and_drops_value() -> None:
    """``self.log`` without a running Trainer warns (naming the key and class) and does not raise."""
    model = Linear()
    with pytest.warns(UserWarning, match=r"self\.log\('loss'\).*Linear"):
        model.log("loss", torch.tensor(1.0))


def test_log_dict_unattached_warns_for_every_key() -> None:
    """``self.log_dict`` without a Trainer warns once per entry and does not raise."""
    model = Linear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.log_dict({"a": 1.0, "b": 2.0})
    messages = [str(w.message) for w in caught]
    assert any("'a'" in m for m in messages)
    assert any("'b'" in m for m in messages)


def test_print_prints_when_unattached(capsys: pytest.CaptureFixture[str]) -> None:
    """``self.print`` writes to stdout like ``print`` when no Trainer is attached."""
    Linear().print("hello", 3, sep="-")
    assert capsys.readouterr().out == "hello-3\n"


def test_print_is_silent_off_global_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """``self.print`` prints on the global-zero process only."""
    model = Linear()
    model.trainer = fake_trainer(is_global_zero=False)
    model.print("hidden")
    model.trainer = fake_trainer(is_global_zero=True)
    model.print("shown")
    assert capsys.readouterr().out == "shown\n"


# ---------------------------------------------------------------------- device and dtype


def test_device_and_dtype_track_to() -> None:
    """``device`` and ``dtype`` follow ``.to(torch.float64)``, ``.to("cpu")`` and ``.half()``."""
    model = Linear()
    assert model.device == torch.device("cpu")
    assert model.dtype == torch.float32
    assert model.to(torch.float64) is model
    assert model.dtype == torch.float64
    assert model.layer.weight.dtype == torch.float64
    model.to("cpu")
    assert model.device == torch.device("cpu")
    assert model.dtype == torch.float64
    model.half()
    assert model.dtype == torch.float16


def test_device_tracks_meta_device() -> None:
    """Moving the parameters to another device (here ``meta``) updates ``device``."""
    model = Linear().to("meta")
    assert model.device == torch.device("meta")
    assert model.layer.weight.device == torch.device("meta")


def test_dtype_tracks_to_when_first_tensor_is_an_integer_buffer() -> None:
    """``dtype`` follows ``.to(torch.float64)`` even when the module's first tensor is an integer buffer."""

    class Buffers(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("count", torch.zeros(1, dtype=torch.long))
            self.register_buffer("scale", torch.ones(1))

    model = Buffers().to(torch.float64)
    assert model.get_buffer("scale").dtype == torch.float64
    assert model.dtype == torch.float64


# ---------------------------------------------------------------------- freeze, gradients, optimization


def test_freeze_and_unfreeze() -> None:
    """freeze turns off requires_grad and switches to eval; unfreeze reverses both."""
    model = Linear()
    model.freeze()
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    model.unfreeze()
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def _model_with_gradients() -> tuple[Linear, torch.optim.Optimizer, list[torch.Tensor]]:
    model = Linear()
    generator = torch.Generator().manual_seed(0)
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=generator) * 5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    original = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return model, optimizer, original


def _total_norm(model: torch.nn.Module) -> float:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


def test_clip_gradients_by_norm() -> None:
    """Clipping by norm scales all gradients so that their total norm is the clip value."""
    model, optimizer, _ = _model_with_gradients()
    assert _total_norm(model) > 5.0
    model.clip_gradients(optimizer, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    assert _total_norm(model) == pytest.approx(1.0, rel=1e-4)


def test_clip_gradients_defaults_to_norm() -> None:
    """Without an algorithm, clipping is by norm (Lightning's default)."""
    model, optimizer, _ = _model_with_gradients()
    model.clip_gradients(optimizer, gradient_clip_val=0.5)
    assert _total_norm(model) == pytest.approx(0.5, rel=1e-4)


def test_clip_gradients_by_value() -> None:
    """Clipping by value clamps every gradient entry into [-val, val] and keeps smaller entries."""
    model, optimizer, original = _model_with_gradients()
    model.clip_gradients(optimizer, gradient_clip_val=0.5, gradient_clip_algorithm="value")
    clipped = [p.grad for p in model.parameters() if p.grad is not None]
    for before, after in zip(original, clipped):
        assert torch.equal(after, before.clamp(-0.5, 0.5))
    assert max(float(g.abs().max()) for g in clipped) == 0.5


@pytest.mark.parametrize("value", [None, 0, -1.0])
def test_clip_gradients_without_positive_value_is_a_no_op(value: float | None) -> None:
    """A clip value of None or <= 0 leaves the gradients untouched."""
    model, optimizer, original = _model_with_gradients()
    model.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm="norm")
    for before, param in zip(original, model.parameters()):
        assert param.grad is not None and torch.equal(param.grad, before)


def test_clip_gradients_unknown_algorithm_raises() -> None:
    """An unknown clipping algorithm raises ValueError naming it."""
    model, optimizer, _ = _model_with_gradients()
    with pytest.raises(ValueError, match="'median'"):
        model.clip_gradients(optimizer, gradient_clip_val=1.0, gradient_clip_algorithm="median")


def test_configure_gradient_clipping_delegates_to_clip_gradients() -> None:
    """The default configure_gradient_clipping clips with the values it is given."""
    model, optimizer, _ = _model_with_gradients()
    model.configure_gradient_clipping(optimizer, 2.0, "norm")
    assert _total_norm(model) == pytest.approx(2.0, rel=1e-4)


def test_optimizer_step_calls_step_with_closure_once() -> None:
    """The default optimizer_step runs ``optimizer.step(closure)``, which calls the closure exactly once."""
    model = Linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.layer.weight.detach().clone()
    calls: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        output: torch.Tensor = model(torch.ones(2, 4))
        loss = output.sum()
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        calls.append(float(loss.detach()))
        return loss

    model.optimizer_step(epoch=0, batch_idx=0, optimizer=optimizer, optimizer_closure=closure)
    assert len(calls) == 1
    assert not torch.equal(model.layer.weight, before)


def test_optimizer_step_passes_closure_to_step() -> None:
    """optimizer_step hands the very closure it got to ``optimizer.step``."""
    received: list[Callable[[], Any] | None] = []

    class Recording(torch.optim.SGD):
        def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
            received.append(closure)

    model = Linear()

    def closure() -> None:
        return None

    model.optimizer_step(0, 0, Recording(model.parameters(), lr=0.1), closure)
    assert received == [closure]


def test_optimizer_zero_grad_and_backward() -> None:
    """backward fills gradients of the loss and optimizer_zero_grad clears them."""
    model = Linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.backward(model(torch.ones(1, 4)).sum())
    assert model.layer.weight.grad is not None
    assert float(model.layer.weight.grad.abs().sum()) > 0
    model.optimizer_zero_grad(0, 0, optimizer)
    grad = model.layer.weight.grad
    assert grad is None or float(grad.abs().sum()) == 0.0


def test_lr_scheduler_step_with_and_without_metric() -> None:
    """lr_scheduler_step steps a plain scheduler without a metric and ReduceLROnPlateau with it."""
    model = Linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    optimizer.step()  # torch warns when a scheduler steps before its optimizer
    model.lr_scheduler_step(step_lr, None)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.1)
    model.lr_scheduler_step(plateau, 1.0)
    model.lr_scheduler_step(plateau, 2.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_optimizers_and_lr_schedulers_come_from_the_trainer() -> None:
    """optimizers() returns one optimizer alone or several as a list; lr_schedulers() likewise, or None."""
    model = TwoLayers()
    first = torch.optim.SGD(model.first.parameters(), lr=0.1)
    second = torch.optim.SGD(model.second.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(first, step_size=1)
    model.trainer = fake_trainer(optimizers=[first], lr_scheduler_configs=[])
    assert model.optimizers() is first
    assert model.lr_schedulers() is None
    model.trainer = fake_trainer(
        optimizers=[first, second], lr_scheduler_configs=[LRSchedulerConfig(scheduler=scheduler)]
    )
    assert model.optimizers() == [first, second]
    assert model.lr_schedulers() is scheduler


def test_toggle_and_untoggle_optimizer() -> None:
    """toggle_optimizer freezes parameters of the other optimizers; untoggle_optimizer restores them."""
    model = TwoLayers()
    first = torch.optim.SGD(model.first.parameters(), lr=0.1)
    second = torch.optim.SGD(model.second.parameters(), lr=0.1)
    model.trainer = fake_trainer(optimizers=[first, second])
    model.toggle_optimizer(first)
    assert all(p.requires_grad for p in model.first.parameters())
    assert all(not p.requires_grad for p in model.second.parameters())
    model.untoggle_optimizer(first)
    assert all(p.requires_grad for p in model.parameters())


def test_manual_backward_needs_a_trainer() -> None:
    """manual_backward outside a running Trainer raises RuntimeError."""
    with pytest.raises(RuntimeError, match="manual_backward"):
        Linear().manual_backward(torch.tensor(1.0, requires_grad=True))


# ---------------------------------------------------------------------- what to compute


def test_default_training_step_raises_naming_class() -> None:
    """The default training_step raises MisconfigurationException naming the class."""
    with pytest.raises(MisconfigurationException, match="Linear does not define training_step"):
        Linear().training_step(torch.zeros(1, 4), 0)


def test_default_configure_optimizers_raises_naming_class() -> None:
    """The default configure_optimizers raises MisconfigurationException naming the class."""
    with pytest.raises(MisconfigurationException, match="Linear does not define configure_optimizers"):
        Linear().configure_optimizers()


@pytest.mark.parametrize("method", ["train_dataloader", "test_dataloader", "predict_dataloader"])
def test_default_required_dataloaders_raise_naming_class(method: str) -> None:
    """The default train/test/predict dataloader methods raise MisconfigurationException naming the class."""
    with pytest.raises(MisconfigurationException, match=f"Linear has no {method}"):
        getattr(Linear(), method)()


def test_predict_step_default_calls_forward() -> None:
    """The default predict_step returns ``forward(batch)``, with the batch passed positionally or by name."""
    model = Linear()
    batch = torch.ones(2, 4)
    expected = model(batch)
    assert torch.equal(model.predict_step(batch, 0), expected)
    assert torch.equal(model.predict_step(batch=batch, batch_idx=0), expected)


def test_default_forward_is_not_implemented() -> None:
    """A module without ``forward`` raises NotImplementedError when called, as torch.nn.Module does."""
    with pytest.raises(NotImplementedError):
        LightningModule()(torch.zeros(1))


def test_default_evaluation_steps_return_none() -> None:
    """validation_step and test_step default to returning None (nothing to evaluate)."""
    model = Linear()
    assert model.validation_step(torch.zeros(1, 4), 0) is None
    assert model.test_step(torch.zeros(1, 4), 0) is None


def test_default_data_hooks_return_defaults() -> None:
    """configure_callbacks and val_dataloader return empty lists; batch-transfer hooks return the batch itself."""
    model = Linear()
    batch = {"x": torch.zeros(1)}
    assert model.configure_callbacks() == []
    assert model.val_dataloader() == []
    assert model.on_before_batch_transfer(batch, 0) is batch
    assert model.on_after_batch_transfer(batch, 0) is batch


_BATCH = (torch.zeros(1, 4), 0)
_OPT = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
_NO_OP_HOOKS: list[tuple[str, tuple[Any, ...]]] = [
    ("on_fit_start", ()),
    ("on_fit_end", ()),
    ("on_train_start", ()),
    ("on_train_end", ()),
    ("on_validation_start", ()),
    ("on_validation_end", ()),
    ("on_test_start", ()),
    ("on_test_end", ()),
    ("on_predict_start", ()),
    ("on_predict_end", ()),
    ("on_train_batch_start", (_BATCH, 0)),
    ("on_train_batch_end", (torch.tensor(1.0), _BATCH, 0)),
    ("on_validation_batch_start", (_BATCH, 0, 0)),
    ("on_validation_batch_end", (None, _BATCH, 0, 0)),
    ("on_test_batch_start", (_BATCH, 0)),
    ("on_test_batch_end", (None, _BATCH, 0)),
    ("on_predict_batch_start", (_BATCH, 0)),
    ("on_predict_batch_end", (None, _BATCH, 0)),
    ("on_train_epoch_start", ()),
    ("on_train_epoch_end", ()),
    ("on_validation_epoch_start", ()),
    ("on_validation_epoch_end", ()),
    ("on_test_epoch_start", ()),
    ("on_test_epoch_end", ()),
    ("on_predict_epoch_start", ()),
    ("on_predict_epoch_end", ()),
    ("on_before_zero_grad", (_OPT,)),
    ("on_before_backward", (torch.tensor(1.0),)),
    ("on_after_backward", ()),
    ("on_before_optimizer_step", (_OPT,)),
    ("on_save_checkpoint", ({"state_dict": {}},)),
    ("on_load_checkpoint", ({"state_dict": {}},)),
    ("prepare_data", ()),
    ("setup", ("fit",)),
    ("teardown", ("fit",)),
    ("configure_model", ()),
]


@pytest.mark.parametrize(("hook", "args"), _NO_OP_HOOKS, ids=[name for name, _ in _NO_OP_HOOKS])
def test_default_hooks_are_no_ops(hook: str, args: tuple[Any, ...]) -> None:
    """Every default hook returns None and changes neither parameters nor training mode."""
    model = Linear()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    checkpoint_like = [arg for arg in args if isinstance(arg, dict)]
    assert getattr(model, hook)(*args) is None
    assert model.training
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name])
    assert checkpoint_like == [{"state_dict": {}} for _ in checkpoint_like]


def test_model_mode_hooks_switch_train_and_eval() -> None:
    """The *_model_eval hooks switch to eval, the *_model_train hooks back to train, zero_grad drops gradients."""
    model = Linear()
    for evaluate, restore in [
        (model.on_validation_model_eval, model.on_validation_model_train),
        (model.on_test_model_eval, model.on_test_model_train),
    ]:
        evaluate()
        assert not model.training
        restore()
        assert model.training
    model.on_predict_model_eval()
    assert not model.training
    model.layer.weight.grad = torch.ones_like(model.layer.weight)
    model.on_validation_model_zero_grad()
    assert model.layer.weight.grad is None


# ---------------------------------------------------------------------- batch transfer


def _nested_batch() -> dict[str, Any]:
    return {
        "pair": (torch.ones(2), [torch.zeros(3), "text", 7]),
        "named": Pair(x=torch.arange(3), y="label"),
        "sample": Sample(image=torch.full((2, 2), 5.0), label="cat"),
    }


def _check_transferred(moved: dict[str, Any], original: dict[str, Any], device: torch.device) -> None:
    assert type(moved) is dict and set(moved) == set(original)
    pair = moved["pair"]
    assert type(pair) is tuple and type(pair[1]) is list
    assert pair[0].device == device and pair[1][0].device == device
    assert pair[1][1:] == ["text", 7]
    named = moved["named"]
    assert type(named) is Pair and named.x.device == device and named.y == "label"
    sample = moved["sample"]
    assert type(sample) is Sample and sample.image.device == device and sample.label == "cat"
    assert sample is not original["sample"]


def test_transfer_batch_to_device_cpu_keeps_structure_and_values() -> None:
    """The default transfer_batch_to_device keeps nested tuple/list/dict/namedtuple/dataclass types and values."""
    batch = _nested_batch()
    moved = LightningModule().transfer_batch_to_device(batch, torch.device("cpu"), 0)
    _check_transferred(moved, batch, torch.device("cpu"))
    assert moved["pair"][0] is batch["pair"][0]  # CPU to CPU needs no copy
    assert torch.equal(moved["sample"].image, batch["sample"].image)
    assert torch.equal(moved["named"].x, torch.arange(3))


def test_transfer_batch_to_device_moves_every_nested_tensor() -> None:
    """The default transfer_batch_to_device moves every nested tensor to another device (``meta``)."""
    batch = _nested_batch()
    meta = torch.device("meta")
    _check_transferred(LightningModule().transfer_batch_to_device(batch, meta, 0), batch, meta)
    assert batch["pair"][0].device == torch.device("cpu")  # the input batch is left as it was


# ---------------------------------------------------------------------- LightningDataModule defaults


def test_datamodule_defaults() -> None:
    """LightningDataModule starts unattached, has empty state, and its missing loaders raise naming the class."""

    class Data(LightningDataModule):
        pass

    data = Data()
    assert data.trainer is None
    assert data.prepare_data_per_node is True
    assert data.state_dict() == {}
    data.load_state_dict({"ignored": 1})
    assert data.val_dataloader() == []
    for method in ("train_dataloader", "test_dataloader", "predict_dataloader"):
        with pytest.raises(MisconfigurationException, match=f"Data does not define {method}"):
            getattr(data, method)()
    batch = _nested_batch()
    assert data.on_before_batch_transfer(batch, 0) is batch
    _check_transferred(data.transfer_batch_to_device(batch, torch.device("meta"), 0), batch, torch.device("meta"))


def test_jit_scanning_lets_torch_jit_trace_an_unattached_module() -> None:
    """Inside jit_scanning, torch.jit.trace can read every attribute of a module with no Trainer."""
    import torch

    from fulmen_core import LightningModule, jit_scanning

    class Net(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.layer(x)
            return out

    net = Net()
    with jit_scanning(net):
        traced = torch.jit.trace(net, torch.ones(1, 2))  # type: ignore[no-untyped-call]  # unannotated in torch
    assert torch.equal(traced(torch.ones(1, 2)), net(torch.ones(1, 2)))
    assert net._jit_is_scripting is False
