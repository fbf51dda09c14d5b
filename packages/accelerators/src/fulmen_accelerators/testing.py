"""A conformance kit for accelerators: run ``check_accelerator(MyAccelerator())`` in your own tests.

It checks what fulmen's loops rely on, beyond the Protocol's static shape: names and precisions that
make sense, device indices that map to torch devices of the right kind, and setup/teardown that work
on the devices it reports. It returns nothing and raises ``AssertionError`` naming the first problem.
"""

from __future__ import annotations

import torch
from fulmen_core import Accelerator

#: The precision names fulmen understands (its canonical spellings).
KNOWN_PRECISIONS = frozenset({"32-true", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true"})


def check_accelerator(accelerator: Accelerator) -> None:
    """Assert that ``accelerator`` behaves as fulmen's loops expect."""
    name = accelerator.name
    assert isinstance(name, str) and name and name == name.lower() and " " not in name, (
        f"name {name!r} must be a non-empty lower-case registry name without spaces"
    )
    precisions = accelerator.supported_precisions
    assert "32-true" in precisions, f"{name}: every accelerator must support '32-true'"
    unknown = set(precisions) - KNOWN_PRECISIONS
    assert not unknown, f"{name}: unknown precisions {sorted(unknown)}; use {sorted(KNOWN_PRECISIONS)}"
    assert isinstance(accelerator.autocast_device_type, str) and accelerator.autocast_device_type, (
        f"{name}: autocast_device_type must name a torch.autocast device type"
    )
    if precisions & {"16-mixed", "bf16-mixed"}:
        assert torch.amp.is_autocast_available(accelerator.autocast_device_type), (
            f"{name}: mixed precision is listed but torch.autocast has no device type "
            f"{accelerator.autocast_device_type!r}"
        )
    backend = accelerator.distributed_backend
    assert isinstance(backend, str) and backend, f"{name}: distributed_backend must name a torch.distributed backend"
    available = accelerator.is_available()
    assert isinstance(available, bool), f"{name}: is_available() must return a bool"
    count = accelerator.device_count()
    assert isinstance(count, int) and count >= 0, f"{name}: device_count() must be an int >= 0"
    if not available:
        return
    assert count >= 1, f"{name}: available but device_count() is {count}"
    device = accelerator.get_device(0)
    assert isinstance(device, torch.device), f"{name}: get_device(0) must return a torch.device"
    accelerator.setup_device(device)
    tensor = torch.ones(2, device=device)
    assert tensor.device.type == device.type, f"{name}: tensors cannot be placed on {device}"
    accelerator.teardown()
