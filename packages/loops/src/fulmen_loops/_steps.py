"""Steps called through a strategy's wrapper: DDP needs the training step as a forward pass, and
FSDP runs every step through its sharded root so that the root's parameters are gathered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import LightningModule, SupportsSharding

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner


class StepModule(torch.nn.Module):
    """Wraps a module so that calling it runs one of its step methods (``training_step`` by
    default): what DistributedDataParallel needs to see the step as a forward pass and synchronise
    gradients in backward, and what FSDP runs through its sharded root."""

    def __init__(self, module: LightningModule, step: str = "training_step") -> None:
        super().__init__()
        self.module = module
        self.step = step

    def forward(self, *args: Any) -> Any:
        return getattr(self.module, self.step)(*args)


def through_sharded_root(runner: Runner, module: LightningModule, step: str) -> Callable[..., Any]:
    """``module``'s ``step`` method, called through a sharding strategy's root (FSDP gathers the
    root's parameters in its forward) when there is one; the plain bound method otherwise."""
    if isinstance(runner.strategy, SupportsSharding):
        return runner.strategy.wrap(StepModule(module, step))
    bound: Callable[..., Any] = getattr(module, step)
    return bound
