"""Two processes on gloo train a regressor with DDP; each writes what it ended with.

``python ddp_script.py DIR`` with ``devices=2`` (the Trainer starts the second process), or under
``torchrun --nproc_per_node=2``, or as two one-process "nodes" (mode ``nodes``: ``num_nodes=2``,
two torchrun launches with ``--nnodes=2 --node_rank=0|1``); ``python ddp_script.py DIR single`` trains one process on the global
batch, for comparison. FAIL=1 in the environment makes rank 1 raise mid-training.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L


class Regressor(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if os.environ.get("FAIL") == "1" and self.global_rank == 1 and batch_idx == 1:
            raise RuntimeError("rank 1 fails on purpose")
        x, y = batch
        loss: torch.Tensor = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(directory: str, mode: str) -> None:
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 4, generator=generator), torch.randn(32, 1, generator=generator)
    single = mode == "single"
    loader = DataLoader(TensorDataset(x, y), batch_size=8 if single else 4, shuffle=False)
    model = Regressor()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1 if single or mode == "nodes" else (2 if mode == "launch" else "auto"),
        num_nodes=2 if mode == "nodes" else 1,
        strategy="auto" if single or mode == "torchrun" else "ddp",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader)
    gathered = model.all_gather(torch.tensor([float(trainer.global_rank)]))
    torch.save(
        {
            "weights": [p.detach() for p in model.parameters()],
            "loss": trainer.callback_metrics["loss"],
            "world_size": trainer.world_size,
            "rank": trainer.global_rank,
            "gathered": gathered,
            "steps": trainer.global_step,
            "node_rank": trainer.node_rank,
            "local_rank": trainer.local_rank,
        },
        os.path.join(directory, f"{mode}-rank{trainer.global_rank}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "launch")
