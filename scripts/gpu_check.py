"""The CUDA paths of fulmen, checked on a machine with a GPU (it cannot run in CI, which has none).

``python scripts/gpu_check.py`` trains a small classifier through ``fulmen.Trainer`` on CUDA in
32-true, 16-mixed (with a GradScaler) and bf16-mixed, and compares each with the same run on the CPU;
with two GPUs it also runs DDP and FSDP on NCCL (the Trainer launching the second process). It prints
one line per check and exits non-zero if any fails. Without CUDA it says so and exits 2.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
        self.devices_seen: set[str] = set()
        self.dtypes_seen: set[torch.dtype] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.net(x)
        return result

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        self.devices_seen.add(x.device.type)
        self.dtypes_seen.add(logits.dtype)
        loss: torch.Tensor = torch.nn.functional.cross_entropy(logits.float(), y)
        self.log("loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _data() -> DataLoader[tuple[torch.Tensor, ...]]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(512, 16, generator=generator)
    y = (x[:, :4].argmax(dim=1)).long()
    return DataLoader(TensorDataset(x, y), batch_size=64)


def _fit(accelerator: str, precision: str, **flags: Any) -> tuple[Classifier, L.Trainer, float]:
    model = Classifier()
    with tempfile.TemporaryDirectory() as directory:
        trainer = L.Trainer(accelerator=accelerator, precision=precision, max_epochs=3, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=directory,
                            **flags)
        trainer.fit(model, _data())
        if precision == "16-mixed" and trainer.is_global_zero:
            trainer.save_checkpoint(f"{directory}/scaled.ckpt")
            saved = torch.load(f"{directory}/scaled.ckpt", weights_only=True)
            assert "MixedPrecision" in saved and "scale" in saved["MixedPrecision"], "no GradScaler state saved"
    return model, trainer, float(trainer.callback_metrics["loss"])


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check")
        return 2
    failures = 0
    _, _, reference = _fit("cpu", "32-true")
    expected_dtype = {"32-true": torch.float32, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}
    tolerance = {"32-true": 1e-3, "16-mixed": 5e-2, "bf16-mixed": 5e-2}
    for precision in ("32-true", "16-mixed", "bf16-mixed"):
        try:
            model, trainer, loss = _fit("cuda", precision)
            assert model.devices_seen == {"cuda"}, f"batches on {model.devices_seen}"
            assert model.dtypes_seen == {expected_dtype[precision]}, f"forward ran in {model.dtypes_seen}"
            assert next(model.parameters()).device.type == "cuda", "parameters not on the GPU"
            assert trainer.device_ids == [0] and trainer.num_devices == 1
            assert abs(loss - reference) < tolerance[precision], f"loss {loss:.4f} vs CPU {reference:.4f}"
            print(f"ok   cuda {precision}: loss {loss:.4f} (CPU 32-true {reference:.4f})")
        except Exception as error:  # report every check, then fail
            failures += 1
            print(f"FAIL cuda {precision}: {error!r}")
    if torch.cuda.device_count() >= 2:
        print("two GPUs: run `python scripts/gpu_check.py ddp` and `... fsdp` for the NCCL strategies")
    return 1 if failures else 0


def distributed(strategy: str) -> int:
    """Run from a script file: the Trainer re-runs this script for the second process."""
    _, trainer, loss = _fit("cuda", "bf16-mixed", devices=2, strategy=strategy)
    if trainer.is_global_zero:
        print(f"ok   cuda {strategy} x2 on {trainer.strategy!r}: loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(distributed(sys.argv[1]) if len(sys.argv) > 1 else main())
