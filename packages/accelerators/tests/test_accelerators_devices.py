"""CUDA and MPS accelerators answer device questions without the device, and the conformance kit checks any accelerator."""

from __future__ import annotations

import pytest
import torch
from fulmen_accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
from fulmen_accelerators.testing import check_accelerator
from fulmen_core import Accelerator


def test_cuda_accelerator_describes_cuda() -> None:
    """CUDAAccelerator uses cuda autocast, NCCL and torch.device('cuda', i), available or not."""
    accelerator: Accelerator = CUDAAccelerator()
    assert (accelerator.name, accelerator.autocast_device_type, accelerator.distributed_backend) == ("cuda", "cuda", "nccl")
    assert accelerator.get_device(1) == torch.device("cuda", 1)
    assert accelerator.is_available() == torch.cuda.is_available()
    assert {"16-mixed", "32-true"} <= accelerator.supported_precisions
    with pytest.raises(ValueError, match="cpu"):
        accelerator.setup_device(torch.device("cpu"))


def test_mps_accelerator_describes_mps() -> None:
    """MPSAccelerator has one device, gloo collectives and no float64 precision."""
    accelerator: Accelerator = MPSAccelerator()
    assert (accelerator.name, accelerator.autocast_device_type) == ("mps", "mps")
    assert "64-true" not in accelerator.supported_precisions
    assert accelerator.get_device(0) == torch.device("mps", 0)
    with pytest.raises(ValueError, match="single device"):
        accelerator.get_device(1)


@pytest.mark.parametrize("accelerator", [CPUAccelerator(), CUDAAccelerator(), MPSAccelerator()], ids=repr)
def test_built_in_accelerators_pass_the_conformance_kit(accelerator: Accelerator) -> None:
    """Every built-in accelerator passes check_accelerator on this machine."""
    check_accelerator(accelerator)


def test_conformance_kit_names_the_problem() -> None:
    """An accelerator without 32-true precision fails the kit with a message naming it."""

    class Broken(CPUAccelerator):
        name = "broken"
        supported_precisions = frozenset({"bf16-mixed"})

    with pytest.raises(AssertionError, match="broken: every accelerator must support '32-true'"):
        check_accelerator(Broken())
