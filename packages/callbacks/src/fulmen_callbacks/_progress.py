"""``TQDMProgressBar``: Lightning's default progress bar, drawn with tqdm, redrawn sparingly.

tqdm is imported when the first bar is created, not when this module is imported, so that
``import fulmen_callbacks`` stays cheap.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
import sys
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from fulmen_core import Callback, LightningModule

if TYPE_CHECKING:
    from tqdm import tqdm

_Metric = Union[int, str, float, dict[str, float]]

_monotonic = time.monotonic


def _tqdm_class() -> type[tqdm[Any]]:
    # Lightning draws notebook widgets when ipywidgets is installed (tqdm.auto picks the widget in
    # Jupyter and the terminal bar elsewhere); the same choice here.
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm
    from tqdm import tqdm as std_tqdm

    return std_tqdm


def _finite(total: int | float | None) -> int | None:
    """A batch count tqdm can show: ``None`` for an unknown (infinite or NaN) length."""
    if total is None or math.isinf(total) or math.isnan(total):
        return None
    return int(total)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        # No isatty, or a closed stream: treat it as a file, the cautious choice.
        return False


def format_metric(value: object) -> str:
    """A progress-bar value as Lightning shows it: numbers in three significant digits (tqdm's
    ``format_num``), floats padded with zeros to five characters so the bar does not flicker as
    digits come and go (``1.000``, ``0.500``, ``0.0442``, ``8.17e-5``)."""
    if isinstance(value, str):
        return value.strip()
    if not isinstance(value, numbers.Number) or isinstance(value, complex):
        return str(value).strip()
    # tqdm's format_num: .3g with the exponent's leading zero dropped, if that is shorter.
    compact = f"{value:.3g}".replace("e+0", "e+").replace("e-0", "e-")
    plain = str(value)
    text = compact if len(compact) < len(plain) else plain
    if not isinstance(value, float) or "e" in text or not math.isfinite(value):
        return text
    if "." not in text and len(text) < 5:
        text += "."
    return text.ljust(5, "0")


def format_metrics(metrics: Mapping[str, object]) -> str:
    """The bar's postfix for ``metrics``: ``"v_num=0, loss=0.123"``."""
    return ", ".join(f"{name}={format_metric(value)}" for name, value in metrics.items())


class TQDMProgressBar(Callback):
    r"""Lightning's default progress bar: printed to ``stdout`` with tqdm, up to four bars.

    - sanity check: ``Sanity Checking DataLoader 0: 100%|...| 2/2 [...]``
    - training, one per epoch: ``Epoch 3:  37%|...| 3/8 [00:00<00:00, 12.3it/s, v_num=0, loss=0.123]``
      with ``get_metrics()`` (the values logged with ``prog_bar=True`` and the logger's version)
    - validation (below the training bar during fit), test and predict: ``Validation DataLoader 0``

    Args:
        refresh_rate: Redraw every this many batches; 0 turns the bars off.
        process_position: Offset the bars by this many (pairs of) lines, to keep bars printed by
            another process or library in place.
        leave: Keep each finished epoch's bar on screen (one line per epoch) instead of one bar
            reused for every epoch.
        mininterval: Fewest seconds between two redraws of a bar (an addition to Lightning's
            arguments). ``None``: ``$TQDM_MININTERVAL`` if set, else 0.1 s when ``stdout`` is a
            terminal and :attr:`NON_TTY_MININTERVAL` otherwise, so that a log file gets a line
            every few seconds rather than one per batch. The last batch of an epoch, and the ends
            of epochs and stages, are always drawn. ``0`` redraws every ``refresh_rate`` batches,
            as Lightning does.

    Cost per batch when no redraw is due: a modulo, a clock read and a comparison. The metrics
    (``trainer.progress_bar_metrics``, which converts tensors to numbers) are read only on redraws.
    """

    BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
    NON_TTY_MININTERVAL = 10.0
    """Seconds between redraws when ``stdout`` is not a terminal (a file, a pipe, a CI log)."""

    def __init__(
        self,
        refresh_rate: int = 1,
        process_position: int = 0,
        leave: bool = False,
        *,
        mininterval: float | None = None,
    ) -> None:
        if refresh_rate < 0:
            raise ValueError(f"refresh_rate={refresh_rate} must be >= 0 (0 turns the progress bar off)")
        if process_position < 0:
            raise ValueError(f"process_position={process_position} must be >= 0")
        if mininterval is not None and mininterval < 0:
            raise ValueError(f"mininterval={mininterval} must be >= 0 seconds (or None for the default)")
        self._refresh_rate = self._resolve_refresh_rate(refresh_rate)
        self._process_position = process_position
        self._leave = leave
        self._mininterval = mininterval
        self._enabled = True
        self._trainer: Any = None
        self._current_eval_dataloader_idx: int | None = None
        self._warned_duplicates = False
        self._train_progress_bar: tqdm[Any] | None = None
        self._val_progress_bar: tqdm[Any] | None = None
        self._test_progress_bar: tqdm[Any] | None = None
        self._predict_progress_bar: tqdm[Any] | None = None
        # What the per-batch hooks need, kept in plain attributes so that a batch with no redraw
        # due reads no property and no metric. `_eval_bar` is whichever of the sanity, validation,
        # test and predict bars is running (they never run at the same time).
        self._interval = 0.0
        self._train_total: int | None = None
        self._train_n = 0
        self._train_drawn_at = 0.0
        self._eval_bar: tqdm[Any] | None = None
        self._eval_total: int | None = None
        self._eval_n = 0
        self._eval_drawn_at = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # tqdm objects hold a lock and a stream: a pickled or deep-copied callback starts without bars.
        state = dict(vars(self))
        for name in ("_train_progress_bar", "_val_progress_bar", "_test_progress_bar", "_predict_progress_bar", "_eval_bar"):
            state[name] = None
        state["_trainer"] = None
        return state

    # ------------------------------------------------------------------ settings

    @staticmethod
    def _resolve_refresh_rate(refresh_rate: int) -> int:
        # Lightning's adjustments: Colab's output cell chokes on a redraw per batch, and tqdm's
        # own TQDM_MINITERS is honoured as a lower bound.
        if os.getenv("COLAB_GPU") and refresh_rate == 1:
            return 20
        miniters = os.environ.get("TQDM_MINITERS")
        if miniters:
            try:
                return max(int(miniters), refresh_rate)
            except ValueError:
                warnings.warn(f"TQDM_MINITERS={miniters!r} is not an int; ignored", stacklevel=3)
        return refresh_rate

    def _resolve_interval(self) -> float:
        if self._mininterval is not None:
            return self._mininterval
        env = os.environ.get("TQDM_MININTERVAL")
        if env:
            try:
                return max(0.0, float(env))
            except ValueError:
                warnings.warn(f"TQDM_MININTERVAL={env!r} is not a number; ignored", stacklevel=3)
        return 0.1 if _isatty(sys.stdout) else self.NON_TTY_MININTERVAL

    @property
    def refresh_rate(self) -> int:
        """Redraw every this many batches (0: off)."""
        return self._refresh_rate

    @property
    def process_position(self) -> int:
        """The bars' line offset."""
        return self._process_position

    @property
    def is_enabled(self) -> bool:
        """Whether bars are drawn: enabled and a refresh rate above 0."""
        return self._enabled and self._refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        """The opposite of :attr:`is_enabled`."""
        return not self.is_enabled

    def enable(self) -> None:
        """Draw bars again (from the next stage, epoch or dataloader on)."""
        self._enabled = True

    def disable(self) -> None:
        """Stop drawing bars; the Trainer calls this on every process but global zero."""
        self._enabled = False

    @property
    def trainer(self) -> Any:
        """The Trainer this bar reports on; set in ``setup``."""
        if self._trainer is None:
            raise TypeError(f"The `{type(self).__name__}._trainer` reference has not been set yet (setup sets it)")
        return self._trainer

    # ------------------------------------------------------------------ descriptions and totals

    @property
    def sanity_check_description(self) -> str:
        return "Sanity Checking"

    @property
    def train_description(self) -> str:
        return "Training"

    @property
    def validation_description(self) -> str:
        return "Validation"

    @property
    def test_description(self) -> str:
        return "Testing"

    @property
    def predict_description(self) -> str:
        return "Predicting"

    @property
    def total_train_batches(self) -> int | float:
        """Batches in this training epoch (``inf`` for an unsized dataloader); when only
        ``max_steps`` bounds the run, no more than the batches left to reach it."""
        trainer = self.trainer
        batches: int | float = trainer.num_training_batches
        max_steps = trainer.max_steps
        if trainer.max_epochs == -1 and max_steps is not None and max_steps > 0:
            accumulate = getattr(trainer, "accumulate_grad_batches", 1)
            batches = min(batches, (max_steps - trainer.global_step) * accumulate)
        return batches

    def _current(self, batches: Any) -> int | float:
        if isinstance(batches, (list, tuple)):
            index = self._current_eval_dataloader_idx or 0
            return batches[index] if index < len(batches) else math.inf
        return float(batches) if batches is not None else math.inf

    @property
    def total_val_batches_current_dataloader(self) -> int | float:
        """Validation (or sanity check) batches of the current dataloader."""
        trainer = self.trainer
        return self._current(trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches)

    @property
    def total_test_batches_current_dataloader(self) -> int | float:
        """Test batches of the current dataloader."""
        return self._current(self.trainer.num_test_batches)

    @property
    def total_predict_batches_current_dataloader(self) -> int | float:
        """Predict batches of the current dataloader."""
        return self._current(self.trainer.num_predict_batches)

    def has_dataloader_changed(self, dataloader_idx: int) -> bool:
        """Record ``dataloader_idx`` as current; whether it differs from the one before."""
        previous = self._current_eval_dataloader_idx
        self._current_eval_dataloader_idx = dataloader_idx
        return previous != dataloader_idx

    def reset_dataloader_idx_tracker(self) -> None:
        self._current_eval_dataloader_idx = None

    # ------------------------------------------------------------------ the bars

    def _bar_property(self, attribute: str) -> tqdm[Any]:
        bar: tqdm[Any] | None = getattr(self, attribute)
        if bar is None:
            raise TypeError(f"The `{type(self).__name__}.{attribute}` reference has not been set yet.")
        return bar

    @property
    def train_progress_bar(self) -> tqdm[Any]:
        return self._bar_property("_train_progress_bar")

    @train_progress_bar.setter
    def train_progress_bar(self, bar: tqdm[Any]) -> None:
        self._train_progress_bar = bar

    @property
    def val_progress_bar(self) -> tqdm[Any]:
        return self._bar_property("_val_progress_bar")

    @val_progress_bar.setter
    def val_progress_bar(self, bar: tqdm[Any]) -> None:
        self._val_progress_bar = bar

    @property
    def test_progress_bar(self) -> tqdm[Any]:
        return self._bar_property("_test_progress_bar")

    @test_progress_bar.setter
    def test_progress_bar(self, bar: tqdm[Any]) -> None:
        self._test_progress_bar = bar

    @property
    def predict_progress_bar(self) -> tqdm[Any]:
        return self._bar_property("_predict_progress_bar")

    @predict_progress_bar.setter
    def predict_progress_bar(self, bar: tqdm[Any]) -> None:
        self._predict_progress_bar = bar

    def _new_bar(self, desc: str, position: int, leave: bool, smoothing: float | None = None) -> tqdm[Any]:
        self._interval = self._resolve_interval()
        options: dict[str, Any] = {}
        if smoothing is not None:
            options["smoothing"] = smoothing
        return _tqdm_class()(
            desc=desc,
            position=position,
            disable=self.is_disabled,
            leave=leave,
            dynamic_ncols=True,
            file=sys.stdout,
            bar_format=self.BAR_FORMAT,
            **options,
        )

    def init_sanity_tqdm(self) -> tqdm[Any]:
        """The bar of the validation sanity check; override to customize it."""
        return self._new_bar(self.sanity_check_description, 2 * self._process_position, leave=False)

    def init_train_tqdm(self) -> tqdm[Any]:
        """The training bar; override to customize it. Its rate is the epoch's average (smoothing 0)."""
        return self._new_bar(self.train_description, 2 * self._process_position, leave=True, smoothing=0)

    def init_validation_tqdm(self) -> tqdm[Any]:
        """The validation bar: under the training bar during fit, on its own line in ``validate``."""
        has_main_bar = self._train_progress_bar is not None
        return self._new_bar(
            self.validation_description, 2 * self._process_position + int(has_main_bar), leave=not has_main_bar
        )

    def init_test_tqdm(self) -> tqdm[Any]:
        """The test bar; override to customize it."""
        return self._new_bar(self.test_description, 2 * self._process_position, leave=True)

    def init_predict_tqdm(self) -> tqdm[Any]:
        """The predict bar; override to customize it."""
        return self._new_bar(self.predict_description, 2 * self._process_position, leave=True, smoothing=0)

    def _restart(self, bar: tqdm[Any], total: int | float | None, desc: str) -> None:
        # Set everything first and let reset() draw once, rather than a draw per change.
        bar.total = _finite(total)
        bar.initial = 0
        bar.set_description(desc, refresh=False)
        bar.reset()

    def _postfix(self, trainer: Any, pl_module: LightningModule) -> str:
        return format_metrics(self.get_metrics(trainer, pl_module))

    def _draw_train(self, trainer: Any, pl_module: LightningModule) -> None:
        bar = self._train_progress_bar
        if bar is None or bar.disable:
            return
        bar.n = self._train_n
        bar.set_postfix_str(self._postfix(trainer, pl_module), refresh=False)
        bar.refresh()
        self._train_drawn_at = _monotonic()

    def _flush_eval(self) -> None:
        """Draw the running evaluation bar at its last batch if a throttled redraw skipped it."""
        bar = self._eval_bar
        if bar is not None and not bar.disable and bar.n != self._eval_n:
            bar.n = self._eval_n
            bar.refresh()

    def _start_eval(self, bar: tqdm[Any]) -> tqdm[Any]:
        self._eval_bar = bar
        self._eval_n = 0
        self.reset_dataloader_idx_tracker()
        return bar

    def _close_eval(self) -> None:
        self._flush_eval()
        if self._eval_bar is not None:
            self._eval_bar.close()
        self._eval_bar = None
        self._eval_n = 0
        self.reset_dataloader_idx_tracker()

    def _eval_batch_start(self, bar: tqdm[Any] | None, total: Any, desc: str, dataloader_idx: int) -> None:
        if bar is None or not self.has_dataloader_changed(dataloader_idx):
            return
        self._flush_eval()
        self._eval_n = 0
        self._eval_total = _finite(self._current(total))
        self._restart(bar, self._eval_total, f"{desc} DataLoader {dataloader_idx}")
        self._eval_drawn_at = _monotonic()

    def _eval_batch_end(self, batch_idx: int) -> None:
        n = batch_idx + 1
        self._eval_n = n
        bar = self._eval_bar
        if bar is None or not self._enabled:
            return
        if n % self._refresh_rate and n != self._eval_total:
            return
        now = _monotonic()
        if n != self._eval_total and now - self._eval_drawn_at < self._interval:
            return
        self._eval_drawn_at = now
        bar.n = n
        bar.refresh()

    # ------------------------------------------------------------------ metrics

    def get_metrics(self, trainer: Any, pl_module: LightningModule) -> dict[str, _Metric]:
        """What the training bar shows after the rate: the logger's version as ``v_num`` (when a
        logger exists; the last 4 characters of a string version) and every value logged with
        ``prog_bar=True``. Override to add or drop items."""
        standard = get_standard_metrics(trainer)
        bar_metrics: Mapping[str, float] = trainer.progress_bar_metrics
        if not self._warned_duplicates:
            duplicates = sorted(standard.keys() & bar_metrics.keys())
            if duplicates:
                self._warned_duplicates = True
                warnings.warn(
                    f"The progress bar already tracks a metric with the name(s) '{', '.join(duplicates)}' and "
                    f"`self.log('{duplicates[0]}', ..., prog_bar=True)` will overwrite this value. If this is "
                    "undesired, change the name or override `get_metrics()` in the progress bar callback.",
                    stacklevel=2,
                )
        return {**standard, **bar_metrics}

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        """Print above the running bar without breaking it (``tqdm.write``)."""
        for bar in (self._train_progress_bar, self._eval_bar, self._val_progress_bar, self._test_progress_bar, self._predict_progress_bar):
            if bar is not None and not bar.disable:
                bar.write(sep.join(map(str, args)), **kwargs)
                return

    # ------------------------------------------------------------------ hooks

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer
        if not getattr(trainer, "is_global_zero", True):
            self.disable()

    def on_sanity_check_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if self.is_enabled:
            self._val_progress_bar = self._start_eval(self.init_sanity_tqdm())

    def on_sanity_check_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._close_eval()
        self._val_progress_bar = None

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        # With leave=True each epoch makes its own bar, so none is made here (Lightning makes one
        # that is replaced before it is ever used, and never closed).
        if self.is_enabled and not self._leave:
            self._train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._train_n = 0
        if not self.is_enabled:
            return
        if self._leave or self._train_progress_bar is None:
            self._train_progress_bar = self.init_train_tqdm()
        self._train_total = _finite(self.total_train_batches)
        self._restart(self._train_progress_bar, self._train_total, f"Epoch {trainer.current_epoch}")
        self._train_drawn_at = _monotonic()

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = batch_idx + 1
        self._train_n = n
        if self._train_progress_bar is None or not self._enabled:
            return
        if n % self._refresh_rate and n != self._train_total:
            return
        now = _monotonic()
        if n != self._train_total and now - self._train_drawn_at < self._interval:
            return
        self._draw_train(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        bar = self._train_progress_bar
        if bar is None:
            return
        if self._enabled:
            # The epoch's final state, with the epoch-level metrics that were just computed.
            self._draw_train(trainer, pl_module)
        if self._leave:
            bar.close()

    def on_train_end(self, trainer: Any, pl_module: LightningModule) -> None:
        if self._train_progress_bar is not None:
            self._train_progress_bar.close()
        self._train_progress_bar = None

    def on_validation_start(self, trainer: Any, pl_module: LightningModule) -> None:
        # The sanity check runs the validation hooks too; its bar was made in on_sanity_check_start.
        if not trainer.sanity_checking and self.is_enabled:
            self._val_progress_bar = self._start_eval(self.init_validation_tqdm())

    def on_validation_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        sanity = trainer.sanity_checking
        self._eval_batch_start(
            self._eval_bar,
            trainer.num_sanity_val_batches if sanity else trainer.num_val_batches,
            self.sanity_check_description if sanity else self.validation_description,
            dataloader_idx,
        )

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_batch_end(batch_idx)

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            # on_sanity_check_end closes the sanity bar; nothing else is shown yet.
            self._flush_eval()
            return
        self._close_eval()
        self._val_progress_bar = None
        if self._train_progress_bar is not None and self._enabled:
            # Validation ran inside fit: show its metrics (val_loss, ...) on the training bar.
            self._draw_train(trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if self.is_enabled:
            self._test_progress_bar = self._start_eval(self.init_test_tqdm())

    def on_test_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_start(self._eval_bar, trainer.num_test_batches, self.test_description, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_batch_end(batch_idx)

    def on_test_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._close_eval()

    def on_predict_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if self.is_enabled:
            self._predict_progress_bar = self._start_eval(self.init_predict_tqdm())

    def on_predict_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_batch_start(self._eval_bar, trainer.num_predict_batches, self.predict_description, dataloader_idx)

    def on_predict_batch_end(
        self,
        trainer: Any,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._eval_batch_end(batch_idx)

    def on_predict_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._close_eval()

    def on_exception(self, trainer: Any, pl_module: LightningModule, exception: BaseException) -> None:
        # Close the bars so that the traceback starts on a line of its own (Lightning leaves them).
        self._close_eval()
        for name in ("_val_progress_bar", "_train_progress_bar"):
            bar: tqdm[Any] | None = getattr(self, name)
            if bar is not None:
                bar.close()
            setattr(self, name, None)


def get_standard_metrics(trainer: Any) -> dict[str, int | str]:
    """The items every training bar shows: ``v_num``, the loggers' version (several loggers'
    distinct versions joined by ``_``; a string shortened to its last 4 characters)."""
    loggers = getattr(trainer, "loggers", None)
    if not loggers:
        return {}
    version: int | str | None
    if len(loggers) == 1:
        version = loggers[0].version
    else:
        version = "_".join(dict.fromkeys(str(logger.version) for logger in loggers))
    if version is None or version == "":
        return {}
    if isinstance(version, str):
        version = version[-4:]
    return {"v_num": version}
