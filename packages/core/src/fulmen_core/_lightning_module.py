"""``LightningModule``: the class users subclass to say what to compute."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Mapping, Sequence
import os
from typing import TYPE_CHECKING, Any, Callable, Union

import torch
from torch.optim import Optimizer
from typing_extensions import Self

from fulmen_core._checkpoint import CheckpointError, constructor_arguments, load_checkpoint_file
from fulmen_core._collections import apply_to_tensors, move_data_to_device
from fulmen_core._exceptions import MisconfigurationException
from fulmen_core._hparams import HyperparametersMixin
from fulmen_core._onnx import OnnxExportMixin
from fulmen_core._optimizer import LightningOptimizer
from fulmen_core._trainer import ModuleHost, TrainerView
from fulmen_core._types import STEP_OUTPUT, OptimizerLRScheduler

if TYPE_CHECKING:
    from fulmen_core._callback import Callback
    from fulmen_core._logger import Logger

_REDUCE_FX = Union[str, Callable[..., Any]]


class LightningModule(torch.nn.Module, HyperparametersMixin, OnnxExportMixin):
    """A ``torch.nn.Module`` that also says how to train, evaluate and predict with itself.

    Override ``training_step`` and ``configure_optimizers`` at least; every ``on_*`` hook is a no-op
    until overridden. The Trainer attaches itself while a stage runs (``self.trainer``).
    """

    # torch.jit skips these when it scans the module (tracing for a graph or an export): they
    # describe the run, not the computation, and `trainer` raises when none is attached.
    __jit_unused_properties__: list[str] = [
        "trainer",
        "automatic_optimization",
        "example_input_array",
        "current_epoch",
        "global_step",
        "global_rank",
        "local_rank",
        "logger",
        "loggers",
        "device",
        "dtype",
        "hparams",
        "hparams_initial",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: TrainerView | None = None
        self._host: ModuleHost | None = None
        self._jit_is_scripting = False
        self._lightning_optimizers: list[LightningOptimizer] = []
        self._automatic_optimization: bool = True
        self._example_input_array: Any = None
        self._device: torch.device = torch.device("cpu")
        self._dtype: torch.dtype = torch.get_default_dtype()

    # ------------------------------------------------------------------ trainer-facing properties

    @property
    def trainer(self) -> TrainerView:
        """The Trainer running this module; an error when none is attached."""
        if self._trainer is None and not self._jit_is_scripting:
            raise RuntimeError(
                f"{type(self).__qualname__} is not attached to a Trainer: pass it to "
                "trainer.fit/validate/test/predict before reading `self.trainer`"
            )
        return self._trainer  # type: ignore[return-value]  # None only while torch.jit scans the module

    @trainer.setter
    def trainer(self, trainer: TrainerView | None) -> None:
        self._trainer = trainer

    @property
    def automatic_optimization(self) -> bool:
        """Whether the Trainer runs backward and the optimizer step (``False``: you do, manually)."""
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_optimization = value

    @property
    def example_input_array(self) -> Any:
        """An input sample for ``forward``, used by the model summary and exporters."""
        return self._example_input_array

    @example_input_array.setter
    def example_input_array(self, example: Any) -> None:
        self._example_input_array = example

    @property
    def current_epoch(self) -> int:
        """The Trainer's current epoch, or 0 when not attached."""
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        """The number of optimizer steps taken so far, or 0 when not attached."""
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def global_rank(self) -> int:
        """This process's rank among all processes."""
        return self._trainer.global_rank if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its node."""
        return self._trainer.local_rank if self._trainer is not None else 0

    @property
    def logger(self) -> Logger | None:
        """The Trainer's first logger, if any."""
        return self._trainer.logger if self._trainer is not None else None

    @property
    def loggers(self) -> list[Logger]:
        """Every logger of the Trainer."""
        return self._trainer.loggers if self._trainer is not None else []

    @property
    def device(self) -> torch.device:
        """The device the module's parameters are on."""
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point dtype of the module's parameters."""
        return self._dtype

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Any:
        # Every .to/.cuda/.cpu/.double goes through _apply: track device and dtype once here,
        # so `self.device` is an attribute read rather than a walk over the parameters.
        result = super()._apply(fn, recurse)  # type: ignore[no-untyped-call]  # torch leaves _apply unannotated
        device_found = False
        for tensor in self._first_tensors():
            if not device_found:
                self._device = tensor.device
                device_found = True
            if tensor.is_floating_point():
                self._dtype = tensor.dtype
                break
        return result

    def _first_tensors(self) -> Iterator[torch.Tensor]:
        yield from self.parameters()
        yield from self.buffers()

    # ------------------------------------------------------------------ logging

    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: _REDUCE_FX = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Record a scalar (number, one-element tensor or torchmetrics ``Metric``) under ``name``.

        Defaults follow Lightning: in ``training_step`` and the training batch hooks a value is
        logged per step; in evaluation steps and every epoch hook, aggregated per epoch with
        ``reduce_fx`` (a batch-size-weighted mean by default).
        """
        host = self._host
        if host is None:
            import warnings

            warnings.warn(
                f"self.log({name!r}) was called while {type(self).__qualname__} is not run by a "
                "Trainer; the value is dropped",
                stacklevel=2,
            )
            return
        host.log(
            name,
            value,
            prog_bar=prog_bar,
            logger=logger,
            on_step=on_step,
            on_epoch=on_epoch,
            reduce_fx=reduce_fx,
            enable_graph=enable_graph,
            sync_dist=sync_dist,
            add_dataloader_idx=add_dataloader_idx,
            batch_size=batch_size,
            rank_zero_only=rank_zero_only,
        )

    def log_dict(
        self,
        dictionary: Mapping[str, Any],
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: _REDUCE_FX = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Call :meth:`log` for each entry of ``dictionary`` with the same options."""
        for name, value in dictionary.items():
            self.log(
                name,
                value,
                prog_bar=prog_bar,
                logger=logger,
                on_step=on_step,
                on_epoch=on_epoch,
                reduce_fx=reduce_fx,
                enable_graph=enable_graph,
                sync_dist=sync_dist,
                sync_dist_group=sync_dist_group,
                add_dataloader_idx=add_dataloader_idx,
                batch_size=batch_size,
                rank_zero_only=rank_zero_only,
            )

    def all_gather(self, data: Any, group: Any | None = None, sync_grads: bool = False) -> Any:
        """Every tensor in ``data`` gathered from all processes (stacked on a new first dimension);
        with one process, ``data`` as it is."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return data
        return apply_to_tensors(data, trainer.all_gather)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """``print`` on the global-zero process only, so multi-process runs do not repeat lines."""
        if self._trainer is None or self._trainer.is_global_zero:
            builtins.print(*args, **kwargs)

    # ------------------------------------------------------------------ optimization

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizers from ``configure_optimizers``: one alone, several as a list.

        With ``use_pl_optimizer=True`` (the default) they are :class:`LightningOptimizer` wrappers
        whose ``step()`` runs the Trainer's pre-step hooks and precision and counts the step, as
        manual optimization needs. (Typed ``Any`` because whether one or a list comes back depends on
        what ``configure_optimizers`` returned.)
        """
        found: list[Any] = list(self.trainer.optimizers)
        if use_pl_optimizer and self._host is not None:
            cached = self._lightning_optimizers
            if [o.optimizer for o in cached] != found:
                cached = [LightningOptimizer(o, self._host) for o in found]
                self._lightning_optimizers = cached
            found = list(cached)
        return found[0] if len(found) == 1 else found

    def lr_schedulers(self) -> Any:
        """The schedulers from ``configure_optimizers``: ``None``, one alone, or several as a list."""
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return None
        schedulers = [config.scheduler for config in configs]
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward for manual optimization, through the precision in use (e.g. loss scaling)."""
        if self._host is None:
            raise RuntimeError(
                "manual_backward needs a running Trainer; call it from training_step"
            )
        if self._automatic_optimization:
            raise MisconfigurationException(
                "manual_backward is for manual optimization; set self.automatic_optimization = False "
                f"in {type(self).__qualname__}.__init__, or return the loss from training_step"
            )
        self._host.manual_backward(loss, *args, **kwargs)

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Compute gradients of ``loss``; override to customise (e.g. ``retain_graph``)."""
        loss.backward(*args, **kwargs)  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Step ``optimizer``; the closure runs ``training_step``, ``zero_grad`` and backward."""
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Optimizer) -> None:
        """Reset the gradients of ``optimizer``'s parameters."""
        optimizer.zero_grad()

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip gradients before the optimizer steps, with the Trainer's settings by default."""
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def clip_gradients(
        self,
        optimizer: Optimizer,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients of ``optimizer``'s parameters by norm (default) or by value."""
        if gradient_clip_val is None or gradient_clip_val <= 0:
            return
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        algorithm = gradient_clip_algorithm or "norm"
        if algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(parameters, float(gradient_clip_val))
        elif algorithm == "value":
            torch.nn.utils.clip_grad_value_(parameters, float(gradient_clip_val))
        else:
            raise ValueError(
                f"gradient_clip_algorithm={algorithm!r} is not supported; use 'norm' or 'value'"
            )

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step a learning-rate scheduler (with ``metric`` for ReduceLROnPlateau)."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def toggle_optimizer(self, optimizer: Optimizer) -> None:
        """Let only ``optimizer``'s parameters require gradients (for several optimizers)."""
        own = {id(p) for group in optimizer.param_groups for p in group["params"]}
        saved: dict[int, bool] = {}
        for other in self.trainer.optimizers:
            for group in other.param_groups:
                for param in group["params"]:
                    if id(param) not in own and id(param) not in saved:
                        saved[id(param)] = param.requires_grad
                        param.requires_grad = False
        for group in optimizer.param_groups:
            for param in group["params"]:
                saved.setdefault(id(param), param.requires_grad)
        self._toggled_requires_grad = saved

    def untoggle_optimizer(self, optimizer: Optimizer) -> None:
        """Restore the ``requires_grad`` flags that :meth:`toggle_optimizer` changed."""
        saved: dict[int, bool] = getattr(self, "_toggled_requires_grad", {})
        for other in self.trainer.optimizers:
            for group in other.param_groups:
                for param in group["params"]:
                    if id(param) in saved:
                        param.requires_grad = saved[id(param)]
        self._toggled_requires_grad = {}

    # ------------------------------------------------------------------ what to compute

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Same as ``torch.nn.Module.forward``; override it to use the module for inference."""
        return super().forward(*args, **kwargs)

    def training_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Compute and return the training loss of one batch (a tensor, a dict with "loss",
        or None to skip the batch)."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} does not define training_step(self, batch, batch_idx); "
            "the Trainer needs it to fit"
        )

    def validation_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Evaluate one validation batch; log metrics with ``self.log``."""
        return None

    def test_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Evaluate one test batch; log metrics with ``self.log``."""
        return None

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """Return the prediction for one batch; by default ``self(batch)``."""
        batch = kwargs.get("batch", args[0] if args else None)
        return self(batch)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        """Return the optimizer(s), optionally with learning-rate scheduler(s)."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} does not define configure_optimizers(self); "
            "return e.g. torch.optim.Adam(self.parameters()) from it"
        )

    def configure_callbacks(self) -> Sequence[Callback] | Callback:
        """Callbacks this module needs; they replace Trainer callbacks of the same type."""
        return []

    def configure_model(self) -> None:
        """Create layers here to build them directly on the target device (and sharded)."""
        return None

    # ------------------------------------------------------------------ hooks (no-op defaults)

    def on_fit_start(self) -> None:
        """Called when fit begins."""

    def on_fit_end(self) -> None:
        """Called when fit ends."""

    def on_train_start(self) -> None:
        """Called when training begins, after the sanity check."""

    def on_train_end(self) -> None:
        """Called when training ends."""

    def on_validation_start(self) -> None:
        """Called when a validation loop begins."""

    def on_validation_end(self) -> None:
        """Called when a validation loop ends."""

    def on_test_start(self) -> None:
        """Called when the test loop begins."""

    def on_test_end(self) -> None:
        """Called when the test loop ends."""

    def on_predict_start(self) -> None:
        """Called when the predict loop begins."""

    def on_predict_end(self) -> None:
        """Called when the predict loop ends."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Called before a training batch; return -1 to skip the rest of the epoch."""
        return None

    def on_train_batch_end(self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int) -> None:
        """Called after a training batch with what ``training_step`` returned."""

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before a validation batch."""

    def on_validation_batch_end(
        self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Called after a validation batch."""

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before a test batch."""

    def on_test_batch_end(
        self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Called after a test batch."""

    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Called before a predict batch."""

    def on_predict_batch_end(
        self, outputs: Any | None, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Called after a predict batch."""

    def on_validation_model_zero_grad(self) -> None:
        """Called when validation starts inside fit; clears gradients so evaluation holds none."""
        self.zero_grad(set_to_none=True)

    def on_validation_model_eval(self) -> None:
        """Put the module in evaluation mode for validation."""
        self.eval()

    def on_validation_model_train(self) -> None:
        """Put the module back in training mode after validation inside fit."""
        self.train()

    def on_test_model_eval(self) -> None:
        """Put the module in evaluation mode for testing."""
        self.eval()

    def on_test_model_train(self) -> None:
        """Restore training mode after testing."""
        self.train()

    def on_predict_model_eval(self) -> None:
        """Put the module in evaluation mode for prediction."""
        self.eval()

    def on_train_epoch_start(self) -> None:
        """Called when a training epoch begins."""

    def on_train_epoch_end(self) -> None:
        """Called when a training epoch ends, after that epoch's validation."""

    def on_validation_epoch_start(self) -> None:
        """Called when a validation epoch begins."""

    def on_validation_epoch_end(self) -> None:
        """Called when a validation epoch ends."""

    def on_test_epoch_start(self) -> None:
        """Called when a test epoch begins."""

    def on_test_epoch_end(self) -> None:
        """Called when a test epoch ends."""

    def on_predict_epoch_start(self) -> None:
        """Called when a predict epoch begins."""

    def on_predict_epoch_end(self) -> None:
        """Called when a predict epoch ends."""

    def on_before_zero_grad(self, optimizer: Optimizer) -> None:
        """Called before ``optimizer.zero_grad()``."""

    def on_before_backward(self, loss: torch.Tensor) -> None:
        """Called before ``loss.backward()``."""

    def on_after_backward(self) -> None:
        """Called after ``loss.backward()``, before the optimizer steps."""

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Called before ``optimizer.step()``, after gradients are unscaled."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when a checkpoint is saved; add entries to ``checkpoint`` here."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Called when a checkpoint is loaded, before the state is restored."""

    # ------------------------------------------------------------------ data hooks

    def prepare_data(self) -> None:
        """Download or write data once per node (no state: runs on one process only)."""

    def setup(self, stage: str) -> None:
        """Build what each process needs for ``stage`` ("fit", "validate", "test", "predict")."""

    def teardown(self, stage: str) -> None:
        """Release what :meth:`setup` built."""

    def train_dataloader(self) -> Any:
        """The training data, when no dataloader or datamodule is passed to ``fit``."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} has no train_dataloader(); pass train_dataloaders= or a "
            "datamodule to fit"
        )

    def val_dataloader(self) -> Any:
        """The validation data (optional)."""
        return []

    def test_dataloader(self) -> Any:
        """The test data, when none is passed to ``test``."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} has no test_dataloader(); pass dataloaders= or a "
            "datamodule to test"
        )

    def predict_dataloader(self) -> Any:
        """The data to predict on, when none is passed to ``predict``."""
        raise MisconfigurationException(
            f"{type(self).__qualname__} has no predict_dataloader(); pass dataloaders= or a "
            "datamodule to predict"
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move ``batch`` to ``device``; override for custom batch types."""
        return move_data_to_device(batch, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch before it moves to the device."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Alter a batch after it moved to the device."""
        return batch

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike[str],
        map_location: Any = None,
        hparams_file: str | os.PathLike[str] | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        """Rebuild the module from a checkpoint: ``cls(**saved_hyperparameters, **kwargs)``, then
        ``on_load_checkpoint`` and the weights (``strict`` by default). The file is read with
        ``torch.load(weights_only=True)``; keyword arguments override saved hyperparameters."""
        path = os.fspath(checkpoint_path)
        checkpoint = load_checkpoint_file(path, map_location=map_location)
        arguments = constructor_arguments(checkpoint, "hyper_parameters", "hparams_name", hparams_file, kwargs)
        try:
            model = cls(**arguments)
        except TypeError as err:
            raise CheckpointError(
                f"cannot rebuild {cls.__qualname__} from {path!r} with arguments {sorted(arguments)}: "
                f"{err}; pass the missing ones as keywords to load_from_checkpoint"
            ) from err
        model.on_load_checkpoint(checkpoint)
        if "state_dict" not in checkpoint:
            raise CheckpointError(f"checkpoint {path!r} has no 'state_dict' entry; it is not a model checkpoint")
        result = model.load_state_dict(checkpoint["state_dict"], strict=False)
        if (strict is None or strict) and (result.missing_keys or result.unexpected_keys):
            raise CheckpointError(
                f"checkpoint {path!r} does not fit {cls.__qualname__}: missing keys "
                f"{list(result.missing_keys)}, unexpected keys {list(result.unexpected_keys)}; "
                "pass strict=False to load what matches"
            )
        if map_location is not None and isinstance(map_location, (str, torch.device)):
            model.to(map_location)
        return model

    # ------------------------------------------------------------------ helpers

    def freeze(self) -> None:
        """Stop gradients for every parameter and switch to evaluation mode."""
        for param in self.parameters():
            param.requires_grad = False
        self.eval()

    def unfreeze(self) -> None:
        """Let every parameter require gradients again and switch to training mode."""
        for param in self.parameters():
            param.requires_grad = True
        self.train()


@contextlib.contextmanager
def jit_scanning(module: torch.nn.Module) -> Iterator[None]:
    """While active, ``trainer`` of every LightningModule in ``module`` reads as ``None`` instead of
    raising, so that torch.jit (tracing for a graph or an export) can read every attribute."""
    flagged = [m for m in module.modules() if isinstance(m, LightningModule)]
    for member in flagged:
        member._jit_is_scripting = True
    try:
        yield
    finally:
        for member in flagged:
            member._jit_is_scripting = False
