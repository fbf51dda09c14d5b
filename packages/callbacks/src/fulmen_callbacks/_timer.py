"""``Timer``: time the training, validation, test and predict loops, and stop training at a time
limit (Lightning's callback)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fulmen_core import Callback, LightningModule, MisconfigurationException

#: The stages a Timer reports on (Lightning's ``RunningStage`` values).
STAGES = ("train", "sanity_check", "validate", "test", "predict")
_INTERVALS = ("step", "epoch")
_DURATION = re.compile(r"(\d+):(\d\d):(\d\d):(\d\d)")


def _parse_duration(duration: str | timedelta | Mapping[str, int] | None) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    if isinstance(duration, str):
        found = _DURATION.fullmatch(duration.strip())
        if not found:
            raise MisconfigurationException(
                f"`Timer(duration={duration!r})` is not a valid duration. Expected a string in the "
                "format DD:HH:MM:SS, e.g. '00:12:00:00' for 12 hours."
            )
        days, hours, minutes, seconds = (int(part) for part in found.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
    if isinstance(duration, Mapping):
        try:
            return timedelta(**duration).total_seconds()
        except TypeError as err:
            raise MisconfigurationException(
                f"`Timer(duration={dict(duration)!r})`: {err}. The dict's keys must be arguments of "
                "datetime.timedelta (weeks, days, hours, minutes, seconds, milliseconds, microseconds)."
            ) from err
    raise MisconfigurationException(
        f"`Timer(duration={duration!r})`: expected a 'DD:HH:MM:SS' string, a datetime.timedelta or a "
        f"dict of timedelta arguments, got {type(duration).__qualname__}."
    )


def _stage(stage: str) -> str:
    value = getattr(stage, "value", stage)  # an enum member whose value is a stage name
    if value not in STAGES:
        raise ValueError(f"{stage!r} is not a valid stage; use one of {', '.join(map(repr, STAGES))}")
    return str(value)


class Timer(Callback):
    """Track the time spent in the training, validation, test and predict loops, and stop training
    when ``duration`` has passed.

    Args:
        duration: The time limit for training: a ``"DD:HH:MM:SS"`` string (days, hours, minutes,
            seconds), a :class:`datetime.timedelta`, or a dict of ``timedelta`` arguments
            (``dict(weeks=4, days=2)``). ``None``: measure only.
        interval: Check the limit after every training batch (``"step"``) or at the end of every
            training epoch (``"epoch"``).
        verbose: Print a line when the limit stops training.

    Times are seconds of :func:`time.monotonic`. ``stage`` is one of ``"train"``, ``"validate"``,
    ``"test"``, ``"predict"`` (``"sanity_check"`` is accepted and never timed; the sanity check
    counts as validation, as in Lightning).

    Raises:
        MisconfigurationException: If ``duration`` is not in one of the formats above, or
            ``interval`` is neither ``"step"`` nor ``"epoch"``.
    """

    def __init__(
        self,
        duration: str | timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ) -> None:
        seconds = _parse_duration(duration)
        if interval not in _INTERVALS:
            raise MisconfigurationException(
                f"Unsupported parameter value `Timer(interval={interval})`. Possible choices are: "
                f"{', '.join(_INTERVALS)}"
            )
        self._duration = seconds
        self._interval = interval
        self._verbose = verbose
        self._start_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._end_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._offset = 0.0

    def start_time(self, stage: str = "train") -> float | None:
        """When ``stage`` last started (seconds), or ``None`` if it has not."""
        return self._start_time[_stage(stage)]

    def end_time(self, stage: str = "train") -> float | None:
        """When ``stage`` last ended (seconds), or ``None`` if it has not."""
        return self._end_time[_stage(stage)]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds spent in ``stage`` (so far, while it runs); training adds what a restored
        checkpoint had already spent."""
        stage = _stage(stage)
        start = self._start_time[stage]
        end = self._end_time[stage]
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        if end is None:
            return time.monotonic() - start + offset
        return end - start + offset

    def time_remaining(self, stage: str = "train") -> float | None:
        """Seconds left of ``duration`` (negative once past it), or ``None`` without a duration."""
        if self._duration is None:
            return None
        return self._duration - self.time_elapsed(stage)

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._start_time["train"] = time.monotonic()

    def on_train_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._end_time["train"] = time.monotonic()

    def on_validation_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._start_time["validate"] = time.monotonic()

    def on_validation_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._end_time["validate"] = time.monotonic()

    def on_test_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._start_time["test"] = time.monotonic()

    def on_test_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._end_time["test"] = time.monotonic()

    def on_predict_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self._start_time["predict"] = time.monotonic()

    def on_predict_end(self, trainer: Any, pl_module: LightningModule) -> None:
        self._end_time["predict"] = time.monotonic()

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        # Whatever the interval: a restored state may already be past the limit.
        if self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: LightningModule) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in STAGES}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = float(state_dict.get("time_elapsed", {}).get("train", 0.0))

    def _check_time_remaining(self, trainer: Any) -> None:
        assert self._duration is not None
        should_stop = self.time_elapsed() >= self._duration
        broadcast = getattr(trainer, "broadcast", None)
        if callable(broadcast):  # several processes: rank 0's clock decides for all
            should_stop = bool(broadcast(should_stop))
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop and self._verbose and getattr(trainer, "is_global_zero", True):
            elapsed = timedelta(seconds=int(self.time_elapsed("train")))
            print(
                f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.",
                file=sys.stdout,
                flush=True,
            )
