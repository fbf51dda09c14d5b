"""The ``Accelerator`` role: where computation runs."""

from __future__ import annotations

from typing import Protocol

import torch


class Accelerator(Protocol):
    """A kind of device the Trainer can place a module and its batches on.

    Any object with these members is an accelerator; nothing needs to be subclassed. Every device
    question the loops have is asked here, so no code elsewhere compares device names.
    """

    @property
    def name(self) -> str:
        """The registry name, e.g. ``"cpu"``."""
        ...

    @property
    def autocast_device_type(self) -> str:
        """The ``device_type`` passed to :class:`torch.autocast` for mixed precision."""
        ...

    @property
    def distributed_backend(self) -> str:
        """The ``torch.distributed`` backend for collectives on this device, e.g. ``"gloo"``."""
        ...

    @property
    def supported_precisions(self) -> frozenset[str]:
        """The canonical precision names this device can train in, e.g. ``{"32-true", "bf16-mixed"}``."""
        ...

    def is_available(self) -> bool:
        """Whether this device can be used in the current process."""
        ...

    def device_count(self) -> int:
        """How many devices of this kind the process can see."""
        ...

    def get_device(self, index: int) -> torch.device:
        """The torch device for a local index (``0 <= index < device_count()``)."""
        ...

    def setup_device(self, device: torch.device) -> None:
        """Make ``device`` current for this process before any tensor is placed on it."""
        ...

    def teardown(self) -> None:
        """Release what :meth:`setup_device` acquired (caches, streams)."""
        ...
