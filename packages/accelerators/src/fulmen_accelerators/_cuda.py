"""``CUDAAccelerator``: NVIDIA GPUs through torch.cuda."""

from __future__ import annotations

import torch


class CUDAAccelerator:
    """Runs on CUDA devices; collectives over NCCL. Satisfies fulmen-core's ``Accelerator``."""

    name = "cuda"
    autocast_device_type = "cuda"
    distributed_backend = "nccl"
    #: Chosen by ``accelerator="auto"`` (and "gpu") when available.
    auto_select = True

    @property
    def supported_precisions(self) -> frozenset[str]:
        """Every precision; the bfloat16 ones only on devices that compute in bfloat16."""
        precisions = {"32-true", "64-true", "16-mixed", "16-true"}
        if not self.is_available() or torch.cuda.is_bf16_supported():
            precisions |= {"bf16-mixed", "bf16-true"}
        return frozenset(precisions)

    def is_available(self) -> bool:
        """Whether torch sees a CUDA device."""
        return torch.cuda.is_available()

    def device_count(self) -> int:
        """The CUDA devices this process can see (``CUDA_VISIBLE_DEVICES`` applies)."""
        return torch.cuda.device_count()

    def get_device(self, index: int) -> torch.device:
        """``torch.device("cuda", index)``."""
        if index < 0:
            raise ValueError(f"CUDA device index must be >= 0, got {index}")
        return torch.device("cuda", index)

    def setup_device(self, device: torch.device) -> None:
        """Make ``device`` the current CUDA device of this process."""
        if device.type != "cuda":
            raise ValueError(f"CUDAAccelerator cannot run on {device}; give a torch.device('cuda', i)")
        torch.cuda.set_device(device)

    def teardown(self) -> None:
        """Return cached memory to the driver."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return "CUDAAccelerator()"
