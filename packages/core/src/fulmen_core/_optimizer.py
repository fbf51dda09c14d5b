"""``LightningOptimizer``: the optimizer as a module sees it in manual optimization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

from fulmen_core._trainer import ModuleHost


class LightningOptimizer:
    """Wraps a ``torch.optim.Optimizer`` so that ``step()`` goes through the running loop: the
    ``on_before_optimizer_step`` hooks, the precision in use (loss scaling), and the step count.

    Every other attribute (``param_groups``, ``state``, ``defaults``, ...) is the optimizer's own.
    """

    def __init__(self, optimizer: Optimizer, host: ModuleHost) -> None:
        self._optimizer = optimizer
        self._host = host

    @property
    def optimizer(self) -> Optimizer:
        """The wrapped optimizer."""
        return self._optimizer

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The wrapped optimizer's parameter groups."""
        return self._optimizer.param_groups

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """Step the optimizer through the loop (hooks, precision) and count the step."""
        return self._host.optimizer_step(self._optimizer, closure, **kwargs)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of the wrapped optimizer's parameters."""
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state."""
        return self._optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped optimizer's state."""
        self._optimizer.load_state_dict(state_dict)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: defer to the optimizer (state, defaults, ...).
        return getattr(self._optimizer, name)

    def __repr__(self) -> str:
        return f"LightningOptimizer({self._optimizer!r})"
