"""Small value types and aliases shared by every package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import attrs
import torch
from torch.optim import Optimizer
from typing_extensions import TypeAlias

#: What a step may return: a loss tensor, a mapping with a ``"loss"`` entry, or ``None`` to skip.
STEP_OUTPUT: TypeAlias = Union[torch.Tensor, Mapping[str, Any], None]

#: What ``configure_optimizers`` may return (checked at run time, where each shape is described).
OptimizerLRScheduler: TypeAlias = Union[
    Optimizer,
    Sequence[Optimizer],
    tuple[Sequence[Optimizer], Sequence[Any]],
    Mapping[str, Any],
    Sequence[Mapping[str, Any]],
    None,
]

#: What ``validate`` and ``test`` return: one dict of metric name to float per dataloader.
EVALUATE_OUTPUT: TypeAlias = list[dict[str, float]]


@attrs.define
class LRSchedulerConfig:
    """How and when a learning-rate scheduler is stepped (Lightning's ``lr_scheduler`` dict)."""

    scheduler: Any
    name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: str | None = None
    strict: bool = True
