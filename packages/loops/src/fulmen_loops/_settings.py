"""The loop settings a Trainer passes down, with Lightning's defaults."""

from __future__ import annotations

import datetime

import attrs
from fulmen_core import MisconfigurationException


def _limit(name: str):  # type: ignore[no-untyped-def]  # attrs validators are loosely typed callables
    def check(instance: object, attribute: object, value: int | float | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MisconfigurationException(f"{name}={value!r} must be an int (batches) or a float in [0, 1]")
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise MisconfigurationException(
                f"{name}={value!r}: a float is a fraction of the batches and must lie in [0.0, 1.0]; "
                "use an int for a number of batches"
            )
        if isinstance(value, int) and value < 0:
            raise MisconfigurationException(f"{name}={value!r} must not be negative")

    return check


@attrs.frozen(kw_only=True)
class LoopSettings:
    """How the fit, evaluation and prediction loops run (Lightning's Trainer flags of the same names).

    ``None`` means "Lightning's default", resolved by the loops: e.g. ``max_epochs=None`` with no
    ``max_steps`` trains 1000 epochs, ``log_every_n_steps=None`` is 50.
    """

    max_epochs: int | None = None
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    max_time: datetime.timedelta | None = None
    limit_train_batches: int | float | None = attrs.field(default=None, validator=_limit("limit_train_batches"))
    limit_val_batches: int | float | None = attrs.field(default=None, validator=_limit("limit_val_batches"))
    limit_test_batches: int | float | None = attrs.field(default=None, validator=_limit("limit_test_batches"))
    limit_predict_batches: int | float | None = attrs.field(default=None, validator=_limit("limit_predict_batches"))
    overfit_batches: int | float = attrs.field(default=0.0, validator=_limit("overfit_batches"))
    val_check_interval: int | float | None = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: int | float | None = None
    gradient_clip_algorithm: str | None = None
    fast_dev_run: int | bool = False
    inference_mode: bool = True
    reload_dataloaders_every_n_epochs: int = 0
    detect_anomaly: bool = False
    barebones: bool = False

    def __attrs_post_init__(self) -> None:
        if self.accumulate_grad_batches < 1:
            raise MisconfigurationException(
                f"accumulate_grad_batches={self.accumulate_grad_batches} must be an int >= 1"
            )
        if isinstance(self.fast_dev_run, int) and not isinstance(self.fast_dev_run, bool):
            if self.fast_dev_run < 0:
                raise MisconfigurationException(
                    f"fast_dev_run={self.fast_dev_run} must be a bool or an int >= 0"
                )
        if self.max_epochs is not None and self.max_epochs < -1:
            raise MisconfigurationException(
                f"max_epochs={self.max_epochs} must be >= -1 (-1 means no epoch limit)"
            )
        if self.max_steps < -1:
            raise MisconfigurationException(
                f"max_steps={self.max_steps} must be >= -1 (-1 means no step limit)"
            )
        if self.check_val_every_n_epoch is not None and self.check_val_every_n_epoch < 1:
            raise MisconfigurationException(
                f"check_val_every_n_epoch={self.check_val_every_n_epoch} must be >= 1 or None"
            )
        if self.gradient_clip_algorithm not in (None, "norm", "value"):
            raise MisconfigurationException(
                f"gradient_clip_algorithm={self.gradient_clip_algorithm!r} is not supported; use "
                "'norm' or 'value'"
            )
        if self.num_sanity_val_steps is not None and self.num_sanity_val_steps < -1:
            raise MisconfigurationException(
                f"num_sanity_val_steps={self.num_sanity_val_steps} must be >= -1 (-1: all batches)"
            )

    @property
    def fast_dev_run_batches(self) -> int:
        """How many batches each stage runs under ``fast_dev_run`` (0 when it is off)."""
        if self.fast_dev_run is True:
            return 1
        if self.fast_dev_run is False:
            return 0
        return int(self.fast_dev_run)
