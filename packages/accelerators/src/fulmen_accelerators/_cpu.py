"""``CPUAccelerator``: training on the host CPU."""

from __future__ import annotations

import os

import torch


class CPUAccelerator:
    """Runs on the CPU. Satisfies the ``Accelerator`` Protocol of fulmen-core without subclassing it."""

    name = "cpu"
    autocast_device_type = "cpu"
    distributed_backend = "gloo"
    supported_precisions = frozenset({"32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true"})

    def is_available(self) -> bool:
        """The CPU is always there."""
        return True

    def device_count(self) -> int:
        """How many CPU processes make sense on this machine: its CPU cores."""
        return os.cpu_count() or 1

    def get_device(self, index: int) -> torch.device:
        """Every CPU process uses ``torch.device("cpu")``."""
        if index < 0:
            raise ValueError(f"device index must be >= 0, got {index}")
        return torch.device("cpu")

    def setup_device(self, device: torch.device) -> None:
        """Nothing to prepare on the CPU; rejects devices of other kinds."""
        if device.type != "cpu":
            raise ValueError(f"CPUAccelerator cannot run on {device}; use torch.device('cpu')")

    def teardown(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "CPUAccelerator()"
