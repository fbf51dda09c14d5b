"""Replacing a stage loop: a fit loop that interleaves batches from two datasets.

Each stage loop of a Trainer (``fit_loop``, ``validate_loop``, ``test_loop``, ``predict_loop``) is an
attribute typed by fulmen-core's ``Loop`` Protocol: any object with a ``run()`` method. The Trainer
still does everything around the loop (setup hooks, moving the module to its device, creating the
optimizers); the loop decides how batches are fed.

Run:  python examples/custom_loop.py
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen_core import Loop


class InterleavingFitLoop:
    """Trains on batches of ``first`` and ``second`` in turn: a0, b0, a1, b1, ..."""

    def __init__(self, trainer: L.Trainer, first: DataLoader[Any], second: DataLoader[Any], epochs: int) -> None:
        self.trainer = trainer
        self.first, self.second, self.epochs = first, second, epochs
        self.steps = 0

    def run(self) -> None:
        module = self.trainer.lightning_module
        optimizer = self.trainer.optimizers[0]
        module.train()
        for _ in range(self.epochs):
            pairs = zip_longest(self.first, self.second)
            batches = [batch for pair in pairs for batch in pair if batch is not None]
            for batch_idx, batch in enumerate(batches):
                loss = module.training_step(self.trainer.transfer_batch(batch, 0), batch_idx)
                assert isinstance(loss, torch.Tensor)
                optimizer.zero_grad()
                torch.autograd.backward(loss)
                optimizer.step()
                self.steps += 1


class TwoTasks(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.seen.append(float(y[0]))
        loss: torch.Tensor = torch.nn.functional.mse_loss(self.layer(x), y)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main() -> list[float]:
    torch.manual_seed(0)
    a = DataLoader(TensorDataset(torch.randn(8, 2), torch.zeros(8, 1)), batch_size=4)
    b = DataLoader(TensorDataset(torch.randn(8, 2), torch.ones(8, 1)), batch_size=4)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loop = InterleavingFitLoop(trainer, a, b, epochs=2)
    as_loop: Loop[None] = loop  # the Protocol is all a loop must satisfy
    trainer.fit_loop = as_loop
    model = TwoTasks()
    trainer.fit(model, a)  # the train dataloader argument is only what the default loop would use
    print(f"{loop.steps} steps; targets seen in order: {model.seen}")
    return model.seen


if __name__ == "__main__":
    main()
