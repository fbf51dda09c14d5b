"""``BatchSizeFinder``: the largest batch size that trains without running out of memory
(Lightning's callback).

When fit starts, the finder trains ``steps_per_trial`` steps at ``init_val``, doubles the batch size
while that succeeds, and stops at the first out-of-memory error ("power"), or then bisects between
the last success and the failure ("binsearch"). The batch size is read from and written to
``batch_arg_name`` on the model, ``model.hparams`` or the datamodule, whose dataloader hooks must
read it. Model, optimizer and trainer are put back afterwards; only the batch size changes.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any

import torch
from fulmen_core import Callback, LightningModule, MisconfigurationException, isolate_rng

from fulmen_callbacks._tuning import (
    Snapshot,
    TunerExitException,
    attribute_holders,
    get_attribute,
    require_positive_int,
    run_stage_trial,
    run_trial,
    set_attribute,
)

_MODES = ("power", "binsearch")
# The setting that limits each trial to ``steps_per_trial`` batches, per method.
_METHOD_LIMITS = {
    "fit": "max_steps",
    "validate": "limit_val_batches",
    "test": "limit_test_batches",
    "predict": "limit_predict_batches",
}


def is_oom_error(exception: BaseException) -> bool:
    """Whether ``exception`` means a device or the host ran out of memory."""
    if isinstance(exception, torch.OutOfMemoryError):
        return True
    if isinstance(exception, RuntimeError):
        message = str(exception)
        return "out of memory" in message or "can't allocate memory" in message
    return False


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _BatchCount(Callback):
    """Notes how many batches an epoch of the trial's dataloader has (the trainer forgets it
    afterwards); the search stops growing once one batch holds the whole dataset."""

    def __init__(self) -> None:
        self.num_batches: int | float = float("inf")

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.num_batches = trainer.num_training_batches

    # Evaluation trials run a few batches only: count the (first) dataloader itself.
    def on_validation_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.num_batches = _length(trainer.val_dataloaders)

    def on_test_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.num_batches = _length(trainer.test_dataloaders)

    def on_predict_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.num_batches = _length(trainer.predict_dataloaders)


def _length(loaders: Any) -> int | float:
    first = loaders[0] if isinstance(loaders, list) and loaders else loaders
    try:
        return len(first)
    except TypeError:  # an iterable without a length: assume the data is larger than a batch
        return float("inf")


class BatchSizeFinder(Callback):
    """Find the largest batch size that fits in memory when fit starts (Lightning's ``BatchSizeFinder``).

    Args:
        mode: ``"power"`` (double until out of memory) or ``"binsearch"`` (then bisect between the
            last success and the failure).
        steps_per_trial: Optimizer steps trained at each size.
        init_val: The first batch size tried.
        max_trials: The most trials (in ``"binsearch"``, successful trials) before stopping.
        batch_arg_name: The attribute the dataloader hooks read, looked up on the model,
            ``model.hparams``, the datamodule and its hparams.
        margin: In ``"binsearch"`` mode, the found size is lowered by this fraction for headroom.
        max_val: The largest batch size tried.

    Attributes:
        optimal_batch_size: The size found (``init_val`` before a search).

    Unlike Lightning, a search in which no size fitted raises an error instead of returning an
    untried or failing size, and ``max_val`` itself is tried before it is returned.
    """

    SUPPORTED_MODES = _MODES

    def __init__(
        self,
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> None:
        lowered = mode.lower() if isinstance(mode, str) else mode
        if lowered not in _MODES:
            raise MisconfigurationException(f"mode={mode!r} is not a batch size search; use one of {list(_MODES)}")
        for name, value in (("steps_per_trial", steps_per_trial), ("init_val", init_val),
                            ("max_trials", max_trials), ("max_val", max_val)):  # fmt: skip
            require_positive_int("BatchSizeFinder", name, value)
        if not 0.0 <= margin < 1.0:
            raise MisconfigurationException(f"BatchSizeFinder(margin={margin!r}) must lie in [0, 1)")
        self._mode = lowered
        self._steps_per_trial = steps_per_trial
        self._init_val = init_val
        self._max_trials = max_trials
        self._batch_arg_name = batch_arg_name
        self._margin = margin
        self._max_val = max_val
        #: Set by the Tuner: end the fit once the search is done.
        self._early_exit = False
        self.optimal_batch_size: int | None = init_val

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        if getattr(trainer, "world_size", 1) > 1:
            raise MisconfigurationException("the batch size finder does not support distributed runs")
        self._holders(pl_module)

    def _holders(self, pl_module: LightningModule, datamodule: Any = None) -> list[Any]:
        holders = attribute_holders(pl_module, self._batch_arg_name, datamodule)
        if not holders:
            name = self._batch_arg_name
            raise MisconfigurationException(
                f"batch_arg_name={name!r} was not found on the model (model.{name}), in model.hparams, "
                f"on the datamodule nor in its hparams; set self.{name} in __init__ and read it in "
                "train_dataloader(), or pass batch_arg_name= the attribute you use"
            )
        return holders

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.scale_batch_size(trainer, pl_module)

    def scale_batch_size(
        self, trainer: Any, pl_module: LightningModule, method: str = "fit", datamodule: Any = None
    ) -> None:
        """Run the search now; afterwards the found size is in ``optimal_batch_size`` and in the
        batch-size attribute, and model, optimizer and trainer are as before.

        ``method="fit"`` (from inside a fit, as ``on_fit_start`` does) trains ``steps_per_trial``
        steps per size; ``"validate"``, ``"test"`` or ``"predict"`` (outside any stage: what
        ``Tuner.scale_batch_size(method=...)`` does) runs that many batches of that stage."""
        if method not in _METHOD_LIMITS:
            raise MisconfigurationException(f"method={method!r} is not one of {list(_METHOD_LIMITS)}")
        if trainer.fast_dev_run:
            warnings.warn("Skipping batch size scaler since fast_dev_run is enabled.", UserWarning, stacklevel=2)
            self._exit()
            return
        holders = self._holders(pl_module, datamodule)
        snapshot = Snapshot(trainer, pl_module)
        tried: dict[int, bool] = {}
        count = _BatchCount()

        def fits(size: int) -> bool:
            set_attribute(holders, self._batch_arg_name, size)
            _free_memory()
            steps = self._steps_per_trial
            try:
                if method == "fit":
                    run_trial(trainer, [count], max_steps=steps, limit_train_batches=1.0,
                              limit_val_batches=steps, num_sanity_val_steps=0)  # fmt: skip
                else:
                    run_stage_trial(trainer, method, pl_module, datamodule, [count], **{_METHOD_LIMITS[method]: steps})
            except BaseException as exception:
                if not is_oom_error(exception):
                    raise
                _free_memory()
                tried[size] = False
                return False
            finally:
                snapshot.restore()
            tried[size] = True
            return True

        original = get_attribute(holders, self._batch_arg_name)
        found = 0
        try:
            with isolate_rng():
                if self._mode == "power":
                    found = self._power(count, fits)
                else:
                    found = self._binsearch(count, fits)
        finally:
            set_attribute(holders, self._batch_arg_name, found if found else original)
        if not found:
            sizes = ", ".join(str(s) for s in tried)
            raise MisconfigurationException(
                f"the batch size finder ran out of memory at every size it tried ({sizes}; init_val="
                f"{self._init_val}); free memory on the device, make the model or inputs smaller, or "
                f"raise max_trials (={self._max_trials}) so that smaller sizes are tried"
            )
        if self._mode == "binsearch" and self._margin > 0:
            reduced = max(1, int(found * (1 - self._margin)))
            if reduced != found:
                found = reduced
                set_attribute(holders, self._batch_arg_name, found)
        self.optimal_batch_size = found
        self._exit()

    def _next_up(self, count: _BatchCount, size: int) -> int:
        """Double ``size`` (capped at ``max_val``); ``size`` itself when one batch already holds the
        whole dataset or the cap is reached, which ends the search."""
        if count.num_batches <= 1:
            return size
        return min(size * 2, self._max_val)

    def _power(self, count: _BatchCount, fits: Callable[[int], bool]) -> int:
        size = min(self._init_val, self._max_val)
        best = 0
        for trial in range(self._max_trials):
            if fits(size):
                best = size
                bigger = self._next_up(count, size)
                if trial + 1 >= self._max_trials or bigger == size:
                    break
                size = bigger
            else:
                if best:
                    break  # the last success, half the failing size, is the answer
                size //= 2  # the very first size failed: go down, as Lightning does
                if size < 1:
                    break
        return best

    def _binsearch(self, count: _BatchCount, fits: Callable[[int], bool]) -> int:
        size = min(self._init_val, self._max_val)
        low, high = 0, 0  # largest success, smallest failure (0: none yet)
        successes = 0
        while True:
            if fits(size):
                low = size
                successes += 1
                if successes >= self._max_trials:
                    break
                following = (low + high) // 2 if high else self._next_up(count, size)
            else:
                high = size
                following = (low + high) // 2
            if following < 1 or following in (low, high) or (following == size):
                break
            size = following
        return low

    def _exit(self) -> None:
        if self._early_exit:
            raise TunerExitException()
