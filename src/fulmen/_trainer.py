"""``Trainer``: Lightning's flags, resolved into the pieces a ``Runner`` is built from.

This is wiring only: names become instances (``accelerator="auto"`` an accelerator object,
``precision=16`` a canonical precision, ``max_time="00:01:00:00"`` a timedelta), and the defaults
Lightning users expect are filled in. The loop itself lives in fulmen-loops.
"""

from __future__ import annotations

import datetime
import difflib
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import (
    Accelerator,
    Callback,
    LightningDataModule,
    LightningModule,
    Logger,
    MisconfigurationException,
    Profiler,
    Registry,
    Strategy,
)
from fulmen_loops import LoopSettings, Runner
from typing_extensions import Never

if TYPE_CHECKING:
    # Imported when first used: `import fulmen` stays light, and the callbacks load with a Trainer.
    from fulmen_callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

#: Accelerators by name. Third-party packages add theirs under the entry-point group
#: ``fulmen.accelerators``; entry points are read only when a name is not found here.
ACCELERATOR_REGISTRY: Registry[Accelerator] = Registry("accelerator", group="fulmen.accelerators")


def _cpu() -> Accelerator:
    from fulmen_accelerators import CPUAccelerator

    return CPUAccelerator()


def _cuda() -> Accelerator:
    from fulmen_accelerators import CUDAAccelerator

    return CUDAAccelerator()


def _mps() -> Accelerator:
    from fulmen_accelerators import MPSAccelerator

    return MPSAccelerator()


# Built-ins are registered in code so that the default accelerator="auto" never scans entry points.
ACCELERATOR_REGISTRY.register("cpu", _cpu)
ACCELERATOR_REGISTRY.register("cuda", _cuda)
ACCELERATOR_REGISTRY.register("mps", _mps)
_AUTO_ORDER = ("cuda", "mps")

_STRATEGIES = ("auto", "single_device", "ddp", "ddp_find_unused_parameters_true", "fsdp")


def _resolve_strategy(strategy: str | Strategy, accelerator: Accelerator, devices: list[int], num_nodes: int) -> Strategy | None:
    """``None`` for one process; a DDPStrategy for several devices/nodes, torchrun, or ``"ddp"``;
    an FSDPStrategy for ``"fsdp"``. A strategy object built without devices gets them here."""
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", len(devices))) if launched else len(devices)
    if not isinstance(strategy, str):
        from fulmen_accelerators import DDPStrategy

        if isinstance(strategy, DDPStrategy) and not strategy.connected:
            strategy.connect(accelerator, processes, num_nodes)
        return strategy
    if strategy not in _STRATEGIES:
        raise MisconfigurationException(
            f"strategy={strategy!r} is not available; available: {list(_STRATEGIES)} (or a Strategy object)"
        )
    if strategy == "fsdp":
        from fulmen_accelerators import FSDPStrategy

        return FSDPStrategy(accelerator, num_processes=processes, num_nodes=num_nodes)
    several = len(devices) > 1 or num_nodes > 1 or launched
    if strategy == "single_device" or (strategy == "auto" and not several):
        if several:
            raise MisconfigurationException(
                f"strategy='single_device' runs one process, but devices={devices} x num_nodes={num_nodes} "
                "asks for several; use strategy='ddp'"
            )
        return None
    from fulmen_accelerators import DDPStrategy

    return DDPStrategy(
        accelerator,
        num_processes=processes,
        num_nodes=num_nodes,
        find_unused_parameters=strategy == "ddp_find_unused_parameters_true",
    )


def _resolve_accelerator(accelerator: str | Accelerator) -> Accelerator:
    if not isinstance(accelerator, str):
        return accelerator
    name = accelerator.lower()
    if name in ("auto", "gpu"):
        for candidate in _AUTO_ORDER:
            found = ACCELERATOR_REGISTRY.create(candidate)
            if found.is_available():
                return found
        if name == "gpu":
            raise MisconfigurationException(
                "accelerator='gpu' but neither CUDA nor MPS is available on this machine; use "
                "accelerator='cpu' or 'auto'"
            )
        return ACCELERATOR_REGISTRY.create("cpu")
    created = ACCELERATOR_REGISTRY.create(name)
    if not created.is_available():
        raise MisconfigurationException(
            f"accelerator={accelerator!r} is not available on this machine; use 'cpu' or 'auto'"
        )
    return created


def _resolve_devices(devices: list[int] | str | int, accelerator: Accelerator) -> list[int]:
    """Lightning's ``devices`` forms: an int count, -1 (all), "auto", "2", "0,1", or a list of indices."""
    if isinstance(devices, str):
        text = devices.strip()
        if text == "auto":
            return [0]
        if "," in text:
            indices = [int(part) for part in text.split(",") if part.strip()]
        else:
            try:
                count = int(text)
            except ValueError as err:
                raise MisconfigurationException(
                    f"devices={devices!r} is not understood; give an int, -1, 'auto', '0,1' or a "
                    "list of device indices"
                ) from err
            return _resolve_devices(count, accelerator)
    elif isinstance(devices, bool):
        raise MisconfigurationException(f"devices={devices!r} must be an int, a str or a list")
    elif isinstance(devices, int):
        if devices == -1:
            devices = accelerator.device_count() if accelerator.name != "cpu" else 1
        if devices < 1:
            raise MisconfigurationException(
                f"devices={devices} must be >= 1 (or -1 for all, or 'auto')"
            )
        indices = list(range(devices))
    else:
        indices = list(devices)
    if not indices:
        raise MisconfigurationException("devices=[] selects no device; give at least one index")
    available = accelerator.device_count()
    too_high = [i for i in indices if i >= available]
    if too_high:
        raise MisconfigurationException(
            f"devices={devices!r} asks for {accelerator.name} device(s) {too_high}, but this machine "
            f"has {available}"
        )
    return indices


def _parse_max_time(max_time: str | datetime.timedelta | Mapping[str, int] | None) -> datetime.timedelta | None:
    if max_time is None or isinstance(max_time, datetime.timedelta):
        return max_time
    if isinstance(max_time, Mapping):
        return datetime.timedelta(**max_time)
    parts = max_time.split(":")
    if len(parts) != 4:
        raise MisconfigurationException(
            f"max_time={max_time!r} must be 'DD:HH:MM:SS', a datetime.timedelta or a dict of "
            "timedelta arguments"
        )
    try:
        days, hours, minutes, seconds = (int(p) for p in parts)
    except ValueError as err:
        raise MisconfigurationException(f"max_time={max_time!r} must be 'DD:HH:MM:SS' with integers") from err
    return datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class Trainer(Runner):
    """Lightning's ``Trainer``: the same flags and defaults, running fulmen's loops.

    ``Trainer(max_epochs=3).fit(model, datamodule=dm)`` behaves as in Lightning. An unknown flag is an
    error that lists the flags there are.
    """

    def __init__(
        self,
        *,
        accelerator: str | Accelerator = "auto",
        strategy: str | Strategy = "auto",
        devices: list[int] | str | int = "auto",
        num_nodes: int = 1,
        precision: int | str | None = None,
        logger: Logger | Iterable[Logger] | bool | None = None,
        callbacks: list[Callback] | Callback | None = None,
        fast_dev_run: int | bool = False,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        max_steps: int = -1,
        min_steps: int | None = None,
        max_time: str | datetime.timedelta | dict[str, int] | None = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        overfit_batches: int | float = 0.0,
        val_check_interval: int | float | None = None,
        check_val_every_n_epoch: int | None = 1,
        num_sanity_val_steps: int | None = None,
        log_every_n_steps: int | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_model_summary: bool | None = None,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
        deterministic: bool | str | None = None,
        benchmark: bool | None = None,
        inference_mode: bool = True,
        use_distributed_sampler: bool = True,
        profiler: Profiler | str | None = None,
        detect_anomaly: bool = False,
        barebones: bool = False,
        plugins: None = None,
        sync_batchnorm: bool = False,
        reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: str | os.PathLike[str] | None = None,
        **unknown: Never,
    ) -> None:
        if unknown:
            _reject_unknown(unknown)
        resolved = _resolve_accelerator(accelerator)
        device_indices = _resolve_devices(devices, resolved)
        chosen_strategy = _resolve_strategy(strategy, resolved, device_indices, num_nodes)
        chosen_profiler = _resolve_profiler(profiler)
        if plugins is not None:
            raise MisconfigurationException("plugins= is not available in this release; leave it None")
        if barebones:
            conflicts = [
                name
                for name, value in (
                    ("logger", logger),
                    ("enable_checkpointing", enable_checkpointing),
                    ("enable_progress_bar", enable_progress_bar),
                    ("enable_model_summary", enable_model_summary),
                    ("fast_dev_run", fast_dev_run),
                    ("detect_anomaly", detect_anomaly),
                    ("num_sanity_val_steps", num_sanity_val_steps),
                    ("log_every_n_steps", log_every_n_steps),
                )
                if value
            ]
            if conflicts:
                raise MisconfigurationException(
                    f"barebones=True turns off {conflicts}; do not enable them as well"
                )
        _apply_determinism(deterministic, benchmark)
        settings = LoopSettings(
            max_epochs=max_epochs,
            min_epochs=min_epochs,
            max_steps=max_steps,
            min_steps=min_steps,
            max_time=_parse_max_time(max_time),
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            overfit_batches=overfit_batches,
            val_check_interval=val_check_interval,
            check_val_every_n_epoch=check_val_every_n_epoch,
            num_sanity_val_steps=num_sanity_val_steps,
            log_every_n_steps=log_every_n_steps,
            accumulate_grad_batches=accumulate_grad_batches,
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
            fast_dev_run=fast_dev_run,
            inference_mode=inference_mode,
            reload_dataloaders_every_n_epochs=reload_dataloaders_every_n_epochs,
            detect_anomaly=detect_anomaly,
            barebones=barebones,
        )
        if settings.fast_dev_run_batches:
            n = settings.fast_dev_run_batches
            print(
                f"Running in `fast_dev_run` mode: will run the requested loop using {n} batch(es). "
                "Logging and checkpointing is suppressed."
            )
        user_callbacks: list[Callback]
        if callbacks is None:
            user_callbacks = []
        elif isinstance(callbacks, (list, tuple)):
            user_callbacks = list(callbacks)
        else:
            user_callbacks = [callbacks]
        from fulmen_callbacks import ModelCheckpoint

        if enable_checkpointing is False and any(isinstance(c, ModelCheckpoint) for c in user_callbacks):
            raise MisconfigurationException(
                "Trainer(enable_checkpointing=False) was given a ModelCheckpoint in callbacks; remove "
                "one or the other"
            )
        user_callbacks = _default_callbacks(
            user_callbacks,
            progress_bar=not barebones and enable_progress_bar is not False,
            model_summary=not barebones and enable_model_summary is not False,
            checkpointing=not barebones and enable_checkpointing is not False,
        )
        root_dir = os.fspath(default_root_dir) if default_root_dir is not None else os.getcwd()
        loggers = _resolve_loggers(logger, barebones or bool(settings.fast_dev_run_batches), root_dir)
        # Warned when fit starts, as Lightning does (a Trainer built only to test says nothing).
        self._no_epoch_limit = (
            max_epochs is None and max_steps == -1 and max_time is None and not settings.fast_dev_run_batches
        )
        super().__init__(
            accelerator=resolved,
            callbacks=user_callbacks,
            loggers=loggers,
            settings=settings,
            precision="32-true" if precision is None else precision,
            default_root_dir=default_root_dir,
            strategy=chosen_strategy,
            use_distributed_sampler=use_distributed_sampler,
            sync_batchnorm=sync_batchnorm,
            profiler=chosen_profiler,
        )
        self._device_indices = device_indices

    def fit(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        ckpt_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """Train ``model``, validating as configured (see ``Runner.fit``)."""
        if self._no_epoch_limit:
            warnings.warn(
                "max_epochs was not set; training runs for 1000 epochs. Set max_epochs=-1 to train "
                "without an epoch limit",
                stacklevel=2,
            )
        super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path)

    @property
    def device_ids(self) -> list[int]:
        """The device indices this run uses on each node."""
        return list(self._device_indices)

    @property
    def checkpoint_callbacks(self) -> list[ModelCheckpoint]:
        """Every ModelCheckpoint in ``callbacks``."""
        from fulmen_callbacks import ModelCheckpoint

        return [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    @property
    def checkpoint_callback(self) -> ModelCheckpoint:
        """The first ModelCheckpoint. Unlike Lightning, which returns ``None`` when there is none,
        this raises, so that ``trainer.checkpoint_callback.best_model_path`` type-checks as is."""
        found = self.checkpoint_callbacks
        if not found:
            raise MisconfigurationException(
                "this Trainer has no ModelCheckpoint (enable_checkpointing=False or barebones=True); "
                "check trainer.checkpoint_callbacks, which is empty then"
            )
        return found[0]

    @property
    def early_stopping_callbacks(self) -> list[EarlyStopping]:
        """Every EarlyStopping in ``callbacks``."""
        from fulmen_callbacks import EarlyStopping

        return [c for c in self.callbacks if isinstance(c, EarlyStopping)]

    @property
    def early_stopping_callback(self) -> EarlyStopping | None:
        """The first EarlyStopping, or ``None``."""
        found = self.early_stopping_callbacks
        return found[0] if found else None

    @property
    def progress_bar_callback(self) -> TQDMProgressBar | None:
        """The progress bar, or ``None`` when it is off."""
        from fulmen_callbacks import TQDMProgressBar

        return next((c for c in self.callbacks if isinstance(c, TQDMProgressBar)), None)


_PROFILERS = ("simple", "advanced", "pytorch")


def _resolve_profiler(profiler: str | Profiler | None) -> Profiler | None:
    """Lightning's profiler names as instances (default arguments); an instance is used as given."""
    if not isinstance(profiler, str):
        return profiler
    from fulmen_loops import AdvancedProfiler, PyTorchProfiler, SimpleProfiler

    name = profiler.lower()
    if name == "simple":
        return SimpleProfiler()
    if name == "advanced":
        return AdvancedProfiler()
    if name == "pytorch":
        return PyTorchProfiler()
    raise MisconfigurationException(
        f"profiler={profiler!r} is not a known profiler; use one of {list(_PROFILERS)}, a profiler "
        "instance (e.g. fulmen.profilers.SimpleProfiler(dirpath=..., filename=...)), or None"
    )


def _reject_unknown(unknown: Mapping[str, object]) -> None:
    valid = sorted(
        name
        for name in Trainer.__init__.__code__.co_varnames[1 : Trainer.__init__.__code__.co_kwonlyargcount + 1]
    )
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(
        f"Trainer got unknown argument(s) {', '.join(hints)}; valid arguments are: {', '.join(valid)}"
    )


def _default_callbacks(
    callbacks: list[Callback], *, progress_bar: bool, model_summary: bool, checkpointing: bool
) -> list[Callback]:
    """Lightning's default callbacks, added unless the user passed one of the same kind."""
    from fulmen_callbacks import ModelCheckpoint, ModelSummary, TQDMProgressBar

    found = list(callbacks)
    if model_summary and not any(isinstance(c, ModelSummary) for c in found):
        found.append(ModelSummary(max_depth=1))
    if progress_bar and not any(isinstance(c, TQDMProgressBar) for c in found):
        found.append(TQDMProgressBar())
    if checkpointing and not any(isinstance(c, ModelCheckpoint) for c in found):
        found.append(ModelCheckpoint())
    return found


def _resolve_loggers(
    logger: Logger | Iterable[Logger] | bool | None, suppressed: bool, root_dir: str
) -> list[Logger]:
    if suppressed or logger is False:
        return []
    if logger is None or logger is True:
        # As in Lightning: TensorBoard when its package is installed, CSV files otherwise.
        import importlib.util

        from fulmen_loggers import CSVLogger, TensorBoardLogger

        if importlib.util.find_spec("tensorboard") is not None:
            return [TensorBoardLogger(save_dir=root_dir)]
        return [CSVLogger(save_dir=root_dir)]
    if isinstance(logger, Iterable):
        return list(logger)
    return [logger]


def _apply_determinism(deterministic: bool | str | None, benchmark: bool | None) -> None:
    if deterministic is not None:
        if deterministic == "warn":
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif isinstance(deterministic, bool):
            torch.use_deterministic_algorithms(deterministic)
        else:
            raise MisconfigurationException(
                f"deterministic={deterministic!r} must be True, False, 'warn' or None"
            )
        if deterministic:
            # cuBLAS needs this to be deterministic; set it before any CUDA work starts.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if benchmark is not None:
        torch.backends.cudnn.benchmark = benchmark
    elif deterministic:
        torch.backends.cudnn.benchmark = False
