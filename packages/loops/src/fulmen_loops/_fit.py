"""``FitLoop``: epochs of training batches, validation when due, and the optimizer step."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import (
    LightningModule,
    MisconfigurationException,
    SupportsSharding,
    collect_rng_states,
    isolate_rng,
    restore_rng_states,
)

from fulmen_loops._data import length_of, limit_batches, without_shuffle
from fulmen_loops._evaluation import EvaluationLoop
from fulmen_loops._hooks import overrides
from fulmen_loops._precision import ScalingOptimizer
from fulmen_loops._profiling import Instrumentation, ProfiledIterator
from fulmen_loops._results import MetricStore
from fulmen_loops._steps import StepModule

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner


class _NoOptimizer:
    """Stands in when ``configure_optimizers`` returns ``None``: the closure runs, nothing steps."""

    param_groups: list[dict[str, Any]] = []

    def step(self, closure: Any = None) -> Any:
        return closure() if closure is not None else None

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None


def split_step_output(output: Any) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """The loss and the extra entries of what ``training_step`` returned."""
    if output is None:
        return None, {}
    if isinstance(output, torch.Tensor):
        return output, {}
    if isinstance(output, Mapping):
        if "loss" not in output:
            raise MisconfigurationException(
                f"training_step returned a dict with keys {sorted(output)} but no 'loss'; return "
                "the loss tensor, a dict with a 'loss' entry, or None to skip the batch"
            )
        loss = output["loss"]
        if loss is not None and not isinstance(loss, torch.Tensor):
            raise MisconfigurationException(
                f"training_step returned {{'loss': {type(loss).__qualname__}}}; the loss must be "
                "a tensor"
            )
        return loss, {k: v for k, v in output.items() if k != "loss"}
    raise MisconfigurationException(
        f"training_step returned {type(output).__qualname__}; return the loss tensor, a dict "
        "with a 'loss' entry, or None to skip the batch"
    )


_NO_OUTPUTS: dict[str, Any] = {}


def overridden(module: LightningModule, hook: str) -> bool:
    """Whether ``module``'s class replaces LightningModule's default ``hook``."""
    return overrides(module, LightningModule, hook)


class _Closure:
    """training_step, zero_grad and backward for one batch: what ``optimizer.step(closure)`` runs.

    One instance lives for the whole fit and is re-aimed at each batch, so a step allocates nothing.
    :meth:`bind` works out once per epoch which hooks anyone overrides; the others are not called at
    all (a default hook is a no-op, or a plain ``zero_grad``/``backward``/no clipping).
    """

    __slots__ = (
        "loop", "batch", "batch_idx", "zero_grad", "optimizer", "loss", "extra", "ran", "runner",
        "module", "cbs", "set_hook", "precision", "step_fn", "accumulate", "epoch", "zero_grad_hooks",
        "custom_zero_grad", "backward_hooks", "custom_backward", "after_backward_hooks",
        "pre_step_hooks", "clipping",
    )  # fmt: skip

    def __init__(self, loop: FitLoop) -> None:
        self.loop = loop
        self.batch: Any = None
        self.batch_idx = 0
        self.zero_grad = True
        self.optimizer: Any = None
        self.loss: torch.Tensor | None = None
        self.extra: dict[str, Any] = {}
        self.ran = False

    def bind(self) -> None:
        """Cache what stays fixed for an epoch: collaborators, settings and which hooks exist."""
        loop = self.loop
        runner = loop.runner
        module = loop.module
        cbs = runner.callback_list
        self.runner, self.module, self.cbs = runner, module, cbs
        self.set_hook = runner.set_hook
        self.precision = runner.precision_plugin
        self.step_fn = loop.training_step
        self.accumulate = runner.accumulate_grad_batches
        self.epoch = runner.current_epoch
        # A profiler records zero_grad and backward through the module's hooks, so call them.
        profiling = runner._profiler is not None
        self.zero_grad_hooks = cbs.overrides("on_before_zero_grad") or overridden(module, "on_before_zero_grad")
        self.custom_zero_grad = overridden(module, "optimizer_zero_grad") or profiling
        self.backward_hooks = cbs.overrides("on_before_backward") or overridden(module, "on_before_backward")
        self.custom_backward = overridden(module, "backward") or self.precision.scaler is not None or profiling
        self.after_backward_hooks = cbs.overrides("on_after_backward") or overridden(module, "on_after_backward")
        self.pre_step_hooks = cbs.overrides("on_before_optimizer_step") or overridden(module, "on_before_optimizer_step")
        self.clipping = overridden(module, "configure_gradient_clipping") or bool(runner.settings.gradient_clip_val)

    def __call__(self) -> torch.Tensor | None:
        runner, module, cbs, set_hook = self.runner, self.module, self.cbs, self.set_hook
        set_hook("training_step")
        precision = self.precision
        if precision.needs_context:
            with precision.forward_context():
                output = self.step_fn(self.batch, self.batch_idx)
        else:
            output = self.step_fn(self.batch, self.batch_idx)
        if type(output) is torch.Tensor:
            loss: torch.Tensor | None = output
            self.extra = {}
        else:
            loss, self.extra = split_step_output(output)
        if loss is not None and self.accumulate > 1:
            loss = loss / self.accumulate
        self.loss = loss
        self.ran = True
        optimizer = self.optimizer
        if self.zero_grad:
            if self.zero_grad_hooks:
                set_hook("on_before_zero_grad")
                cbs.on_before_zero_grad(runner, module, optimizer)
                module.on_before_zero_grad(optimizer)
            if self.custom_zero_grad:
                set_hook("optimizer_zero_grad")
                module.optimizer_zero_grad(self.epoch, self.batch_idx, optimizer)
            else:
                optimizer.zero_grad()
        if loss is not None:
            backward_loss = precision.scale(loss) if precision.scaler is not None else loss
            if self.backward_hooks:
                set_hook("on_before_backward")
                cbs.on_before_backward(runner, module, backward_loss)
                module.on_before_backward(backward_loss)
            if self.custom_backward:
                set_hook("backward")
                module.backward(backward_loss)
            else:
                backward_loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
            if self.after_backward_hooks:
                set_hook("on_after_backward")
                cbs.on_after_backward(runner, module)
                module.on_after_backward()
        return loss

    def step(self) -> torch.Tensor | None:
        """The closure given to ``optimizer_step``: the batch's work, then the pre-step hooks."""
        loss = self()
        self.after_closure()
        return loss

    def after_closure(self) -> None:
        """The pre-step hooks and gradient clipping, on the gradients the closure left."""
        runner, module, optimizer = self.runner, self.module, self.optimizer
        if self.pre_step_hooks:
            self.set_hook("on_before_optimizer_step")
            self.cbs.on_before_optimizer_step(runner, module, optimizer)
            module.on_before_optimizer_step(optimizer)
        if self.clipping:
            self.set_hook("configure_gradient_clipping")
            module.configure_gradient_clipping(
                optimizer,
                gradient_clip_val=runner.settings.gradient_clip_val,
                gradient_clip_algorithm=runner.settings.gradient_clip_algorithm,
            )


class FitLoop:
    """Trains epoch by epoch until ``max_epochs``/``max_steps``/``max_time`` or a stop request."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.store = MetricStore(training=True)
        self.val_loop = EvaluationLoop(runner, "validate", inside_fit=True)
        self.loaders: list[Iterable[Any]] | None = None
        self._loaded_epoch = -1
        self.batch_idx = 0
        self.total_batch_idx = 0
        self._started_at = 0.0
        self._iterator: Iterator[Any] | None = None
        self._warned_none_loss = False
        self.training_step: Callable[..., Any] = self._unset_step
        self._in_epoch = False
        self._epoch_start_rng: dict[str, Any] | None = None
        self._resume: dict[str, Any] | None = None

    @property
    def module(self) -> LightningModule:
        return self.runner.lightning_module

    def _unset_step(self, *args: Any) -> Any:
        raise RuntimeError("FitLoop.training_step is set when run() starts")

    # ------------------------------------------------------------------ checkpointing

    def position(self) -> dict[str, Any]:
        """Where training stands, for a checkpoint: the phase, epoch and batch, and the RNG state
        the epoch's data order was drawn from."""
        runner = self.runner
        if not self._in_epoch:
            phase = "idle"
        elif runner.epoch_end_reached:
            phase = "epoch_end"
        elif runner.state.stage == "validate":
            phase = "validation"
        else:
            phase = "batch"
        return {
            "phase": phase,
            "epoch": runner.current_epoch,
            "batch_idx": self.batch_idx if self._in_epoch else -1,
            "batches_that_stepped": runner.batches_that_stepped,
            "total_batch_idx": self.total_batch_idx,
            "epoch_start_rng": self._epoch_start_rng if self._in_epoch else None,
        }

    @staticmethod
    def idle_position(runner: Runner) -> dict[str, Any]:
        """The position of a run whose fit loop is not ours: the start of its current epoch."""
        return {
            "phase": "idle",
            "epoch": runner.current_epoch,
            "batch_idx": -1,
            "batches_that_stepped": runner.batches_that_stepped,
            "total_batch_idx": 0,
            "epoch_start_rng": None,
        }

    def resume_from(self, position: dict[str, Any]) -> None:
        """Continue from a checkpoint's position when training starts (see :meth:`position`)."""
        runner = self.runner
        phase = position.get("phase", "idle")
        epoch = int(position.get("epoch", 0))
        runner._current_epoch = epoch + 1 if phase == "epoch_end" else epoch
        runner.batches_that_stepped = int(position.get("batches_that_stepped", 0))
        self.total_batch_idx = int(position.get("total_batch_idx", 0))
        self._resume = position

    # ------------------------------------------------------------------ data

    def setup_data(self) -> None:
        """Ask for the training dataloader and count its batches (again when reloading)."""
        runner = self.runner
        reload_every = runner.settings.reload_dataloaders_every_n_epochs
        if self.loaders is not None and not (
            reload_every and runner.current_epoch - self._loaded_epoch >= reload_every
        ):
            return
        settings = runner.settings
        loaders = runner.loaders_for("train")
        if not loaders:
            raise MisconfigurationException(
                "fit found no training dataloader: pass train_dataloaders=, a datamodule, or "
                "define train_dataloader() on the module"
            )
        if len(loaders) > 1:
            raise MisconfigurationException(
                f"fit got {len(loaders)} training dataloaders; pass one (combine datasets with "
                "torch.utils.data.ConcatDataset)"
            )
        self.loaders = loaders
        self._loaded_epoch = runner.current_epoch
        available = length_of(loaders[0])
        if available == 0:
            raise MisconfigurationException(
                "the training dataloader has no batches (len() == 0): check the dataset is not "
                "empty and that batch_size/drop_last leave at least one batch"
            )
        fast = settings.fast_dev_run_batches
        limit = fast if fast else settings.limit_train_batches
        flag = "limit_train_batches"
        if settings.overfit_batches and not fast:
            # Overfitting repeats the same first batches every epoch: no shuffling.
            limit, flag = settings.overfit_batches, "overfit_batches"
            loaders[0] = without_shuffle(loaders[0])
            self.loaders = loaders
        if limit is None:
            limit = 1.0
        runner.num_training_batches = limit_batches(available, limit, flag, "train")
        interval = settings.val_check_interval
        if fast:
            interval = 1.0
        batches = runner.num_training_batches
        if interval is None:
            interval = 1.0
        if isinstance(interval, int) and not isinstance(interval, bool):
            if settings.check_val_every_n_epoch is not None and batches != math.inf and interval > batches:
                raise MisconfigurationException(
                    f"val_check_interval={interval} is more than the {batches} training batches of "
                    "an epoch; lower it, or set check_val_every_n_epoch=None to count batches "
                    "across epochs"
                )
            runner.val_check_batch = interval
        elif batches == math.inf:
            if interval != 1.0:
                raise MisconfigurationException(
                    f"val_check_interval={interval} is a fraction of an epoch, but the training "
                    "dataloader has no length; give an int number of batches"
                )
            runner.val_check_batch = math.inf
        else:
            runner.val_check_batch = max(1, int(batches * interval))

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Sanity-check validation, then train until done."""
        profiler = self.runner._profiler
        if profiler is None:
            self._run()
            return
        # Profiled stand-ins for this fit only: epochs and batches are recorded as Lightning names them.
        instrumentation = Instrumentation(profiler)
        instrumentation.wrap(self, "_epoch", "run_training_epoch")
        instrumentation.wrap(self, "_automatic_step", "run_training_batch")
        instrumentation.wrap(self, "_manual_step", "run_training_batch")
        try:
            self._run()
        finally:
            instrumentation.remove()

    def _run(self) -> None:
        runner = self.runner
        module = self.module
        cbs = runner.callback_list
        self._bind_step()
        runner.set_hook("on_fit_start")
        cbs.on_fit_start(runner, module)
        module.on_fit_start()
        runner.log_hyperparams()
        runner.restore_training_state()
        self._sanity_check()
        self._train_watching_anomalies()
        runner.set_hook("on_fit_end")
        cbs.on_fit_end(runner, module)
        module.on_fit_end()

    def run_training(self) -> None:
        """Only the training part of fit (Lightning's ``fit_loop.run()``): no ``on_fit_start``/
        ``on_fit_end``, no sanity check. What a tuner's trial runs from inside a fit."""
        self._bind_step()
        self._train_watching_anomalies()

    def _bind_step(self) -> None:
        runner = self.runner
        runner._results = self.store
        self.store.device = runner.root_device
        self.store.sync = runner.sync_value if runner.world_size > 1 else None
        if runner.world_size > 1 or isinstance(runner.strategy, SupportsSharding):
            # Gradients are synchronised by running the step through the strategy's wrapper
            # (DistributedDataParallel, or FSDP's sharded root), whose forward is training_step.
            self.training_step = runner.strategy.wrap(StepModule(self.module))
        else:
            self.training_step = self.module.training_step
        runner.state.stage = "train"

    def _train_watching_anomalies(self) -> None:
        if self.runner.settings.detect_anomaly:
            with torch.autograd.set_detect_anomaly(True):
                self._train()
        else:
            self._train()

    def _validation_enabled(self) -> bool:
        """Whether fit validates at all: a validation_step, a val source and batches allowed."""
        runner = self.runner
        module = self.module
        if runner.settings.limit_val_batches == 0 and not runner.settings.fast_dev_run_batches:
            return False
        if not overridden(module, "validation_step"):
            return False
        return runner.has_loader_source("val")

    def _sanity_check(self) -> None:
        runner = self.runner
        steps = runner.num_sanity_val_steps
        if (steps != -1 and steps <= 0) or not self._validation_enabled():
            return
        module = self.module
        cbs = runner.callback_list
        # The sanity check must not shift the run's random stream (Lightning isolates it too).
        with isolate_rng():
            runner.state.stage = "sanity_check"
            runner.set_hook("on_sanity_check_start")
            cbs.on_sanity_check_start(runner, module)
            self.val_loop.run()
            runner.set_hook("on_sanity_check_end")
            cbs.on_sanity_check_end(runner, module)
        runner.reset_metrics()
        runner.state.stage = "train"

    def _done(self) -> bool:
        runner = self.runner
        max_steps = runner.max_steps
        if max_steps != -1 and runner.global_step >= max_steps:
            return True
        max_epochs = runner.max_epochs
        if max_epochs is not None and max_epochs != -1 and runner.current_epoch >= max_epochs:
            return True
        if runner.should_stop and self._can_stop():
            return True
        return False

    def _can_stop(self) -> bool:
        runner = self.runner
        min_epochs = runner.min_epochs
        min_steps = runner.min_steps
        if min_epochs is not None and runner.current_epoch < min_epochs:
            return False
        if min_steps is not None and runner.global_step < min_steps:
            return False
        return True

    def _out_of_time(self) -> bool:
        max_time = self.runner.settings.max_time
        return max_time is not None and time.monotonic() - self._started_at >= max_time.total_seconds()

    def _train(self) -> None:
        runner = self.runner
        module = self.module
        cbs = runner.callback_list
        if runner.settings.limit_train_batches == 0 and not runner.settings.fast_dev_run_batches:
            return  # training switched off: the training dataloader is not even requested
        self.setup_data()
        if runner.num_sanity_val_steps == 0 and self._validation_enabled():
            runner.state.stage = "validate"
            self.val_loop.setup_data()
            runner.state.stage = "train"
        if runner.num_training_batches == 0 or self._done():
            return
        self._started_at = time.monotonic()
        runner.state.stage = "train"
        module.train()
        # Lightning creates the first epoch's iterator here, before on_train_start; it draws from
        # the global RNG, so the same point keeps seeded runs identical.
        loader = self.loaders[0] if self.loaders else []
        resume = self._resume
        if resume is None or resume.get("phase") not in ("batch", "validation"):
            if resume is not None and resume.get("rng") is not None:
                restore_rng_states(resume["rng"])
            self._resume = None
            self._iterator = self._new_iterator(loader)
        runner.set_hook("on_train_start")
        cbs.on_train_start(runner, module)
        module.on_train_start()
        while not self._done():
            self.setup_data()
            self._epoch()
            if self._out_of_time():
                runner.should_stop = True
                break
        runner.set_hook("on_train_end")
        cbs.on_train_end(runner, module)
        module.on_train_end()

    def _epoch(self) -> None:
        runner = self.runner
        module = self.module
        cbs = runner.callback_list
        store = self.store
        set_hook = runner.set_hook
        settings = runner.settings
        loader = self.loaders[0] if self.loaders else []
        runner.state.stage = "train"
        set_hook("on_train_epoch_start")
        cbs.on_train_epoch_start(runner, module)
        module.on_train_epoch_start()
        self._in_epoch = True
        iterator = self._iterator
        if iterator is None and self._resume is None:
            iterator = self._new_iterator(loader)
        self._iterator = None

        optimizer: Any = runner.optimizers[0] if runner.optimizers else _NoOptimizer()
        closure = _Closure(self)
        closure.optimizer = optimizer
        closure.bind()
        batch_start_hooks = cbs.overrides("on_train_batch_start") or overridden(module, "on_train_batch_start")
        batch_end_hooks = cbs.overrides("on_train_batch_end") or overridden(module, "on_train_batch_end")
        has_loggers = bool(runner.loggers)
        log_every = runner.log_every_n_steps
        validates = check_val_epoch = self._should_validate_this_epoch() and self._validation_enabled()
        automatic = module.automatic_optimization
        accumulate = runner.accumulate_grad_batches
        limit = runner.num_training_batches
        transfer = runner.transfer_batch
        max_steps = runner.max_steps
        has_step_schedulers = automatic and any(c.interval == "step" for c in runner.lr_scheduler_configs)
        timed = settings.max_time is not None
        sized = limit != math.inf
        # Unsized loaders are read one batch ahead so that `is_last_batch` is known in time.
        lookahead: list[Any] = [] if sized or iterator is None else _prefetch(iterator)
        batch_idx = 0
        seen = 0
        resume, self._resume = self._resume, None
        if resume is not None:
            # Mid-epoch resume: the same data order (from the epoch's saved RNG state), the batches
            # already trained skipped, then the RNG state of the moment the checkpoint was taken.
            restore_rng_states(resume["epoch_start_rng"])
            self._epoch_start_rng = resume["epoch_start_rng"]
            iterator = self._new_iterator(loader, capture=False)
            lookahead = [] if sized else _prefetch(iterator)
            done = int(resume["batch_idx"])
            for _ in range(done + 1):
                if sized:
                    next(iterator)
                else:
                    lookahead = _prefetch(iterator)
            restore_rng_states(resume["rng"])
            last = (done + 1 >= limit) if sized else not lookahead
            accumulating = (done + 1) % accumulate != 0 and not last
            self.batch_idx = done
            runner.is_last_batch = last
            if resume["phase"] == "batch" and check_val_epoch and self._should_validate_now(done, last):
                self._validate(accumulating)
            if not accumulating:
                runner.batches_that_stepped += 1
            self.total_batch_idx += 1
            batch_idx = seen = done + 1
        assert iterator is not None
        while True:
            if sized and batch_idx >= limit:
                break
            if max_steps != -1 and runner.global_step >= max_steps:
                break
            if runner.should_stop and self._can_stop():
                break
            if sized:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                last = batch_idx + 1 >= limit
            else:
                if not lookahead:
                    break
                batch = lookahead.pop()
                lookahead = _prefetch(iterator)
                last = not lookahead
            seen += 1
            runner.is_last_batch = last
            self.batch_idx = batch_idx
            store.set_batch(batch, None)
            batch = transfer(batch, 0)
            if batch_start_hooks:
                set_hook("on_train_batch_start")
                cbs.on_train_batch_start(runner, module, batch, batch_idx)
                if module.on_train_batch_start(batch, batch_idx) == -1:
                    break
            accumulating = (batch_idx + 1) % accumulate != 0 and not last
            outputs: Any
            if automatic:
                outputs = self._automatic_step(closure, optimizer, batch, batch_idx, accumulating, batch_end_hooks)
            else:
                outputs = self._manual_step(batch, batch_idx)
            if has_step_schedulers and not accumulating:
                self._step_schedulers("step")
            if last and automatic:
                # Epoch-interval schedulers step at the last batch, before this epoch's validation;
                # ReduceLROnPlateau waits for the epoch's end, when validation metrics exist.
                self._step_schedulers("epoch")
            if batch_end_hooks:
                set_hook("on_train_batch_end")
                cbs.on_train_batch_end(runner, module, outputs, batch, batch_idx)
                module.on_train_batch_end(outputs, batch, batch_idx)
            if has_loggers and log_every and not accumulating and (
                (runner.batches_that_stepped + 1) % log_every == 0 or runner.should_stop
            ):
                logged, _, _ = store.metrics(True)
                runner.send_to_loggers(logged)
            if validates and self._should_validate_now(batch_idx, last):
                self._validate(accumulating)
            if not accumulating:
                runner.batches_that_stepped += 1
            self.total_batch_idx += 1
            batch_idx += 1
            if timed and self._out_of_time():
                runner.should_stop = True
        if seen == 0 and not sized:
            raise MisconfigurationException(
                "the training dataloader yielded no batches; check the dataset is not empty"
            )
        self._epoch_end()

    def _manual_step(self, batch: Any, batch_idx: int) -> Any:
        """Manual optimization: training_step does backward and steps itself; what it returns goes
        to on_train_batch_end (a tensor as {"loss": tensor}, as in Lightning)."""
        runner = self.runner
        runner.set_hook("training_step")
        precision = runner.precision_plugin
        if precision.needs_context:
            with precision.forward_context():
                output = self.training_step(batch, batch_idx)
        else:
            output = self.training_step(batch, batch_idx)
        if output is None:
            return {}
        if isinstance(output, torch.Tensor):
            return {"loss": output.detach()}
        if isinstance(output, Mapping):
            return {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in output.items()}
        raise MisconfigurationException(
            f"training_step returned {type(output).__qualname__}; in manual optimization return "
            "None, a tensor or a dict"
        )

    def _new_iterator(self, loader: Iterable[Any], capture: bool = True) -> Iterator[Any]:
        """A fresh iterator over ``loader`` for this epoch, remembering the RNG state it drew from."""
        _set_sampler_epoch(loader, self.runner.current_epoch)
        if capture:
            self._epoch_start_rng = collect_rng_states()
        profiler = self.runner._profiler
        if profiler is not None:
            return ProfiledIterator(iter(loader), "[_TrainingEpochLoop].train_dataloader_next", profiler)
        return iter(loader)

    def _automatic_step(
        self,
        closure: _Closure,
        optimizer: Any,
        batch: Any,
        batch_idx: int,
        accumulating: bool,
        want_outputs: bool = True,
    ) -> dict[str, Any]:
        runner = self.runner
        module = self.module
        closure.batch = batch
        closure.batch_idx = batch_idx
        closure.zero_grad = batch_idx % runner.accumulate_grad_batches == 0
        closure.ran = False
        if accumulating:
            closure()
        else:
            runner.set_hook("optimizer_step")
            precision = runner.precision_plugin
            if precision.scaler is not None:
                scaling = ScalingOptimizer(optimizer, precision, closure.after_closure)
                module.optimizer_step(runner.current_epoch, batch_idx, scaling, closure)  # type: ignore[arg-type]  # duck-typed optimizer
            else:
                module.optimizer_step(runner.current_epoch, batch_idx, optimizer, closure.step)
            if not closure.ran:
                raise MisconfigurationException(
                    "optimizer_step returned without running the closure; call "
                    "optimizer.step(closure=optimizer_closure) in your optimizer_step override"
                )
            runner._global_step += 1
        loss = closure.loss
        if not want_outputs and loss is not None:
            return _NO_OUTPUTS  # nobody reads on_train_batch_end's outputs: skip building them
        if loss is None:
            if not self._warned_none_loss:
                self._warned_none_loss = True
                warnings.warn(
                    "`training_step` returned `None`. If this was on purpose, ignore this "
                    "warning: the batch is skipped (no backward)",
                    UserWarning,
                    stacklevel=2,
                )
            return {}
        return {"loss": loss.detach(), **closure.extra}

    def _should_validate_this_epoch(self) -> bool:
        runner = self.runner
        every = runner.check_val_every_n_epoch
        return every is None or (runner.current_epoch + 1) % every == 0

    def _should_validate_now(self, batch_idx: int, last: bool) -> bool:
        runner = self.runner
        every_batches = runner.val_check_batch
        if runner.should_stop and self._can_stop():
            return True
        if every_batches == math.inf:
            return last
        counter = self.total_batch_idx if runner.check_val_every_n_epoch is None else batch_idx
        return (counter + 1) % int(every_batches) == 0

    def _validate(self, accumulating: bool) -> None:
        runner = self.runner
        val_loop = self.val_loop
        val_loop.setup_data()
        if not val_loop.loaders or sum(val_loop.max_batches) == 0:
            return
        module = self.module
        runner.state.stage = "validate"
        if not accumulating:
            runner.set_hook("on_validation_model_zero_grad")
            module.on_validation_model_zero_grad()
        val_loop.run()
        runner.state.stage = "train"

    def _step_schedulers(self, interval: str, plateau: bool = False) -> None:
        runner = self.runner
        module = self.module
        for config in runner.lr_scheduler_configs:
            if config.interval != interval or config.reduce_on_plateau != plateau:
                continue
            # Lightning counts "step" frequency by the batch index within the epoch, and "epoch"
            # frequency by epochs, both from 1.
            index = self.batch_idx + 1 if interval == "step" else runner.current_epoch + 1
            if index % config.frequency != 0:
                continue
            metric = None
            if config.reduce_on_plateau:
                metric = self._monitored(config.monitor, config.strict)
                if metric is None:
                    continue
            runner.set_hook("lr_scheduler_step")
            module.lr_scheduler_step(config.scheduler, metric)

    def _monitored(self, monitor: str | None, strict: bool) -> torch.Tensor | None:
        metrics = self.runner.callback_metrics
        if monitor is not None and monitor in metrics:
            return metrics[monitor]
        if strict:
            raise MisconfigurationException(
                f"ReduceLROnPlateau conditioned on metric {monitor} which is not available. "
                f"Available metrics are: {list(metrics)}. Log it with self.log, or set the "
                "`monitor` key in the lr scheduler dict (or 'strict': False to skip the update)"
            )
        warnings.warn(
            f"ReduceLROnPlateau conditioned on metric {monitor} which is not available but strict "
            "is set to `False`. Skipping learning rate update.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None

    def _epoch_end(self) -> None:
        runner = self.runner
        module = self.module
        cbs = runner.callback_list
        store = self.store
        runner.mark_epoch_end()
        runner.set_hook("on_train_epoch_end")
        cbs.on_train_epoch_end(runner, module)
        module.on_train_epoch_end()
        cbs.on_train_epoch_end_monitoring(runner, module)
        logged = runner.epoch_end()
        if module.automatic_optimization:  # manual optimization steps its schedulers itself
            self._step_schedulers("epoch", plateau=True)
        runner.batches_that_stepped -= 1  # epoch metrics are logged at the epoch's last step
        runner.send_to_loggers(logged)
        runner.batches_that_stepped += 1
        store.reset()
        runner.epoch_end_reached = False
        runner._current_epoch += 1
        self._in_epoch = False


def _prefetch(iterator: Iterator[Any]) -> list[Any]:
    try:
        return [next(iterator)]
    except StopIteration:
        return []


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Call ``set_epoch`` on the loader's samplers that have it (distributed shuffling)."""
    for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
