"""``LearningRateFinder``: the learning-rate range test (Lightning's callback and ``_LRFinder``).

When fit starts, the finder trains up to ``num_training_steps`` optimizer steps while the learning
rate grows from ``min_lr`` to ``max_lr``, records the smoothed loss at each step, stops early when
the loss diverges, then puts the model, optimizer and trainer back as they were and (with
``update_attr``) sets the model's ``lr``/``learning_rate`` to the suggestion. The numbers are
Lightning's: the same schedule, smoothing, early stop and suggestion give the same floats.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import Callback, LightningModule, MisconfigurationException, isolate_rng

from fulmen_callbacks._tuning import (
    Snapshot,
    TunerExitException,
    attribute_holders,
    require_positive_int,
    run_trial,
    set_attribute,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

_MODES = ("linear", "exponential")


def _check_mode(mode: str) -> str:
    lowered = mode.lower() if isinstance(mode, str) else mode
    if lowered not in _MODES:
        raise MisconfigurationException(f"mode={mode!r} is not a learning-rate schedule; use one of {list(_MODES)}")
    return lowered


def scheduled_lr(mode: str, min_lr: float, max_lr: float, num_training: int, step: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as Lightning schedules it: ``min_lr``
    first, then step ``k`` at fraction ``(k + 1) / num_training`` of the way to ``max_lr``."""
    if step == 0:
        return min_lr
    fraction = (step + 1) / num_training
    if mode == "linear":
        return min_lr + fraction * (max_lr - min_lr)
    return float(min_lr * (max_lr / min_lr) ** fraction)  # float ** float is typed Any


class LRFinderResult:
    """What a range test recorded (Lightning's ``_LRFinder``): ``results = {"lr": [...], "loss": [...]}``
    with one entry per optimizer step, the loss smoothed."""

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        self.mode = _check_mode(mode)
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.num_training = num_training
        self.results: dict[str, list[float]] = {"lr": [], "loss": []}
        self._optimal_idx: int | None = None

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The learning rate where the smoothed loss falls fastest (steepest negative gradient of
        loss over lr), skipping ``skip_begin`` points at the start and ``skip_end`` at the end and any
        non-finite loss; ``None`` (with a warning) when fewer than two points remain.

        Unlike Lightning, ``skip_end=0`` keeps the points up to the end (Lightning's slice
        ``[skip_begin:-0]`` is empty and it gives no suggestion).
        """
        losses_all = self.results["loss"]
        stop = len(losses_all) - skip_end if skip_end > 0 else len(losses_all)
        indices = [i for i in range(skip_begin, max(skip_begin, stop)) if math.isfinite(losses_all[i])]
        if len(indices) < 2:
            warnings.warn(
                f"no learning-rate suggestion: {len(indices)} finite loss point(s) remain after skipping "
                f"{skip_begin} at the start and {skip_end} at the end of {len(losses_all)}; raise "
                "num_training (or the number of training batches) or lower skip_begin/skip_end",
                UserWarning,
                stacklevel=2,
            )
            self._optimal_idx = None
            return None
        # float32 tensors from the Python floats, as Lightning builds them, so the argmin agrees.
        losses = torch.tensor([losses_all[i] for i in indices])
        lrs = torch.tensor([self.results["lr"][i] for i in indices])
        gradients = torch.gradient(losses, spacing=[lrs])[0]
        self._optimal_idx = indices[int(torch.argmin(gradients).item())]
        return self.results["lr"][self._optimal_idx]

    def plot(self, suggest: bool = False, show: bool = False, ax: Axes | None = None) -> Figure | SubFigure:
        """Loss over learning rate (log x-axis in exponential mode); ``suggest`` marks the suggestion
        with a red dot; ``ax`` draws into existing axes. Needs matplotlib (``pip install matplotlib``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ModuleNotFoundError(
                "LRFinderResult.plot needs matplotlib: pip install matplotlib (or pip install "
                "'fulmen-callbacks[plot]')"
            ) from err
        lrs = self.results["lr"]
        losses = self.results["loss"]
        figure: Figure | SubFigure
        if ax is None:
            figure, ax = plt.subplots()
        else:
            figure = ax.figure
        ax.plot(lrs, losses)
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest:
            self.suggestion()
            if self._optimal_idx is not None:
                index = self._optimal_idx
                ax.plot(lrs[index], losses[index], markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return figure


class _Recorder(Callback):
    """Drives the learning rate before each step and records the smoothed loss after it."""

    def __init__(self, finder: LRFinderResult, early_stop_threshold: float | None, beta: float = 0.98) -> None:
        self.finder = finder
        self.early_stop_threshold = early_stop_threshold
        self.beta = beta
        self.avg_loss = 0.0
        self.best_loss = 0.0
        self._steps_seen = 0
        self._lr = finder.lr_min

    def on_train_batch_start(self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        # The step count only moves when the optimizer steps, so every batch of an accumulation
        # window trains at the same rate.
        finder = self.finder
        self._lr = scheduled_lr(finder.mode, finder.lr_min, finder.lr_max, finder.num_training, trainer.global_step)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self._lr

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._steps_seen:
            return  # an accumulating batch: the optimizer has not stepped
        self._steps_seen = step
        results = self.finder.results
        results["lr"].append(self._lr)
        loss = outputs if isinstance(outputs, torch.Tensor) else outputs.get("loss") if isinstance(outputs, Mapping) else None
        if loss is None:
            # A skipped batch (training_step returned None) has no loss; NaN keeps lr and loss
            # aligned and is left out of the suggestion.
            results["loss"].append(math.nan)
            return
        # Exponential moving average with bias correction; the correction's exponent is the step
        # count after the step, plus one, as in Lightning.
        self.avg_loss = self.beta * self.avg_loss + (1 - self.beta) * float(loss.item())
        smoothed = self.avg_loss / (1 - self.beta ** (step + 1))
        threshold = self.early_stop_threshold
        if threshold is not None and step > 1 and smoothed > threshold * self.best_loss:
            trainer.should_stop = True  # diverging
        if smoothed < self.best_loss or step == 1:
            self.best_loss = smoothed
        results["loss"].append(smoothed)


def _lr_attribute(module: LightningModule, attr_name: str) -> str:
    if attr_name:
        if not attribute_holders(module, attr_name):
            raise MisconfigurationException(
                f"lr_find(attr_name={attr_name!r}): neither the model, model.hparams nor the datamodule "
                f"has {attr_name!r}; set it in __init__ (self.{attr_name} = ...) or pass update_attr=False"
            )
        return attr_name
    for name in ("lr", "learning_rate"):
        if attribute_holders(module, name):
            return name
    raise MisconfigurationException(
        "lr_find(update_attr=True) found neither 'lr' nor 'learning_rate' on the model or model.hparams; "
        "set self.lr in __init__, name your attribute with attr_name=..., or pass update_attr=False"
    )


class LearningRateFinder(Callback):
    """Run a learning-rate range test when fit starts (Lightning's ``LearningRateFinder``).

    Args:
        min_lr: The learning rate of the first step.
        max_lr: The learning rate the schedule reaches at step ``num_training_steps``.
        num_training_steps: How many optimizer steps (learning rates) to try.
        mode: ``"exponential"`` (geometric steps, the default) or ``"linear"``.
        early_stop_threshold: Stop when the smoothed loss exceeds this times the best one; ``None``
            never stops early.
        update_attr: Set the model's learning-rate attribute (and the optimizer) to the suggestion.
        attr_name: That attribute's name; ``""`` looks for ``lr`` then ``learning_rate`` on the model
            and ``model.hparams``.

    Attributes:
        optimal_lr: The :class:`LRFinderResult` of the last search (``None`` before).
    """

    SUPPORTED_MODES = _MODES

    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> None:
        self._mode = _check_mode(mode)
        if not 0 < min_lr < max_lr:
            raise MisconfigurationException(
                f"LearningRateFinder(min_lr={min_lr}, max_lr={max_lr}) needs 0 < min_lr < max_lr"
            )
        require_positive_int("LearningRateFinder", "num_training_steps", num_training_steps)
        self._min_lr = min_lr
        self._max_lr = max_lr
        self._num_training_steps = num_training_steps
        self._early_stop_threshold = early_stop_threshold
        self._update_attr = update_attr
        self._attr_name = attr_name
        #: Set by the Tuner: end the fit once the search is done.
        self._early_exit = False
        self.optimal_lr: LRFinderResult | None = None

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.lr_find(trainer, pl_module)

    def lr_find(self, trainer: Any, pl_module: LightningModule) -> None:
        """Run the search now and leave model, optimizer and trainer as they were (but for the
        learning rate, with ``update_attr``)."""
        if trainer.fast_dev_run:
            warnings.warn("Skipping learning rate finder since fast_dev_run is enabled.", UserWarning, stacklevel=2)
            self._exit()
            return
        attribute = _lr_attribute(pl_module, self._attr_name) if self._update_attr else ""
        optimizers = list(trainer.optimizers)
        if len(optimizers) != 1:
            raise MisconfigurationException(
                f"configure_optimizers returned {len(optimizers)} optimizers; the learning rate finder "
                "works with exactly one"
            )
        result = LRFinderResult(self._mode, self._min_lr, self._max_lr, self._num_training_steps)
        recorder = _Recorder(result, self._early_stop_threshold)
        snapshot = Snapshot(trainer, pl_module)
        schedulers = trainer.lr_scheduler_configs
        # The global RNG is restored afterwards, so the real fit draws the same batches and dropout
        # as it would have without the search (Lightning isolates it the same way).
        with isolate_rng():
            try:
                # The user's schedulers would fight the range schedule.
                trainer.lr_scheduler_configs = []
                steps = self._num_training_steps
                run_trial(trainer, [recorder], max_steps=steps, limit_val_batches=steps, num_sanity_val_steps=0)
            finally:
                trainer.lr_scheduler_configs = schedulers
                snapshot.restore()
        self.optimal_lr = result
        if not any(math.isfinite(loss) for loss in result.results["loss"]):
            raise MisconfigurationException(
                f"the learning rate finder recorded no finite loss in {len(result.results['loss'])} step(s) "
                f"between min_lr={self._min_lr} and max_lr={self._max_lr} (num_training={steps}): check "
                "that training_step returns the loss, that the data has batches, and lower max_lr"
            )
        if self._update_attr:
            lr = result.suggestion()
            if lr is not None:
                set_attribute(attribute_holders(pl_module, attribute), attribute, lr)
                for optimizer in optimizers:
                    for group in optimizer.param_groups:
                        group["lr"] = lr
        self._exit()

    def _exit(self) -> None:
        if self._early_exit:
            raise TunerExitException()
