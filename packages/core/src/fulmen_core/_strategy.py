"""The ``Strategy`` role: how the processes of one run cooperate (one process, or many with DDP)."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

_T = TypeVar("_T")


class Strategy(Protocol):
    """Process topology and collectives. A single process is the trivial case; ``DDPStrategy`` in
    fulmen-accelerators runs one process per device on ``torch.distributed``."""

    @property
    def world_size(self) -> int:
        """How many processes train together."""
        ...

    @property
    def global_rank(self) -> int:
        """This process's rank among all processes."""
        ...

    @property
    def local_rank(self) -> int:
        """This process's rank on its node (which device it uses)."""
        ...

    @property
    def node_rank(self) -> int:
        """This node's rank."""
        ...

    def setup_environment(self) -> None:
        """Start the processes (when the strategy launches them) and join the process group."""
        ...

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """What the training step runs through (e.g. DistributedDataParallel); identity alone."""
        ...

    def reduce(self, tensor: torch.Tensor, op: str = "mean") -> torch.Tensor:
        """``tensor`` reduced over all processes with ``op`` ("mean", "sum", "max", "min")."""
        ...

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` from every process, stacked along a new first dimension (with one process,
        ``tensor`` itself, as in Lightning)."""
        ...

    def barrier(self, name: str | None = None) -> None:
        """Wait until every process reaches this point."""
        ...

    def broadcast(self, obj: _T, src: int = 0) -> _T:
        """``obj`` as process ``src`` has it, on every process."""
        ...

    def teardown(self) -> None:
        """Release what the stage used (the process group may stay for later stages)."""
        ...

    def abort(self) -> None:
        """This process failed: stop the processes this strategy started, so none waits forever."""
        ...


@runtime_checkable
class SupportsSharding(Protocol):
    """A strategy that changes the module itself (FSDP shards its parameters in place) and so owns
    how the module's and the optimizers' states are read and written. The runner checks for this
    ability once per run; strategies without it (DDP, one process) use the plain state dicts."""

    def setup_module(self, module: torch.nn.Module) -> None:
        """Shard ``module`` in place, on its device, before the optimizers are created."""
        ...

    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        """The module's state as this strategy checkpoints it (full on global zero, or sharded)."""
        ...

    def optimizer_state_dict(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """``optimizer``'s state as this strategy checkpoints it."""
        ...

    def load_optimizer_state_dict(
        self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        """Restore ``optimizer`` from what ``optimizer_state_dict`` (or a one-process run) saved."""
        ...

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        """Write ``checkpoint`` to ``path`` atomically (called on every process)."""
        ...

    def load_checkpoint(self, path: str, module: torch.nn.Module) -> dict[str, Any]:
        """Read the checkpoint at ``path`` (called on every process, before ``setup_module``)."""
        ...


def reduce_boolean_decision(strategy: Strategy, decision: bool, all: bool = True) -> bool:  # noqa: A002  # Lightning's name
    """Whether every process (``all=True``) or any process decided ``True``."""
    if strategy.world_size == 1:
        return decision
    vote = strategy.reduce(torch.tensor(float(decision)), op="sum")
    return bool(vote.item() == strategy.world_size) if all else bool(vote.item() > 0)
