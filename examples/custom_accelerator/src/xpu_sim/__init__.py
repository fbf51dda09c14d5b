"""``xpu-sim``: how a hardware vendor adds a device to fulmen, simulated on the CPU.

A plain class with the members of ``fulmen_core.Accelerator`` (no subclassing), registered under the
entry-point group ``fulmen.accelerators``. It runs on the host, so it works anywhere; a real device
package would return its own ``torch.device`` type, autocast device type and collective backend.
"""

from __future__ import annotations

import torch

__all__ = ["XPUSimAccelerator"]


class XPUSimAccelerator:
    """A simulated accelerator with two "devices", both backed by the CPU."""

    name = "xpu-sim"
    autocast_device_type = "cpu"  # what torch.autocast should use for this device
    distributed_backend = "gloo"
    supported_precisions = frozenset({"32-true", "bf16-mixed"})

    def __init__(self) -> None:
        self.setup_calls: list[torch.device] = []

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 2

    def get_device(self, index: int) -> torch.device:
        if not 0 <= index < self.device_count():
            raise ValueError(f"xpu-sim has devices 0 and 1, not {index}")
        return torch.device("cpu")

    def setup_device(self, device: torch.device) -> None:
        self.setup_calls.append(device)

    def teardown(self) -> None:
        pass
