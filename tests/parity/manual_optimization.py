"""Manual optimization with two optimizers, toggling, clipping and a scheduler; runs under either
framework (``python manual_optimization.py lightning|fulmen``) and prints what happened as JSON.

``tests/fixtures/lightning/manual_optimization.json`` is this script's output under Lightning 2.6.6.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def run(framework: str) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import importlib

    # Chosen at run time: Lightning in the parity environment, fulmen everywhere else.
    L: Any = importlib.import_module("lightning.pytorch" if framework == "lightning" else "fulmen")

    events: list[str] = []

    class Recorder(L.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            events.append(f"cb:on_before_optimizer_step gs={trainer.global_step}")

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            events.append(f"cb:on_train_batch_end gs={trainer.global_step} outputs={sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__}")

    class TwoPlayers(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.g = torch.nn.Linear(3, 3)
            self.d = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            (x,) = batch
            opt_g, opt_d = self.optimizers()
            sched = self.lr_schedulers()
            self.toggle_optimizer(opt_d)
            d_loss = self.d(self.g(x).detach()).pow(2).mean()
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            self.clip_gradients(opt_d, gradient_clip_val=0.1, gradient_clip_algorithm="norm")
            opt_d.step()
            self.untoggle_optimizer(opt_d)
            self.toggle_optimizer(opt_g)
            g_loss = (1 - self.d(self.g(x))).pow(2).mean()
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            if self.trainer.is_last_batch:
                sched.step()
            self.log("g_loss", g_loss)
            events.append(f"mod:training_step gs={self.global_step} d_grad_none={self.d.weight.grad is None}")
            return {"loss": g_loss, "d_loss": d_loss}

        def on_before_optimizer_step(self, optimizer: Any) -> None:
            events.append("mod:on_before_optimizer_step")

        def on_before_backward(self, loss: Any) -> None:
            events.append("mod:on_before_backward")

        def on_after_backward(self) -> None:
            events.append("mod:on_after_backward")

        def configure_optimizers(self) -> Any:
            opt_g = torch.optim.Adam(self.g.parameters(), lr=0.01)
            opt_d = torch.optim.SGD(self.d.parameters(), lr=0.1)
            return [opt_g, opt_d], [torch.optim.lr_scheduler.StepLR(opt_g, 1, gamma=0.5)]

    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(12, 3)), batch_size=4)
    model = TwoPlayers()
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Recorder()],
    )
    trainer.fit(model, data)
    return {
        "events": events,
        "global_step": trainer.global_step,
        "lr_g": model.optimizers()[0].param_groups[0]["lr"],
        "weights": [p.detach().flatten().tolist() for p in model.parameters()],
        "callback_metrics": sorted(trainer.callback_metrics),
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1])))
