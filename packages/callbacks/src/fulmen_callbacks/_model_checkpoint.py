"""``ModelCheckpoint``: save the model during fit, keeping the best ``k`` by a monitored metric.

Lightning's callback, with its arguments, defaults, file names, bookkeeping attributes and checkpoint
state (under the same ``state_key``), so that scripts and checkpoint files move between the two. The
file itself is written by ``trainer.save_checkpoint`` (atomically, on global zero only); this class
decides when to save, under which name, and which of its own files to remove.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from fulmen_core import Callback, LightningModule, MisconfigurationException

# `{name}` or `{name:format_spec}` in a filename template. As in Lightning, a name runs up to the
# first ':' or '}', so it may hold '/', '.', '-' (``{val/loss:.2f}``).
_PLACEHOLDER = re.compile(r"\{([^{}:]*)(?::([^{}]*))?\}")

_MODES: dict[str, float] = {"min": math.inf, "max": -math.inf}


class ModelCheckpoint(Callback):
    r"""Save the model during fit: every epoch, every ``n`` steps or epochs, or every so often.

    Args:
        dirpath: The directory of the checkpoint files. ``None``: ``<save_dir>/<name>/<version>/checkpoints``
            of the Trainer's first logger (``default_root_dir`` when the logger has no ``save_dir``),
            or ``<default_root_dir>/checkpoints`` without a logger; resolved when fit starts.
        filename: The file name without ``.ckpt``, a template such as ``"{epoch}-{val_loss:.2f}"``
            filled from the logged metrics plus ``epoch`` and ``step`` (a name never logged is 0).
            ``None``: ``"{epoch}-{step}"``, which gives ``epoch=4-step=20.ckpt``.
        monitor: The logged metric that ranks checkpoints. ``None``: keep the latest checkpoint.
        verbose: Print a line each time a monitored checkpoint is or is not kept.
        save_last: ``True``: also save ``last.ckpt`` whenever a checkpoint is saved (and when training
            ends). ``"link"``: make ``last.ckpt`` a symbolic link to the newest checkpoint (a copy
            where links cannot be made).
        save_top_k: Keep the best ``k`` checkpoints by ``monitor``; ``0``: save none; ``-1``: keep all.
            Without ``monitor`` only ``-1``, ``0`` and ``1`` (the latest) make sense.
        save_on_exception: Save a checkpoint when fit raises (Ctrl-C included).
        save_weights_only: Save only the module's weights (no optimizer, scheduler, loop or callback
            state), so the file cannot resume training.
        mode: ``"min"`` (a lower ``monitor`` is better, as for a loss) or ``"max"``.
        auto_insert_metric_name: Write ``epoch=1-val_loss=0.12`` for ``{epoch}-{val_loss:.2f}``. Turn it
            off when metric names hold ``/`` (each would become a folder), and write the names yourself.
        every_n_train_steps: Save every this many optimizer steps (``None``/``0``: not by steps).
        train_time_interval: Save when at least this much time has passed since the last save by time.
        every_n_epochs: Save every this many epochs (``0``: not by epochs). When none of the three
            triggers is given, a checkpoint is saved every epoch. The three are mutually exclusive.
        save_on_train_epoch_end: ``True``: save at the end of the training epoch; ``False``: after
            validation. ``None``: at the training epoch's end when there is no validation, or when
            validation runs once at the end of every epoch (``val_check_interval=1.0``,
            ``check_val_every_n_epoch=1``); after each validation otherwise.
        enable_version_counter: Add ``-v1``, ``-v2``, ... to a name that is already taken on disk
            instead of overwriting the file.

    Attributes:
        best_model_path: The path of the best checkpoint so far (the latest one without ``monitor``).
        best_model_score: Its ``monitor`` value (a 0-d tensor), or ``None``.
        best_k_models: The kept checkpoints: path to ``monitor`` value.
        kth_best_model_path: The worst of the kept checkpoints, the next to go.
        kth_value: Its value (``inf``/``-inf`` until ``save_top_k`` checkpoints are kept).
        last_model_path: The path of ``last.ckpt``, once saved.
        current_score: The ``monitor`` value of the newest checkpoint.
        dirpath: The directory of the checkpoints (``None`` until fit resolves the default).

    Raises:
        MisconfigurationException: For a ``mode`` other than ``"min"``/``"max"``, ``save_top_k < -1``,
            a ``save_top_k`` above 1 without ``monitor``, negative intervals, or more than one trigger.
    """

    CHECKPOINT_JOIN_CHAR: ClassVar[str] = "-"
    CHECKPOINT_EQUALS_CHAR: ClassVar[str] = "="
    CHECKPOINT_NAME_LAST: ClassVar[str] = "last"
    FILE_EXTENSION: ClassVar[str] = ".ckpt"
    STARTING_VERSION: ClassVar[int] = 1
    # The loops run a "monitoring" callback's on_train_epoch_end after the module's own hook, so a
    # metric the module logs there is seen (Lightning orders checkpoint callbacks the same way).
    _fulmen_monitoring: ClassVar[bool] = True
    # Marks a checkpoint callback: Lightning runs these after every other callback (EarlyStopping
    # included), so a loop that honours the mark can order them the same way.
    _fulmen_checkpoint: ClassVar[bool] = True

    def __init__(
        self,
        dirpath: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        if mode not in _MODES:
            raise MisconfigurationException(
                f"`mode` can be {', '.join(_MODES)} but got {mode}: pass mode='min' when a lower value "
                "of `monitor` is better (a loss) or mode='max' when a higher one is (an accuracy)"
            )
        if save_last not in (None, True, False, "link"):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_last={save_last!r}): use True (save last.ckpt), 'link' (make "
                "last.ckpt a link to the newest checkpoint), or None/False"
            )
        if train_time_interval is not None and not isinstance(train_time_interval, timedelta):
            raise MisconfigurationException(
                f"ModelCheckpoint(train_time_interval={train_time_interval!r}) must be a "
                "datetime.timedelta, e.g. timedelta(minutes=30)"
            )
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_on_exception = save_on_exception
        self.save_weights_only = save_weights_only
        self.auto_insert_metric_name = auto_insert_metric_name
        self.mode = mode
        self.kth_value: torch.Tensor = torch.tensor(_MODES[mode])
        self.dirpath: str | None = (
            os.path.realpath(os.path.expanduser(os.fspath(dirpath))) if dirpath else None
        )
        self.filename = filename
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._enable_version_counter = enable_version_counter
        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_epochs, every_n_train_steps = 1, 0
        self._every_n_epochs: int = every_n_epochs or 0
        self._every_n_train_steps: int = every_n_train_steps or 0
        self._train_time_interval: timedelta | None = train_time_interval
        self.current_score: torch.Tensor | None = None
        self.best_k_models: dict[str, torch.Tensor] = {}
        self.kth_best_model_path = ""
        self.best_model_score: torch.Tensor | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self._last_global_step_saved = 0  # nothing to save before the first optimizer step
        self._last_checkpoint_saved = ""
        self._last_time_checked: float | None = None
        # A step- or time-triggered save that waits for validation to log the monitored metric.
        self._defer_save_until_validation = False
        # Whether a validation ran in this fit (Lightning's val_loop._has_run): before that a missing
        # monitor only warns, since validation may not have logged it yet.
        self._validation_ran = False
        self._warned: set[str] = set()
        self._validate_configuration()

    def _validate_configuration(self) -> None:
        if isinstance(self.save_top_k, bool) or not isinstance(self.save_top_k, int) or self.save_top_k < -1:
            raise MisconfigurationException(
                f"Invalid value for save_top_k={self.save_top_k!r}. Must be >= -1: the number of best "
                "checkpoints to keep, 0 for none, -1 for all"
            )
        for name, value in (("every_n_train_steps", self._every_n_train_steps), ("every_n_epochs", self._every_n_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MisconfigurationException(
                    f"Invalid value for {name}={value!r}. Must be >= 0 (an int; 0 or None turns it off)"
                )
        triggers = (
            (self._every_n_train_steps >= 1)
            + (self._every_n_epochs >= 1)
            + (self._train_time_interval is not None)
        )
        if triggers > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={self._every_n_train_steps}, "
                f"every_n_epochs={self._every_n_epochs} and train_time_interval={self._train_time_interval} "
                "should be mutually exclusive. Give one; for several schedules add several ModelCheckpoint "
                "callbacks"
            )
        if self.monitor is None and self.save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None) is not a valid "
                "configuration. No quantity for top_k to track: pass monitor='<a logged metric>', or "
                "save_top_k=-1 to keep every checkpoint"
            )

    # ------------------------------------------------------------------ public properties

    @property
    def state_key(self) -> str:
        """``ModelCheckpoint{'monitor': ..., 'mode': ..., 'every_n_train_steps': ..., 'every_n_epochs':
        ..., 'train_time_interval': ...}``, Lightning's key, so checkpoints interoperate and several
        ModelCheckpoint callbacks keep separate states."""
        key = {
            "monitor": self.monitor,
            "mode": self.mode,
            "every_n_train_steps": self._every_n_train_steps,
            "every_n_epochs": self._every_n_epochs,
            "train_time_interval": self._train_time_interval,
        }
        return f"{type(self).__qualname__}{key!r}"

    @property
    def every_n_epochs(self) -> int:
        """The epoch interval in force (1 when no trigger was given, 0 when another one was)."""
        return self._every_n_epochs

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        self.dirpath = self._resolve_ckpt_dir(trainer)
        if trainer.is_global_zero and stage == "fit":
            self._warn_if_dir_not_empty(self.dirpath)

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._validation_ran = False

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._last_time_checked = time.monotonic()

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Save when ``every_n_train_steps`` or ``train_time_interval`` is due."""
        every = self._every_n_train_steps
        interval = self._train_time_interval
        if every < 1 and interval is None:
            return  # the default: nothing to do per batch
        skip_batch = every < 1 or trainer.global_step % every != 0
        skip_time = True
        now = time.monotonic()
        if interval is not None:
            previous = self._last_time_checked
            skip_time = previous is None or (now - previous) < interval.total_seconds()
        if skip_batch and skip_time:
            return
        if not skip_time:
            self._last_time_checked = now
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None:
            if self.monitor not in candidates:
                # Not logged yet (e.g. a validation metric): save after the next validation.
                self._defer_save_until_validation = True
                return
            if (
                not self._should_save_on_train_epoch_end(trainer)
                and bool(getattr(trainer, "is_last_batch", False))
                and self._validation_follows(trainer)
            ):
                # The monitored value is from the previous validation; the one about to run is fresher.
                self._defer_save_until_validation = True
                return
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Save at the end of the training epoch (when that is where saving happens)."""
        if self._should_skip_saving_checkpoint(trainer) or not self._should_save_on_train_epoch_end(trainer):
            return
        self._save_on_schedule(trainer)

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Save after validation (when that is where saving happens)."""
        if not trainer.sanity_checking and _fitting(trainer):
            self._validation_ran = True
        if self._should_skip_saving_checkpoint(trainer) or self._should_save_on_train_epoch_end(trainer):
            return
        if self._defer_save_until_validation:
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            self._defer_save_until_validation = False
            return
        self._save_on_schedule(trainer)

    def on_train_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """With ``save_last``, make sure ``last.ckpt`` exists once training ends."""
        if self.save_last and not self._last_checkpoint_saved and not trainer.fast_dev_run:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: Any, pl_module: LightningModule, exception: BaseException) -> None:
        """With ``save_on_exception``, save a checkpoint of the interrupted run."""
        if not self._should_save_on_exception(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        filepath = self.format_checkpoint_name(candidates)
        self._save_checkpoint(trainer, filepath)
        self._save_last_checkpoint(trainer, candidates)
        self._info(
            trainer,
            f"An {type(exception).__name__} was raised with message: {exception}, saved checkpoint to {filepath}",
        )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": dict(self.best_k_models),
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the bookkeeping; from another ``dirpath`` only ``best_model_path`` (with a warning)."""
        dirpath = state_dict.get("dirpath", self.dirpath)
        if self.dirpath == dirpath:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = dict(state_dict.get("best_k_models", self.best_k_models))
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        else:
            warnings.warn(
                f"The dirpath has changed from {dirpath!r} to {self.dirpath!r}, therefore "
                "`best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and "
                "`best_k_models` won't be reloaded. Only `best_model_path` will be reloaded. Pass "
                f"ModelCheckpoint(dirpath={dirpath!r}) to continue the same top-k bookkeeping.",
                UserWarning,
                stacklevel=2,
            )
        self.best_model_path = state_dict["best_model_path"]

    def to_yaml(self, filepath: str | os.PathLike[str] | None = None) -> None:
        """Write ``best_k_models`` (path: score) as YAML, by default to ``dirpath/best_k_models.yaml``."""
        if filepath is None:
            if not self.dirpath:
                raise MisconfigurationException(
                    "ModelCheckpoint.to_yaml() writes to <dirpath>/best_k_models.yaml, but dirpath is not "
                    "known before fit starts: pass to_yaml(filepath) or give ModelCheckpoint(dirpath=...)"
                )
            filepath = os.path.join(self.dirpath, "best_k_models.yaml")
        scores = {path: score.item() for path, score in self.best_k_models.items()}
        lines = [f"{json.dumps(path)}: {_yaml_number(score)}\n" for path, score in sorted(scores.items())]
        Path(filepath).write_text("".join(lines) if lines else "{}\n", encoding="utf-8")

    # ------------------------------------------------------------------ names

    def format_checkpoint_name(
        self,
        metrics: dict[str, Any],
        filename: str | None = None,
        ver: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """The checkpoint path for ``metrics``: the template filled in, ``-v{ver}`` and ``.ckpt`` added,
        under ``dirpath``. ``ModelCheckpoint(filename='{epoch}-{val_loss:.2f}')`` gives
        ``epoch=2-val_loss=0.12.ckpt`` for ``{'epoch': 2, 'val_loss': 0.123}``."""
        name = self._format_checkpoint_name(
            filename or self.filename, metrics, prefix=prefix, auto_insert_metric_name=self.auto_insert_metric_name
        )
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        name = f"{name}{self.FILE_EXTENSION}"
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def _format_checkpoint_name(
        self,
        filename: str | None,
        metrics: dict[str, Any],
        prefix: str | None = None,
        auto_insert_metric_name: bool = True,
    ) -> str:
        if not filename:
            filename = "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        equals = self.CHECKPOINT_EQUALS_CHAR

        def fill(match: re.Match[str]) -> str:
            name, spec = match.group(1), match.group(2) or ""
            value = _number(metrics.get(name, 0))
            try:
                text = format(value, spec)
            except (ValueError, TypeError) as error:
                raise MisconfigurationException(
                    f"ModelCheckpoint(filename={filename!r}): cannot format {name}={value!r} with "
                    f"{{{name}:{spec}}} ({error}); use a format that fits the value, e.g. "
                    f"{{{name}:.2f}} for a float"
                ) from error
            return f"{name}{equals}{text}" if auto_insert_metric_name else text

        filled = _PLACEHOLDER.sub(fill, filename)
        if prefix is not None:
            filled = self.CHECKPOINT_JOIN_CHAR.join([prefix, filled])
        return filled

    def _get_metric_interpolated_filepath_name(
        self, candidates: dict[str, Any], trainer: Any, del_filepath: str | None = None
    ) -> str:
        filepath = self.format_checkpoint_name(candidates)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != del_filepath:
                filepath = self.format_checkpoint_name(candidates, ver=version)
                version += 1
        return filepath

    def _monitor_candidates(self, trainer: Any) -> dict[str, Any]:
        """The logged metrics plus ``epoch`` and ``step`` (logged ones as ints, else the Trainer's)."""
        candidates: dict[str, Any] = dict(trainer.callback_metrics)
        epoch = candidates.get("epoch")
        candidates["epoch"] = epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
        step = candidates.get("step")
        candidates["step"] = step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
        return candidates

    def _resolve_ckpt_dir(self, trainer: Any) -> str:
        """``dirpath`` if given; else under the first logger's ``save_dir/name/version``; else under
        ``default_root_dir``; with ``checkpoints`` appended."""
        if self.dirpath is not None:
            return self.dirpath
        loggers = list(getattr(trainer, "loggers", None) or [])
        if loggers:
            logger = loggers[0]
            save_dir = logger.save_dir if logger.save_dir is not None else trainer.default_root_dir
            version = logger.version
            folder = version if isinstance(version, str) else f"version_{version}"
            return os.path.join(save_dir, str(logger.name), folder, "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def _find_last_checkpoints(self, trainer: Any) -> set[str]:
        """The ``last*.ckpt`` files (``last.ckpt``, ``last-v1.ckpt``, ...) in the checkpoint directory,
        what ``fit(ckpt_path="last")`` chooses from (the newest) in a new process."""
        directory = self._resolve_ckpt_dir(trainer)
        pattern = re.compile(rf"^{re.escape(self.CHECKPOINT_NAME_LAST)}(-(\d+))?")
        if not os.path.isdir(directory):
            return set()
        return {
            os.path.normpath(os.path.join(directory, entry))
            for entry in os.listdir(directory)
            if Path(entry).suffix == self.FILE_EXTENSION and pattern.match(Path(entry).stem)
        }

    def _warn_if_dir_not_empty(self, dirpath: str) -> None:
        if self.save_top_k != 0 and os.path.isdir(dirpath) and os.listdir(dirpath):
            warnings.warn(f"Checkpoint directory {dirpath} exists and is not empty.", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ when to save

    def _should_skip_saving_checkpoint(self, trainer: Any) -> bool:
        return bool(
            trainer.fast_dev_run  # fast_dev_run turns checkpointing off
            or not _fitting(trainer)  # only fit saves
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step  # this step is saved already
        )

    def _should_save_on_exception(self, trainer: Any) -> bool:
        return bool(
            self.save_on_exception
            and not trainer.fast_dev_run
            and not trainer.sanity_checking
            and self._last_global_step_saved != trainer.global_step
        )

    def _should_save_on_train_epoch_end(self, trainer: Any) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        if getattr(trainer, "_val_check_time_interval", None) is not None:
            return False  # validation by time: save after it
        if getattr(trainer, "check_val_every_n_epoch", 1) != 1:
            return False  # not every epoch validates: save after validation, when it happens
        if _num_val_batches(trainer) == 0:
            return True  # no validation: save at the training epoch's end
        return bool(_val_check_interval(trainer) == 1.0)  # several validations per epoch: after each

    def _validation_follows(self, trainer: Any) -> bool:
        """Whether a validation runs right after the current (last) training batch."""
        if getattr(trainer, "enable_validation", True) is False or _num_val_batches(trainer) <= 0:
            return False
        every = getattr(trainer, "check_val_every_n_epoch", 1)
        return every is None or (trainer.current_epoch + 1) % every == 0

    def _save_on_schedule(self, trainer: Any) -> None:
        candidates = self._monitor_candidates(trainer)
        every = self._every_n_epochs
        if every >= 1 and (trainer.current_epoch + 1) % every == 0:
            self._save_topk_checkpoint(trainer, candidates)
        # last.ckpt follows a checkpoint saved just now (or, as a link, the newest one).
        if self._last_global_step_saved == trainer.global_step or (
            self.save_last == "link" and self._last_checkpoint_saved
        ):
            self._save_last_checkpoint(trainer, candidates)

    # ------------------------------------------------------------------ saving

    def check_monitor_top_k(self, trainer: Any, current: torch.Tensor | None = None) -> bool:
        """Whether a checkpoint scoring ``current`` belongs among the best ``save_top_k``."""
        if current is None:
            return False
        if self.save_top_k == -1:
            return True
        if len(self.best_k_models) < self.save_top_k:
            return True
        better = torch.lt if self.mode == "min" else torch.gt
        decision = bool(better(current, self.best_k_models[self.kth_best_model_path]))
        return _all_ranks_agree(trainer, decision)

    def _save_topk_checkpoint(self, trainer: Any, candidates: dict[str, Any]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            self._save_none_monitor_checkpoint(trainer, candidates)
            return
        if self.monitor not in candidates:
            message = (
                f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in the returned"
                f" metrics: {list(candidates)}."
                f" HINT: Did you call `log({self.monitor!r}, value)` in the `LightningModule`?"
            )
            if self._validation_ran:
                raise MisconfigurationException(message)
            if message not in self._warned:
                self._warned.add(message)
                warnings.warn(message, UserWarning, stacklevel=2)
        self._save_monitor_checkpoint(trainer, candidates)

    def _save_monitor_checkpoint(self, trainer: Any, candidates: dict[str, Any]) -> None:
        assert self.monitor is not None
        current = candidates.get(self.monitor)
        if current is not None and not isinstance(current, torch.Tensor):
            current = torch.tensor(current)
        if self.check_monitor_top_k(trainer, current):
            assert current is not None
            self._update_best_and_save(current, trainer, candidates)
        elif self.verbose:
            epoch, step = int(candidates["epoch"]), int(candidates["step"])
            self._info(trainer, f"Epoch {epoch:d}, global step {step:d}: {self.monitor!r} was not in top {self.save_top_k}")

    def _save_none_monitor_checkpoint(self, trainer: Any, candidates: dict[str, Any]) -> None:
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer, self.best_model_path)
        # Set before saving: the path is part of the state written into the file.
        previous, self.best_model_path = self.best_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        if self.save_top_k == 1 and previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _update_best_and_save(self, current: torch.Tensor, trainer: Any, candidates: dict[str, Any]) -> None:
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        del_filepath = None
        if len(self.best_k_models) == k and k > 0:
            del_filepath = self.kth_best_model_path
            self.best_k_models.pop(del_filepath)
        # A copy on the CPU: the score outlives this step and goes into checkpoint files.
        current = current.detach().to("cpu", copy=True).squeeze()
        if bool(torch.isnan(current)):
            current = torch.tensor(math.inf if self.mode == "min" else -math.inf)  # NaN ranks last
        filepath = self._get_metric_interpolated_filepath_name(candidates, trainer, del_filepath)
        self.current_score = current
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(self.best_k_models, key=lambda p: self.best_k_models[p].item())
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=lambda p: self.best_k_models[p].item())
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            epoch, step = int(candidates["epoch"]), int(candidates["step"])
            self._info(
                trainer,
                f"Epoch {epoch:d}, global step {step:d}: {self.monitor!r} reached {current.item():0.5f}"
                f" (best {self.best_model_score.item():0.5f}), saving model to {filepath!r} as top {k}",
            )
        self._save_checkpoint(trainer, filepath)
        if del_filepath and self._should_remove_checkpoint(trainer, del_filepath, filepath):
            self._remove_checkpoint(trainer, del_filepath)

    def _save_last_checkpoint(self, trainer: Any, candidates: dict[str, Any]) -> None:
        if not self.save_last:
            return
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != self.last_model_path:
                filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
        # Set before saving: the path is part of the state written into the file.
        previous, self.last_model_path = self.last_model_path, filepath
        if self.save_last == "link" and self._last_checkpoint_saved and self.save_top_k != 0:
            self._link_checkpoint(trainer, self._last_checkpoint_saved, filepath)
        else:
            self._save_checkpoint(trainer, filepath)
        if previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        trainer.save_checkpoint(filepath, weights_only=self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in getattr(trainer, "loggers", None) or []:
                after_save = getattr(logger, "after_save_checkpoint", None)
                if callable(after_save):
                    after_save(self)

    @staticmethod
    def _link_checkpoint(trainer: Any, filepath: str, linkpath: str) -> None:
        """Point ``linkpath`` at ``filepath`` (a relative symbolic link, or a copy where links cannot
        be made); the old ``linkpath`` stays in place until the new one replaces it."""
        if not trainer.is_global_zero or os.path.abspath(filepath) == os.path.abspath(linkpath):
            return
        if os.path.isdir(linkpath) and not os.path.islink(linkpath):
            shutil.rmtree(linkpath)
        directory = os.path.dirname(linkpath) or "."
        temporary = os.path.join(directory, f".{os.path.basename(linkpath)}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                os.symlink(os.path.relpath(filepath, directory), temporary)
            except OSError:
                # e.g. Windows without the privilege, or a filesystem without links: copy instead.
                shutil.copyfile(filepath, temporary)
            os.replace(temporary, linkpath)
        except BaseException:
            if os.path.lexists(temporary):
                os.remove(temporary)
            raise

    def file_exists(self, filepath: str | os.PathLike[str], trainer: Any) -> bool:
        """Whether ``filepath`` exists (checked on global zero, agreed by every process)."""
        exists = os.path.exists(filepath) if trainer.is_global_zero else False
        return _any_rank_says(trainer, exists)

    def _should_remove_checkpoint(self, trainer: Any, previous: str, current: str) -> bool:
        """Remove ``previous`` only if it is not the new file, lies in ``dirpath``, and is not the
        checkpoint this fit resumed from."""
        if previous == current:
            return False
        previous_path = Path(previous).absolute()
        resumed = getattr(trainer, "ckpt_path", None)
        if resumed is not None and previous_path == Path(resumed).absolute():
            return False
        assert self.dirpath is not None
        return Path(self.dirpath).absolute() in previous_path.parents

    def _remove_checkpoint(self, trainer: Any, filepath: str) -> None:
        if not trainer.is_global_zero:
            return
        if os.path.islink(filepath) or os.path.isfile(filepath):
            os.remove(filepath)
        elif os.path.isdir(filepath):  # a sharded checkpoint (FSDP) is a directory
            shutil.rmtree(filepath)

    def _info(self, trainer: Any, message: str) -> None:
        if trainer.is_global_zero:
            print(message, file=sys.stdout, flush=True)


def _fitting(trainer: Any) -> bool:
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn)) == "fit"


def _num_val_batches(trainer: Any) -> int | float:
    counts = getattr(trainer, "num_val_batches", 0)
    return sum(counts) if isinstance(counts, (list, tuple)) else counts


def _val_check_interval(trainer: Any) -> int | float:
    """The Trainer's ``val_check_interval`` (1.0, once per epoch, when not set)."""
    value = getattr(trainer, "val_check_interval", None)
    if value is None:  # a Runner keeps the flag in its loop settings
        value = getattr(getattr(trainer, "settings", None), "val_check_interval", None)
    return 1.0 if value is None else value


def _all_ranks_agree(trainer: Any, decision: bool) -> bool:
    reduce = getattr(trainer, "reduce_boolean_decision", None)
    return bool(reduce(decision)) if callable(reduce) else decision


def _any_rank_says(trainer: Any, decision: bool) -> bool:
    reduce = getattr(trainer, "reduce_boolean_decision", None)
    return bool(reduce(decision, all=False)) if callable(reduce) else decision


def _number(value: Any) -> Any:
    """A one-element tensor as a Python number (what a filename shows); anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def _yaml_number(value: float | int) -> str:
    """A number as YAML writes it (``.inf``, ``.nan``, ``1.0e-05``), so that YAML reads a float back."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(int(value))
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text
