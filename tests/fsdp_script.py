"""Two processes on gloo train a small network with FSDP (``fully_shard``); each writes what it ended with.

``python fsdp_script.py DIR MODE [STATE_DICT_TYPE] [CKPT]``:
- ``single``: one process, no FSDP, on the global batch (the reference);
- ``launch``: ``devices=2, strategy="fsdp"`` (the Trainer starts the second process);
- ``torchrun``: under ``torchrun --nproc_per_node=2`` with ``FSDPStrategy(...)`` given as an object.
Checkpoints go to ``DIR/MODE-ckpt`` every epoch; CKPT resumes from that path.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen.callbacks import ModelCheckpoint
from fulmen_accelerators import FSDPStrategy


class Network(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 1)
        self.scale = torch.nn.Parameter(torch.ones(1))  # the root's own parameter, sharded with it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.out(torch.tanh(self.hidden(x))) * self.scale
        return result

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss: torch.Tensor = torch.nn.functional.mse_loss(self(x), y)
        self.log("loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        # The parts, not self(x): the root's own parameter (scale) is gathered only because the
        # step runs through the sharded root's forward.
        prediction = self.out(torch.tanh(self.hidden(x))) * self.scale
        self.log("val_loss", torch.nn.functional.mse_loss(prediction, y), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _full(parameter: torch.Tensor) -> torch.Tensor:
    full = getattr(parameter, "full_tensor", None)
    return (full() if callable(full) else parameter).detach().clone()


def main(directory: str, mode: str, state_dict_type: str, ckpt_path: str | None) -> None:
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 4, generator=generator), torch.randn(32, 1, generator=generator)
    single = mode == "single"
    loader = DataLoader(TensorDataset(x, y), batch_size=8 if single else 4, shuffle=False)
    val = DataLoader(TensorDataset(x[:8], y[:8]), batch_size=4 if single else 2)
    model = Network()
    strategy: Any
    if single:
        strategy = "auto"
    elif mode == "launch" and state_dict_type == "full":
        strategy = "fsdp"
    else:
        strategy = FSDPStrategy(auto_wrap_policy={torch.nn.Linear}, state_dict_type=state_dict_type)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1 if single else (2 if mode == "launch" else "auto"),
        strategy=strategy,
        max_epochs=3,
        logger=False,
        callbacks=[ModelCheckpoint(dirpath=os.path.join(directory, f"{mode}-ckpt"), save_top_k=-1)],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, loader, val, ckpt_path=ckpt_path)
    weights = [_full(p) for p in model.parameters()]
    torch.save(
        {
            "weights": weights,
            "loss": trainer.callback_metrics["loss"],
            "val_loss": trainer.callback_metrics["val_loss"],
            "world_size": trainer.world_size,
            "rank": trainer.global_rank,
            "steps": trainer.global_step,
            "strategy": type(trainer.strategy).__name__,
        },
        os.path.join(directory, f"{mode}-{state_dict_type}-rank{trainer.global_rank}.pt"),
    )


if __name__ == "__main__":
    arguments = sys.argv[1:] + [""] * 4
    main(arguments[0], arguments[1], arguments[2] or "full", arguments[3] or None)
