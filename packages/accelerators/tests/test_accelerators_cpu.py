"""CPUAccelerator satisfies the Accelerator Protocol and answers device questions for the CPU."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
from fulmen_accelerators import CPUAccelerator
from fulmen_core import Accelerator


def test_cpu_accelerator_conforms_to_the_protocol() -> None:
    """A CPUAccelerator is usable where an Accelerator is expected (checked by mypy --strict too)."""
    accelerator: Accelerator = CPUAccelerator()
    assert accelerator.name == "cpu"
    assert accelerator.autocast_device_type == "cpu"
    assert accelerator.distributed_backend == "gloo"
    assert "32-true" in accelerator.supported_precisions


def test_cpu_devices_are_the_host() -> None:
    """Every index maps to torch.device('cpu') and the CPU is always available."""
    accelerator = CPUAccelerator()
    assert accelerator.is_available()
    assert accelerator.device_count() >= 1
    assert accelerator.get_device(0) == torch.device("cpu")
    with pytest.raises(ValueError, match=">= 0"):
        accelerator.get_device(-1)


def test_setup_device_rejects_other_device_types() -> None:
    """setup_device accepts the CPU and refuses a device of another kind, naming it."""
    accelerator = CPUAccelerator()
    accelerator.setup_device(torch.device("cpu"))
    with pytest.raises(ValueError, match="cuda"):
        accelerator.setup_device(torch.device("cuda", 0))


def test_registered_under_the_entry_point_group() -> None:
    """The distribution advertises 'cpu' in the fulmen.accelerators entry-point group."""
    names = {ep.name: ep.value for ep in metadata.entry_points(group="fulmen.accelerators")}
    assert names.get("cpu") == "fulmen_accelerators._cpu:CPUAccelerator"
