"""The state a module is exported in: evaluation mode, no gradient tracking, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def export_mode(module: torch.nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode without autograd; restore every submodule's mode on exit.

    Each submodule's flag is restored on its own, because a module in training mode may hold
    submodules deliberately kept in eval mode (e.g. frozen batch norm).
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for submodule, training in modes:
            submodule.training = training
