"""Reading what ``configure_optimizers`` returned into optimizers and scheduler configs."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from fulmen_core import LRSchedulerConfig, MisconfigurationException
from torch.optim import Optimizer

_ACCEPTED = (
    "configure_optimizers must return one of: an optimizer; a list or tuple of optimizers; "
    "two lists (optimizers, schedulers); a dict with an 'optimizer' key and optional "
    "'lr_scheduler' (a scheduler or a dict with 'scheduler', 'interval', 'frequency', 'monitor', "
    "'strict', 'name') and 'monitor'; a list or tuple of such dicts; or None (train without an "
    "optimizer)"
)
_SCHEDULER_KEYS = {"scheduler", "name", "interval", "frequency", "monitor", "strict", "reduce_on_plateau"}


def _describe(value: object) -> str:
    if isinstance(value, (list, tuple)):
        inner = ", ".join(type(v).__qualname__ for v in value)
        return f"a {type(value).__qualname__} of [{inner}]"
    return f"{type(value).__qualname__} {value!r}"[:200]


def parse_optimizers(returned: Any) -> tuple[list[Optimizer], list[LRSchedulerConfig]]:
    """Split ``configure_optimizers``'s return value; an unsupported shape names what was found."""
    optimizers: list[Any]
    schedulers: list[Any] = []
    monitor: str | None = None
    if returned is None:
        warnings.warn(
            "configure_optimizers returned None: this fit runs training_step and backward but "
            "steps no optimizer",
            stacklevel=3,
        )
        return [], []
    if isinstance(returned, Optimizer):
        optimizers = [returned]
    elif isinstance(returned, Mapping):
        optimizers, schedulers, monitor = _from_dict(returned)
    elif isinstance(returned, (list, tuple)):
        if (
            len(returned) == 2
            and isinstance(returned[0], (list, tuple))
            and all(isinstance(o, Optimizer) for o in returned[0])
        ):
            optimizers = list(returned[0])
            second = returned[1]
            schedulers = list(second) if isinstance(second, (list, tuple)) else [second]
        elif returned and all(isinstance(o, Mapping) for o in returned):
            optimizers = []
            for item in returned:
                found, found_schedulers, found_monitor = _from_dict(item)
                optimizers.extend(found)
                schedulers.extend(found_schedulers)
                monitor = monitor or found_monitor
        elif all(isinstance(o, Optimizer) for o in returned):
            optimizers = list(returned)
        else:
            raise MisconfigurationException(
                f"configure_optimizers returned {_describe(returned)}. {_ACCEPTED}"
            )
    else:
        raise MisconfigurationException(
            f"configure_optimizers returned {_describe(returned)}. {_ACCEPTED}"
        )
    if not optimizers:
        raise MisconfigurationException(
            f"configure_optimizers returned {_describe(returned)} with no optimizer. {_ACCEPTED}"
        )
    configs = [_scheduler_config(s, monitor) for s in schedulers]
    return optimizers, configs


def _from_dict(config: Mapping[str, Any]) -> tuple[list[Any], list[Any], str | None]:
    if "optimizer" not in config:
        raise MisconfigurationException(
            f"configure_optimizers returned a dict with keys {sorted(config)} but no 'optimizer'. "
            f"{_ACCEPTED}"
        )
    optimizer = config["optimizer"]
    if not isinstance(optimizer, Optimizer):
        raise MisconfigurationException(
            f"configure_optimizers returned {{'optimizer': {_describe(optimizer)}}}; the "
            "'optimizer' entry must be a torch.optim.Optimizer"
        )
    scheduler = config.get("lr_scheduler")
    monitor = config.get("monitor")
    return [optimizer], ([] if scheduler is None else [scheduler]), monitor


def _scheduler_config(scheduler: Any, monitor: str | None) -> LRSchedulerConfig:
    if isinstance(scheduler, Mapping):
        if "scheduler" not in scheduler:
            raise MisconfigurationException(
                f"an lr_scheduler dict has keys {sorted(scheduler)} but no 'scheduler'; give "
                "{'scheduler': torch.optim.lr_scheduler.StepLR(...), ...}"
            )
        extra = set(scheduler) - _SCHEDULER_KEYS
        if extra:
            warnings.warn(
                f"unsupported keys in the lr_scheduler dict ignored: {sorted(extra)}; supported: "
                f"{sorted(_SCHEDULER_KEYS)}",
                stacklevel=4,
            )
        interval = scheduler.get("interval", "epoch")
        if interval not in ("step", "epoch"):
            raise MisconfigurationException(
                f"lr_scheduler interval={interval!r} is not supported; use 'step' or 'epoch'"
            )
        frequency = scheduler.get("frequency", 1)
        if not isinstance(frequency, int) or frequency < 1:
            raise MisconfigurationException(
                f"lr_scheduler frequency={frequency!r} must be a positive int"
            )
        sched = scheduler["scheduler"]
        plateau = bool(
            scheduler.get("reduce_on_plateau", isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau))
        )
        config = LRSchedulerConfig(
            scheduler=sched,
            name=scheduler.get("name"),
            interval=interval,
            frequency=frequency,
            reduce_on_plateau=plateau,
            monitor=scheduler.get("monitor", monitor),
            strict=bool(scheduler.get("strict", True)),
        )
    else:
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        config = LRSchedulerConfig(scheduler=scheduler, reduce_on_plateau=plateau, monitor=monitor)
    if not hasattr(config.scheduler, "step"):
        raise MisconfigurationException(
            f"lr scheduler {_describe(config.scheduler)} has no step() method; give a "
            "torch.optim.lr_scheduler instance"
        )
    if config.reduce_on_plateau and config.monitor is None:
        raise MisconfigurationException(
            "a ReduceLROnPlateau scheduler needs a metric to monitor: return "
            "{'optimizer': opt, 'lr_scheduler': {'scheduler': sched, 'monitor': 'val_loss'}}"
        )
    return config
