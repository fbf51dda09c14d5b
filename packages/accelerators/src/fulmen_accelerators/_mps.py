"""``MPSAccelerator``: Apple-silicon GPUs through torch.mps."""

from __future__ import annotations

import torch


class MPSAccelerator:
    """Runs on the Metal Performance Shaders device. Satisfies fulmen-core's ``Accelerator``."""

    name = "mps"
    autocast_device_type = "mps"
    distributed_backend = "gloo"
    auto_select = True
    # MPS has no float64; bfloat16 autocast is not reliable there.
    supported_precisions = frozenset({"32-true", "16-mixed", "16-true"})

    def is_available(self) -> bool:
        """Whether torch was built with MPS and the machine has the device."""
        return bool(torch.backends.mps.is_available())

    def device_count(self) -> int:
        """One MPS device when available."""
        return 1 if self.is_available() else 0

    def get_device(self, index: int) -> torch.device:
        """``torch.device("mps", 0)``: there is a single device."""
        if index != 0:
            raise ValueError(f"MPS has a single device (index 0), got {index}")
        return torch.device("mps", 0)

    def setup_device(self, device: torch.device) -> None:
        """Nothing to select; rejects devices of other kinds."""
        if device.type != "mps":
            raise ValueError(f"MPSAccelerator cannot run on {device}; give torch.device('mps')")

    def teardown(self) -> None:
        """Return cached memory."""
        if self.is_available():
            torch.mps.empty_cache()

    def __repr__(self) -> str:
        return "MPSAccelerator()"
