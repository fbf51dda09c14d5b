"""``SingleDeviceStrategy``: the one-process case of fulmen-core's ``Strategy`` Protocol."""

from __future__ import annotations

from typing import TypeVar

import torch

_T = TypeVar("_T")


class SingleDeviceStrategy:
    """One process: collectives are identities, nothing to launch or wrap."""

    world_size = 1
    global_rank = 0
    local_rank = 0
    node_rank = 0

    def setup_environment(self) -> None:
        """Nothing to start."""

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module itself."""
        return module

    def reduce(self, tensor: torch.Tensor, op: str = "mean") -> torch.Tensor:
        """``tensor`` as it is."""
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` itself (Lightning adds no process dimension for a single process)."""
        return tensor

    def barrier(self, name: str | None = None) -> None:
        """Nothing to wait for."""

    def broadcast(self, obj: _T, src: int = 0) -> _T:
        """``obj`` itself."""
        return obj

    def teardown(self) -> None:
        """Nothing to leave."""

    def abort(self) -> None:
        """No other process to stop."""

    def __repr__(self) -> str:
        return "SingleDeviceStrategy()"
