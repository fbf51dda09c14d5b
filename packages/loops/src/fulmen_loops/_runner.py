"""``Runner``: runs fit, validate, test and predict for a module with the collaborators it is given.

It holds the run's state (progress, stage, metrics) and is what modules and callbacks see as
``trainer``. ``fulmen.Trainer`` is a ``Runner`` built from Lightning's flags.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import attrs
import torch
from fulmen_core import (
    EVALUATE_OUTPUT,
    Accelerator,
    Callback,
    CheckpointError,
    FitEnded,
    LightningDataModule,
    LightningModule,
    Logger,
    Loop,
    LRSchedulerConfig,
    MisconfigurationException,
    Profiler,
    Strategy,
    SupportsSharding,
    load_checkpoint_file,
    move_data_to_device,
    reduce_boolean_decision,
    save_checkpoint_file,
)
from torch.optim import Optimizer

from fulmen_loops._callbacks import CallbackList, is_monitoring
from fulmen_loops._checkpointing import dump_checkpoint, restore_model, restore_training_state
from fulmen_loops._data import as_loader_list, distributed
from fulmen_loops._evaluation import EvaluationLoop, results_table
from fulmen_loops._fit import FitLoop
from fulmen_loops._hooks import overrides
from fulmen_loops._precision import Precision
from fulmen_loops._prediction import PredictionLoop
from fulmen_loops._profilers import PassThroughProfiler
from fulmen_loops._profiling import Instrumentation, profiled
from fulmen_loops._results import MetricStore
from fulmen_loops._settings import LoopSettings
from fulmen_loops._strategy import SingleDeviceStrategy

_R = TypeVar("_R")


@attrs.define
class RunState:
    """Which entry point runs (``fn``), which part of it (``stage``) and how it ended (``status``)."""

    fn: str | None = None
    stage: str | None = None
    status: str = "initializing"


class Runner:
    """Runs the stages of a :class:`~fulmen_core.LightningModule`.

    Compose it from an accelerator, callbacks, loggers, a precision, :class:`LoopSettings` and
    optionally a profiler (any object with the ``Profiler`` Protocol's methods); then call
    :meth:`fit`, :meth:`validate`, :meth:`test` or :meth:`predict` as on Lightning's Trainer.
    The stage loops (``fit_loop``, ``validate_loop``, ``test_loop``, ``predict_loop``) are plain
    attributes typed by the ``Loop`` Protocol: assign your own to change how a stage runs.
    """

    def __init__(
        self,
        *,
        accelerator: Accelerator | None = None,
        callbacks: Sequence[Callback] = (),
        loggers: Sequence[Logger] = (),
        settings: LoopSettings | None = None,
        precision: object = "32-true",
        default_root_dir: str | os.PathLike[str] | None = None,
        strategy: Strategy | None = None,
        use_distributed_sampler: bool = True,
        sync_batchnorm: bool = False,
        profiler: Profiler | None = None,
    ) -> None:
        self.settings = settings if settings is not None else LoopSettings()
        self.accelerator = accelerator
        self.strategy: Strategy = strategy if strategy is not None else SingleDeviceStrategy()
        self.use_distributed_sampler = use_distributed_sampler
        self.sync_batchnorm = sync_batchnorm
        self.precision_plugin = Precision(precision, accelerator)
        self.root_device = accelerator.get_device(0) if accelerator is not None else torch.device("cpu")
        self.callbacks: list[Callback] = list(callbacks)
        # None: the loops are built without any profiling (not with a profiler that does nothing).
        self._profiler: Profiler | None = None if isinstance(profiler, PassThroughProfiler) else profiler
        self._loggers: list[Logger] = list(loggers)
        self.default_root_dir = os.fspath(default_root_dir) if default_root_dir else os.getcwd()
        self.should_stop = False
        self._accumulate_grad_batches = self.settings.accumulate_grad_batches
        self._warned_barebones_log = False
        self.state = RunState()
        self._module: LightningModule | None = None
        self.datamodule: LightningDataModule | None = None
        self.optimizers: list[Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        # progress
        self._current_epoch = 0
        self._global_step = 0
        self.batches_that_stepped = 0
        self.is_last_batch = False
        # metrics as Lightning exposes them: refreshed from the active store when read
        self._results: MetricStore | None = None
        self._callback_metrics: dict[str, torch.Tensor] = {}
        self._logged_metrics: dict[str, torch.Tensor] = {}
        self._progress_bar_metrics: dict[str, float] = {}
        self.epoch_end_reached = False
        # batch counts, known once a stage has set its data up
        self.num_training_batches: int | float = math.inf
        self.num_sanity_val_batches: list[int | float] = []
        self.num_val_batches: list[int | float] = []
        self.num_test_batches: list[int | float] = []
        self.num_predict_batches: list[int | float] = []
        self._stage_loaders: dict[str, list[Iterable[Any]]] = {}
        self.val_check_batch: int | float = math.inf
        # where dataloaders come from: explicit objects, else the datamodule's or module's hooks
        self._explicit_loaders: dict[str, Any] = {}
        self._checkpoint_to_load: str | None = None
        #: The checkpoint the last stage started from (Lightning's ``trainer.ckpt_path``).
        self.ckpt_path: str | None = None
        self._loaded_checkpoint: tuple[dict[str, Any], str] | None = None
        self.callback_list = CallbackList(self.callbacks, self._profiler)
        self.fit_loop: Loop[None] = FitLoop(self)
        self.validate_loop: Loop[EVALUATE_OUTPUT] = EvaluationLoop(self, "validate")
        self.test_loop: Loop[EVALUATE_OUTPUT] = EvaluationLoop(self, "test")
        self.predict_loop: Loop[list[Any] | None] = PredictionLoop(self)

    # ------------------------------------------------------------------ TrainerView

    @property
    def profiler(self) -> Profiler:
        """The profiler, or a :class:`PassThroughProfiler` when there is none (as in Lightning), so
        that ``with trainer.profiler.profile("my_action"):`` works in user code either way."""
        return self._profiler if self._profiler is not None else _NO_PROFILER

    @profiler.setter
    def profiler(self, profiler: Profiler | None) -> None:
        self._profiler = None if profiler is None or isinstance(profiler, PassThroughProfiler) else profiler
        self.callback_list = CallbackList(self.callbacks, self._profiler)

    @property
    def lightning_module(self) -> LightningModule:
        """The module being run; an error before any stage started."""
        if self._module is None:
            raise RuntimeError("no module is attached yet: call fit, validate, test or predict")
        return self._module

    @property
    def model(self) -> LightningModule | None:
        """The module being run, or ``None`` before any stage."""
        return self._module

    @property
    def current_epoch(self) -> int:
        """The epoch being trained (epochs completed, once an epoch ends)."""
        return self._current_epoch

    @property
    def global_step(self) -> int:
        """The number of optimizer steps taken."""
        return self._global_step

    @property
    def max_epochs(self) -> int | None:
        """The epoch limit in force (1000 when neither epochs, steps nor time were limited)."""
        s = self.settings
        if s.fast_dev_run_batches:
            return 1
        if s.max_epochs is None:
            return 1000 if s.max_steps == -1 and s.max_time is None else -1
        return s.max_epochs

    @property
    def min_epochs(self) -> int | None:
        """The minimum number of epochs before a stop request is honoured."""
        return self.settings.min_epochs

    @property
    def max_steps(self) -> int:
        """The optimizer-step limit (-1: none)."""
        fast = self.settings.fast_dev_run_batches
        return fast if fast else self.settings.max_steps

    @property
    def min_steps(self) -> int | None:
        """The minimum number of steps before a stop request is honoured."""
        return self.settings.min_steps

    @property
    def accumulate_grad_batches(self) -> int:
        """Batches whose gradients add up before each optimizer step (read at each epoch's start,
        so a callback such as GradientAccumulationScheduler may change it between epochs)."""
        return self._accumulate_grad_batches

    @accumulate_grad_batches.setter
    def accumulate_grad_batches(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MisconfigurationException(f"accumulate_grad_batches={value!r} must be an int >= 1")
        self._accumulate_grad_batches = value

    @property
    def log_every_n_steps(self) -> int:
        """How often step-level metrics reach the loggers (0: never, as under barebones)."""
        value = self.settings.log_every_n_steps
        if value is None:
            return 0 if self.settings.barebones else 50
        return value

    @property
    def val_check_interval(self) -> int | float:
        """Validate every this many training batches (int) or this fraction of an epoch (float)."""
        if self.settings.fast_dev_run_batches:
            return 1.0
        value = self.settings.val_check_interval
        return 1.0 if value is None else value

    @property
    def gradient_clip_val(self) -> int | float | None:
        """The clipping threshold (``None``: no clipping)."""
        return self.settings.gradient_clip_val

    @property
    def gradient_clip_algorithm(self) -> str | None:
        """``"norm"`` or ``"value"``."""
        return self.settings.gradient_clip_algorithm

    @property
    def fast_dev_run(self) -> int | bool:
        """The ``fast_dev_run`` setting."""
        return self.settings.fast_dev_run

    @property
    def check_val_every_n_epoch(self) -> int | None:
        """Validate every this many epochs (``None``: by ``val_check_interval`` batches only)."""
        return self.settings.check_val_every_n_epoch

    @property
    def num_sanity_val_steps(self) -> int:
        """Validation batches run before training (-1: all)."""
        if self.settings.fast_dev_run_batches or self.settings.barebones:
            return 0
        value = self.settings.num_sanity_val_steps
        return 2 if value is None else value

    @property
    def training(self) -> bool:
        """Whether the training part of fit is running."""
        return self.state.stage == "train"

    @property
    def validating(self) -> bool:
        """Whether a validation loop (inside fit or from ``validate``) is running."""
        return self.state.stage == "validate"

    @property
    def testing(self) -> bool:
        """Whether the test loop is running."""
        return self.state.stage == "test"

    @property
    def predicting(self) -> bool:
        """Whether the predict loop is running."""
        return self.state.stage == "predict"

    @property
    def sanity_checking(self) -> bool:
        """Whether the validation sanity check before training is running."""
        return self.state.stage == "sanity_check"

    @property
    def interrupted(self) -> bool:
        """Whether the last stage ended with an exception."""
        return self.state.status == "interrupted"

    @property
    def loggers(self) -> list[Logger]:
        """Every logger."""
        return self._loggers

    @loggers.setter
    def loggers(self, loggers: Sequence[Logger] | None) -> None:
        self._loggers = list(loggers) if loggers else []

    @property
    def logger(self) -> Logger | None:
        """The first logger, or ``None``."""
        return self._loggers[0] if self._loggers else None

    @property
    def log_dir(self) -> str | None:
        """The first logger's run directory, else ``default_root_dir``."""
        if self._loggers:
            found = self._loggers[0].log_dir
            return found if found is not None else self._loggers[0].save_dir
        return self.default_root_dir

    @property
    def world_size(self) -> int:
        """The number of processes (1: single process)."""
        return self.strategy.world_size

    @property
    def global_rank(self) -> int:
        """This process's rank among all processes."""
        return self.strategy.global_rank

    @property
    def local_rank(self) -> int:
        """This process's rank on its node."""
        return self.strategy.local_rank

    @property
    def node_rank(self) -> int:
        """This node's rank."""
        return self.strategy.node_rank

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002  # Lightning's name
        """Whether every process (``all=True``) or any process decided ``True``."""
        return reduce_boolean_decision(self.strategy, decision, all)

    def sync_value(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        """A logged value reduced over processes (``self.log(..., sync_dist=True)``)."""
        return self.strategy.reduce(tensor, op=reduction)

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` from every process, stacked along a new first dimension."""
        return self.strategy.all_gather(tensor)

    @property
    def is_global_zero(self) -> bool:
        """Whether this is the process that writes files and prints."""
        return self.global_rank == 0

    @property
    def device_ids(self) -> list[int]:
        """Indices of the devices this process uses."""
        return [self.root_device.index or 0]

    @property
    def num_devices(self) -> int:
        """Devices used by this process's node."""
        return max(1, self.strategy.world_size // max(1, getattr(self.strategy, "num_nodes", 1)))

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Optimizer steps the whole fit will take, as far as can be known before it runs."""
        fit_loop = self.fit_loop
        if isinstance(fit_loop, FitLoop):
            fit_loop.setup_data()
        batches = self.num_training_batches
        max_steps = self.max_steps
        if batches == math.inf:
            return max_steps if max_steps != -1 else math.inf
        per_epoch = math.ceil(batches / self.accumulate_grad_batches)
        max_epochs = self.max_epochs
        total = math.inf if max_epochs == -1 or max_epochs is None else per_epoch * max_epochs
        if max_steps != -1:
            total = min(total, max_steps)
        return total

    # ------------------------------------------------------------------ metrics

    def _refresh(self, on_step: bool | None = None) -> dict[str, torch.Tensor]:
        """Fold the active store's current view into the three metric dictionaries; returns the
        values of that view meant for the loggers.

        Done when the dictionaries are read (and once at each epoch's end), not per batch: a run
        nobody inspects pays nothing for them.
        """
        results = self._results
        if results is None:
            return {}
        if on_step is None:
            on_step = not self.epoch_end_reached
        logged, bar, callback = results.metrics(on_step)
        self._callback_metrics.update(callback)
        self._logged_metrics.update(logged)
        for name, value in bar.items():
            self._progress_bar_metrics[name] = value.item()
        return logged

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """Latest values of everything logged: what callbacks such as ModelCheckpoint monitor."""
        self._refresh()
        return self._callback_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """Latest values logged with ``prog_bar=True``, as numbers."""
        self._refresh()
        return self._progress_bar_metrics

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        """Latest values of everything logged with ``logger=True`` (what loggers receive)."""
        self._refresh()
        return self._logged_metrics

    def reset_metrics(self) -> None:
        """Empty the three metric dictionaries (each stage starts afresh, as in Lightning)."""
        self._callback_metrics = {}
        self._logged_metrics = {}
        self._progress_bar_metrics = {}

    def mark_epoch_end(self) -> None:
        """From now on the dictionaries show epoch aggregates (epoch-end hooks see them)."""
        self._refresh(on_step=True)  # keep the last batch's step values, as a per-batch update would
        self.epoch_end_reached = True

    def epoch_end(self) -> dict[str, torch.Tensor]:
        """Fold the epoch aggregates (including what epoch-end hooks logged) into the dictionaries;
        returns the values meant for the loggers."""
        return self._refresh(on_step=False)

    def send_to_loggers(self, metrics: dict[str, torch.Tensor], step: int | None = None) -> None:
        """Convert ``metrics`` to numbers and hand them to every logger, with the ``epoch`` key."""
        if not self._loggers or not metrics or not self.is_global_zero:
            return
        scalars: dict[str, float] = {name: value.item() for name, value in metrics.items()}
        if step is None:
            user_step = scalars.pop("step", None)
            scalars.setdefault("epoch", self._current_epoch)
            step = int(user_step) if user_step is not None else self.batches_that_stepped
        for logger in self._loggers:
            logger.log_metrics(scalars, step=step)

    def log_hyperparams(self) -> None:
        """Send the module's (and datamodule's) saved hyperparameters to every logger."""
        if not self._loggers or not self.is_global_zero:
            return
        module = self.lightning_module
        params: dict[str, Any] = {}
        if getattr(module, "_log_hyperparams", False):
            params.update(module.hparams_initial)
        dm = self.datamodule
        if dm is not None and getattr(dm, "_log_hyperparams", False):
            params.update(dm.hparams_initial)
        for logger in self._loggers:
            logger.log_hyperparams(params)
            logger.save()

    # ------------------------------------------------------------------ ModuleHost

    def log(
        self,
        name: str,
        value: Any,
        *,
        prog_bar: bool,
        logger: bool | None,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: str | Callable[..., Any],
        enable_graph: bool,
        sync_dist: bool,
        add_dataloader_idx: bool,
        batch_size: int | None,
        rank_zero_only: bool,
    ) -> None:
        """Record a value from ``LightningModule.log`` in the active stage's store."""
        if self.settings.barebones:
            if not self._warned_barebones_log:
                self._warned_barebones_log = True
                warnings.warn(
                    "self.log is a no-op under Trainer(barebones=True): logging costs time, and "
                    "barebones measures the loop without it",
                    UserWarning,
                    stacklevel=3,
                )
            return
        results = self._results
        if results is None:
            raise MisconfigurationException(
                f"self.log({name!r}) was called while no stage is running; log from a step or hook"
            )
        results.log(
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

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward for manual optimization, with the backward hooks around it."""
        module = self.lightning_module
        previous = self._results.hook if self._results is not None else None
        cbs = self.callback_list
        loss = self.precision_plugin.scale(loss)
        self.set_hook("on_before_backward")
        cbs.on_before_backward(self, module, loss)
        module.on_before_backward(loss)
        self.set_hook("backward")
        module.backward(loss, *args, **kwargs)
        self.set_hook("on_after_backward")
        cbs.on_after_backward(self, module)
        module.on_after_backward()
        self.set_hook(previous)

    def optimizer_step(
        self, optimizer: Optimizer, closure: Callable[[], Any] | None, **kwargs: Any
    ) -> Any:
        """A manual-optimization step: the closure (if any), the pre-step hooks, the step, the count."""
        module = self.lightning_module
        results = self._results
        previous = results.hook if results is not None else None

        def pre_step_hooks() -> None:
            self.set_hook("on_before_optimizer_step")
            self.callback_list.on_before_optimizer_step(self, module, optimizer)
            module.on_before_optimizer_step(optimizer)
            self.set_hook(previous)

        result = self.precision_plugin.step(optimizer, closure, pre_step_hooks, **kwargs)
        self._global_step += 1
        return result

    def set_hook(self, name: str | None) -> None:
        """Tell ``self.log`` which hook is running (it decides what may be logged and how)."""
        results = self._results
        if results is not None:
            results.hook = name

    # ------------------------------------------------------------------ data

    def loaders_for(self, kind: str) -> list[Iterable[Any]]:
        """The dataloaders of ``kind`` ("train", "val", "test", "predict"): those passed to the
        entry point, else the datamodule's hook, else the module's hook."""
        loaders = self._raw_loaders(kind)
        strategy = self.strategy
        if strategy.world_size > 1 and self.use_distributed_sampler:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
            loaders = [distributed(loader, strategy.world_size, strategy.global_rank, seed) for loader in loaders]
        self._stage_loaders[kind] = loaders
        return loaders

    def _stage_loaders_of(self, kind: str) -> Any:
        loaders = self._stage_loaders.get(kind)
        if not loaders:
            return None
        return loaders[0] if len(loaders) == 1 else loaders

    @property
    def train_dataloader(self) -> Any:
        """The training dataloader of the current or last fit (``None`` before one asked for it)."""
        return self._stage_loaders_of("train")

    @property
    def val_dataloaders(self) -> Any:
        """The validation dataloader (a list when there are several) last asked for, or ``None``."""
        return self._stage_loaders_of("val")

    @property
    def test_dataloaders(self) -> Any:
        """The test dataloader (a list when there are several) last asked for, or ``None``."""
        return self._stage_loaders_of("test")

    @property
    def predict_dataloaders(self) -> Any:
        """The predict dataloader (a list when there are several) last asked for, or ``None``."""
        return self._stage_loaders_of("predict")

    def _raw_loaders(self, kind: str) -> list[Iterable[Any]]:
        explicit = self._explicit_loaders.get(kind)
        if explicit is not None:
            return as_loader_list(explicit)
        hook = f"{kind}_dataloader"
        dm = self.datamodule
        self.set_hook(hook)
        if dm is not None and overrides(dm, LightningDataModule, hook):
            return as_loader_list(getattr(dm, hook)())
        module = self.lightning_module
        if kind == "val" and not overrides(module, LightningModule, hook):
            return []
        return as_loader_list(getattr(module, hook)())

    def has_loader_source(self, kind: str) -> bool:
        """Whether dataloaders of ``kind`` were passed or a datamodule/module hook provides them."""
        if self._explicit_loaders.get(kind) is not None:
            return True
        hook = f"{kind}_dataloader"
        dm = self.datamodule
        if dm is not None and overrides(dm, LightningDataModule, hook):
            return True
        return self._module is not None and overrides(self._module, LightningModule, hook)

    def transfer_batch(self, batch: Any, dataloader_idx: int) -> Any:
        """Move ``batch`` to the device through the (datamodule's or module's) transfer hooks."""
        return self._transfer(batch, dataloader_idx)

    def _bind_transfer(self) -> None:
        module = self.lightning_module
        dm = self.datamodule

        def pick(name: str) -> Any:
            if dm is not None and overrides(dm, LightningDataModule, name):
                return getattr(dm, name)
            return getattr(module, name)

        overridden = any(
            overrides(module, LightningModule, n) or (dm is not None and overrides(dm, LightningDataModule, n))
            for n in ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")
        )
        precision = self.precision_plugin
        if not overridden and not precision.converts_input:
            # No hook to call: move the batch directly (a no-op for tensors already on the device).
            target = self.root_device

            def move_only(batch: Any, dataloader_idx: int) -> Any:
                return move_data_to_device(batch, target)

            self._transfer = move_only
            return
        before = pick("on_before_batch_transfer")
        move = pick("transfer_batch_to_device")
        after = pick("on_after_batch_transfer")
        device = self.root_device

        def transfer(batch: Any, dataloader_idx: int) -> Any:
            self.set_hook("on_before_batch_transfer")
            batch = before(batch, dataloader_idx)
            self.set_hook("transfer_batch_to_device")
            batch = move(batch, device, dataloader_idx)
            self.set_hook("on_after_batch_transfer")
            batch = after(batch, dataloader_idx)
            return precision.convert_input(batch)

        self._transfer = transfer

    def _profile_transfer(self) -> None:
        # The whole move as one action; the transfer hooks inside it, when overridden, are recorded
        # on their own through the module's instrumentation.
        profiler = self._profiler
        if profiler is not None:
            action = f"[Strategy]{type(self.strategy).__name__}.batch_to_device"
            self._transfer = profiled(self._transfer, action, profiler)

    @contextlib.contextmanager
    def init_module(self, empty_init: bool | None = None) -> Iterator[None]:
        """Create modules inside this block directly on the run's device, in the dtype of a "-true"
        precision (e.g. ``bf16-true``), instead of on the CPU in float32 and moved later."""
        if self.accelerator is not None:
            self.root_device = self.accelerator.get_device(self.strategy.local_rank)
        dtype = self.precision_plugin.module_dtype
        previous = torch.get_default_dtype()
        with torch.device(self.root_device):
            if dtype is not None and dtype.is_floating_point:
                torch.set_default_dtype(dtype)
            try:
                yield
            finally:
                torch.set_default_dtype(previous)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(
        self, filepath: str | os.PathLike[str], weights_only: bool = False, storage_options: Any = None
    ) -> None:
        """Write a checkpoint of the run to ``filepath`` (atomically; only the global-zero process
        writes). ``weights_only=True`` leaves out optimizer, scheduler, callback and loop state."""
        if self._module is None:
            raise MisconfigurationException(
                "save_checkpoint needs a module: call it during or after fit/validate/test/predict"
            )
        if storage_options is not None:
            raise MisconfigurationException(
                "save_checkpoint(storage_options=...) is for remote filesystems, which fulmen does "
                "not write to; give a local path"
            )
        previous = self._results.hook if self._results is not None else None
        checkpoint = dump_checkpoint(self, weights_only)
        self.set_hook(previous)
        if isinstance(self.strategy, SupportsSharding):
            # Every process takes part: a sharded checkpoint is written by all of them.
            self.strategy.save_checkpoint(checkpoint, os.fspath(filepath))
        elif self.is_global_zero:
            save_checkpoint_file(checkpoint, filepath)
        self.strategy.barrier("save_checkpoint")

    def run_trial(self, callbacks: Sequence[Callback], **settings: Any) -> None:
        """Train once more from inside a fit with only ``callbacks``, no loggers, progress from zero
        and ``settings`` (``LoopSettings`` fields) overridden; afterwards the Runner's settings,
        callbacks, loggers, progress, stop flag and stage are as before (what tuners need)."""
        from fulmen_loops._trial import run_trial

        run_trial(self, callbacks, **settings)

    def run_stage_trial(
        self,
        fn: str,
        model: LightningModule,
        datamodule: LightningDataModule | None,
        callbacks: Sequence[Callback],
        **settings: Any,
    ) -> None:
        """Run ``fn`` ("validate", "test" or "predict") once with only ``callbacks``, no loggers and
        ``settings`` overridden; afterwards the Runner is as before (what the batch-size tuner uses
        for evaluation)."""
        from fulmen_loops._trial import run_stage_trial

        run_stage_trial(self, fn, model, datamodule, callbacks, **settings)

    def restore_training_state(self) -> None:
        """Optimizers, schedulers and loop progress from the checkpoint fit was given, if any."""
        if self._loaded_checkpoint is not None and self.state.fn == "fit":
            checkpoint, path = self._loaded_checkpoint
            restore_training_state(self, checkpoint, path)

    def _resolve_ckpt_path(self, ckpt_path: str | os.PathLike[str] | None, fn: str) -> str | None:
        if ckpt_path is None:
            return None
        if ckpt_path == "last":
            # The newest of what checkpoint callbacks know: their last path in this process, or the
            # last*.ckpt files in their directories (a new process resuming a crashed run).
            candidates: set[str] = set()
            for callback in self.callbacks:
                known = getattr(callback, "last_model_path", "")
                if known:
                    candidates.add(str(known))
                finder = getattr(callback, "_find_last_checkpoints", None)
                if callable(finder):
                    candidates.update(str(p) for p in finder(self))
            existing = [p for p in candidates if os.path.exists(p)]
            if not existing:
                warnings.warn(
                    f"{fn}(ckpt_path='last') found no last checkpoint; the run starts from scratch",
                    UserWarning,
                    stacklevel=3,
                )
                return None
            self.ckpt_path = max(existing, key=os.path.getmtime)
            return self.ckpt_path
        if ckpt_path == "best":
            attribute = "best_model_path"
            holders = [c for c in self.callbacks if hasattr(c, attribute)]
            if not holders:
                raise MisconfigurationException(
                    f"{fn}(ckpt_path={ckpt_path!r}) needs a checkpoint callback (ModelCheckpoint) "
                    "that has saved a checkpoint; add one or give a file path"
                )
            found = [str(getattr(c, attribute)) for c in holders if getattr(c, attribute)]
            if not found:
                raise MisconfigurationException(
                    f"{fn}(ckpt_path={ckpt_path!r}): the checkpoint callback has not saved a "
                    f"{ckpt_path} checkpoint yet; give a file path instead"
                )
            self.ckpt_path = found[0]
            return found[0]
        path = os.fspath(ckpt_path)
        if not os.path.exists(path):  # a file, or the directory of a sharded checkpoint
            raise CheckpointError(
                f"{fn}(ckpt_path={path!r}): no such checkpoint file; check the path, or use "
                "ckpt_path='last' / 'best' with a ModelCheckpoint callback"
            )
        self.ckpt_path = path
        return path

    # ------------------------------------------------------------------ entry points

    def fit(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """Train ``model``, validating as configured."""
        module = _check_module(model, "fit")
        if isinstance(train_dataloaders, LightningDataModule):
            datamodule, train_dataloaders = train_dataloaders, None
        if datamodule is not None and (train_dataloaders is not None or val_dataloaders is not None):
            raise MisconfigurationException(
                "fit got both a datamodule and dataloaders; pass one or the other"
            )
        if not overrides(module, LightningModule, "training_step"):
            raise MisconfigurationException(
                f"{type(module).__qualname__} has no training_step(self, batch, batch_idx); fit "
                "needs it to compute the loss"
            )
        # An instance attribute counts too: fulmen.cli sets one from --optimizer.
        if not overrides(module, LightningModule, "configure_optimizers") and "configure_optimizers" not in vars(module):
            raise MisconfigurationException(
                f"{type(module).__qualname__} has no configure_optimizers(self); fit needs it to "
                "know how to update the weights (return e.g. torch.optim.Adam(self.parameters()))"
            )
        self._explicit_loaders = {"train": train_dataloaders, "val": val_dataloaders}
        self._checkpoint_to_load = self._resolve_ckpt_path(ckpt_path, "fit")
        self._run("fit", module, datamodule, self._fit_until_ended)

    def _fit_until_ended(self) -> None:
        try:
            self.fit_loop.run()
        except FitEnded:
            pass  # a callback ended the fit (e.g. a tuner): teardown follows as after a normal end

    def validate(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | os.PathLike[str] | None = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ) -> EVALUATE_OUTPUT:
        """Run one validation epoch; returns one dict of metric floats per dataloader."""
        return self._evaluate("validate", model, dataloaders, ckpt_path, datamodule, self.validate_loop, verbose)

    def test(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | os.PathLike[str] | None = None,
        verbose: bool = True,
        datamodule: LightningDataModule | None = None,
    ) -> EVALUATE_OUTPUT:
        """Run one test epoch; returns one dict of metric floats per dataloader."""
        return self._evaluate("test", model, dataloaders, ckpt_path, datamodule, self.test_loop, verbose)

    def predict(
        self,
        model: LightningModule | None = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
    ) -> list[Any] | None:
        """Run ``predict_step`` over the data; returns the per-batch outputs (a list per
        dataloader when there are several)."""
        module = self._module_for("predict", model)
        if isinstance(dataloaders, LightningDataModule):
            datamodule, dataloaders = dataloaders, None
        self._explicit_loaders = {"predict": dataloaders}
        self._checkpoint_to_load = self._resolve_ckpt_path(ckpt_path, "predict")
        loop = self.predict_loop
        if isinstance(loop, PredictionLoop):
            loop.return_predictions = True if return_predictions is None else return_predictions
        return self._run("predict", module, datamodule, loop.run)

    def _evaluate(
        self,
        fn: str,
        model: LightningModule | None,
        dataloaders: Any,
        ckpt_path: str | os.PathLike[str] | None,
        datamodule: LightningDataModule | None,
        loop: Loop[EVALUATE_OUTPUT],
        verbose: bool = True,
    ) -> EVALUATE_OUTPUT:
        module = self._module_for(fn, model)
        if isinstance(dataloaders, LightningDataModule):
            datamodule, dataloaders = dataloaders, None
        if datamodule is not None and dataloaders is not None:
            raise MisconfigurationException(
                f"{fn} got both a datamodule and dataloaders; pass one or the other"
            )
        self._checkpoint_to_load = self._resolve_ckpt_path(ckpt_path, fn)
        step = "validation_step" if fn == "validate" else "test_step"
        if not overrides(module, LightningModule, step):
            raise MisconfigurationException(
                f"{type(module).__qualname__} has no {step}(self, batch, batch_idx); {fn} needs it"
            )
        kind = "val" if fn == "validate" else "test"
        self._explicit_loaders = {kind: dataloaders}
        results = self._run(fn, module, datamodule, loop.run)
        if verbose and self.is_global_zero:
            table = results_table(results, "validate" if fn == "validate" else "test")
            if table:
                print(table)
        return results

    def _module_for(self, fn: str, model: LightningModule | None) -> LightningModule:
        if model is None:
            if self._module is None:
                raise MisconfigurationException(
                    f"{fn} was called without a model and no earlier fit attached one; pass "
                    f"{fn}(model, ...)"
                )
            return self._module
        return _check_module(model, fn)

    # ------------------------------------------------------------------ the run around a stage

    def _forget_dataloaders(self) -> None:
        # Each stage asks for its dataloaders again (those given to this call, or the hooks'), as
        # in Lightning: a second validate(dataloaders=...) must not run the first one's data.
        fit_loop = self.fit_loop
        if isinstance(fit_loop, FitLoop):
            fit_loop.loaders = None
            fit_loop.val_loop.loaders = None
        for loop in (self.validate_loop, self.test_loop):
            if isinstance(loop, EvaluationLoop):
                loop.loaders = None

    def _attach(self, module: LightningModule, datamodule: LightningDataModule | None) -> None:
        self._module = module
        self.datamodule = datamodule
        module._trainer = self
        module._host = self
        if datamodule is not None:
            datamodule.trainer = self
        extra = module.configure_callbacks()
        model_callbacks = [extra] if not isinstance(extra, Sequence) else list(extra)
        if model_callbacks:
            replaced = {type(c) for c in model_callbacks}
            kept = [c for c in self.callbacks if type(c) not in replaced]
            self.callbacks = kept + model_callbacks
        # Callbacks that react to the epoch's final metrics run last, checkpointing after all others
        # (so it saves what early stopping decided), as in Lightning.
        ordered = [c for c in self.callbacks if not is_monitoring(c)]
        ordered += [c for c in self.callbacks if is_monitoring(c) and not _is_checkpointing(c)]
        ordered += [c for c in self.callbacks if _is_checkpointing(c)]
        self.callbacks = ordered
        self.callback_list = CallbackList(self.callbacks, self._profiler)

    def _run(
        self,
        fn: str,
        module: LightningModule,
        datamodule: LightningDataModule | None,
        body: Callable[[], _R],
    ) -> _R:
        self.strategy.setup_environment()
        if self.accelerator is not None:
            self.root_device = self.accelerator.get_device(self.strategy.local_rank)
        self.state = RunState(fn=fn, stage=_FIRST_STAGE[fn], status="running")
        self.should_stop = False
        self._forget_dataloaders()
        self._attach(module, datamodule)
        profiler = self._profiler
        instrumentation: Instrumentation | None = None
        if profiler is not None:
            # Installed here and removed in the `finally` below, so no profiled hook outlives the stage.
            profiler.setup(stage=fn, local_rank=self.local_rank if self.world_size > 1 else None, log_dir=self.log_dir)
            instrumentation = Instrumentation(profiler)
            instrumentation.wrap_module(module, type(self.strategy).__name__)
        self.reset_metrics()
        cbs = self.callback_list
        try:
            self._prepare_data(module, datamodule)
            self.set_hook("setup")
            if datamodule is not None:
                datamodule.setup(stage=fn)
            cbs.setup(self, module, fn)
            module.setup(fn)
            self.set_hook("configure_model")
            module.configure_model()
            if self._checkpoint_to_load is not None:
                path = self._checkpoint_to_load
                self._loaded_checkpoint = (self._read_checkpoint(path, module), path)
                restore_model(self, self._loaded_checkpoint[0], path)
            if self.sync_batchnorm and self.world_size > 1:
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)  # type: ignore[no-untyped-call]  # unannotated in torch; converts children in place
            if self.accelerator is not None:
                self.accelerator.setup_device(self.root_device)
            module.to(self.root_device)
            self.precision_plugin.convert_module(module)
            if isinstance(self.strategy, SupportsSharding):
                self.strategy.setup_module(module)  # before the optimizers see the parameters
            self._bind_transfer()
            if profiler is not None:
                self._profile_transfer()
            if fn == "fit":
                self._setup_optimizers(module)
            result = body()
            self._teardown(fn, module, datamodule)
            if profiler is not None:
                profiler.describe()
            self.state.stage = None
            self.state.status = "finished"
            if self.is_global_zero:
                for logger in self._loggers:
                    logger.finalize("success")
            return result
        except BaseException as exception:
            self.state.status = "interrupted"
            self.set_hook("on_exception")
            cbs.on_exception(self, module, exception)
            if datamodule is not None:
                datamodule.on_exception(exception)
            self.strategy.abort()
            if self.is_global_zero:
                for logger in self._loggers:
                    logger.finalize("failed")
            self.state.stage = None
            raise
        finally:
            if instrumentation is not None:
                instrumentation.remove()
            if profiler is not None:
                profiler.teardown(fn)
            self._results = None
            module._host = None
            self._checkpoint_to_load = None
            self._loaded_checkpoint = None

    def _read_checkpoint(self, path: str, module: LightningModule) -> dict[str, Any]:
        if isinstance(self.strategy, SupportsSharding):
            return self.strategy.load_checkpoint(path, module)
        if os.path.isdir(path):
            raise CheckpointError(
                f"{path!r} is a directory: a sharded checkpoint, which only a strategy that shards "
                "(strategy='fsdp') reads; resume it with that strategy, or save with "
                "FSDPStrategy(state_dict_type='full') for a single file"
            )
        return load_checkpoint_file(path)

    def _prepare_data(self, module: LightningModule, datamodule: LightningDataModule | None) -> None:
        # One process per node (or one in all, without prepare_data_per_node) prepares the data
        # while the others wait; setup then runs on every process.
        self.set_hook("prepare_data")
        if datamodule is not None:
            rank = self.local_rank if datamodule.prepare_data_per_node else self.global_rank
            if rank == 0:
                datamodule.prepare_data()
        per_node = getattr(module, "prepare_data_per_node", True)
        if (self.local_rank if per_node else self.global_rank) == 0:
            module.prepare_data()
        self.strategy.barrier("prepare_data")

    def _setup_optimizers(self, module: LightningModule) -> None:
        from fulmen_loops._optim import parse_optimizers

        self.set_hook("configure_optimizers")
        self.optimizers, self.lr_scheduler_configs = parse_optimizers(module.configure_optimizers())
        if not module.automatic_optimization:
            if self.settings.gradient_clip_val is not None:
                raise MisconfigurationException(
                    "gradient_clip_val is applied by the Trainer only in automatic optimization; "
                    "with automatic_optimization=False call self.clip_gradients(optimizer, "
                    "gradient_clip_val=..., gradient_clip_algorithm=...) in training_step"
                )
            if self.accumulate_grad_batches != 1:
                raise MisconfigurationException(
                    "accumulate_grad_batches is applied by the Trainer only in automatic "
                    "optimization; with automatic_optimization=False step the optimizer every N "
                    "batches yourself"
                )
        if module.automatic_optimization and len(self.optimizers) > 1:
            raise MisconfigurationException(
                f"configure_optimizers returned {len(self.optimizers)} optimizers; with automatic "
                "optimization only one is supported. Set self.automatic_optimization = False in "
                "__init__ and step them yourself in training_step"
            )

    def _teardown(self, fn: str, module: LightningModule, datamodule: LightningDataModule | None) -> None:
        self.set_hook("teardown")
        if datamodule is not None:
            datamodule.teardown(stage=fn)
        self.callback_list.teardown(self, module, fn)
        module.teardown(fn)
        if self.accelerator is not None:
            self.accelerator.teardown()
        self.strategy.teardown()


def _is_checkpointing(callback: object) -> bool:
    return bool(getattr(callback, "_fulmen_checkpoint", False))


# What ``Runner.profiler`` returns without a profiler: one shared instance, since it holds no state.
_NO_PROFILER = PassThroughProfiler()

_FIRST_STAGE = {"fit": "train", "validate": "validate", "test": "test", "predict": "predict"}


def _check_module(model: object, fn: str) -> LightningModule:
    if not isinstance(model, LightningModule):
        raise MisconfigurationException(
            f"{fn} needs a LightningModule, got {type(model).__qualname__}; subclass "
            "fulmen.LightningModule (or wrap your torch.nn.Module in one)"
        )
    return model

