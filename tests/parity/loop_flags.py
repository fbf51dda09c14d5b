"""Loop flags under either framework (``python loop_flags.py lightning|fulmen``): for each configuration,
the sequence of training/validation batches and epoch ends, the final counters, and (for the seeded
run) every loss. ``tests/fixtures/lightning/loop_flags.json`` is this script's output under Lightning."""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

CONFIGS: dict[str, dict[str, Any]] = {
    "baseline": {"max_epochs": 2},
    "limit_train_int": {"max_epochs": 1, "limit_train_batches": 2},
    "limit_train_frac": {"max_epochs": 1, "limit_train_batches": 0.5},
    "limit_val_frac": {"max_epochs": 1, "limit_val_batches": 0.5},
    "no_val": {"max_epochs": 1, "limit_val_batches": 0},
    "sanity_all": {"max_epochs": 1, "num_sanity_val_steps": -1},
    "sanity_none": {"max_epochs": 1, "num_sanity_val_steps": 0},
    "fast_dev_run": {"fast_dev_run": True},
    "fast_dev_run_3": {"fast_dev_run": 3},
    "val_interval_int": {"max_epochs": 1, "val_check_interval": 2},
    "val_interval_frac": {"max_epochs": 1, "val_check_interval": 0.5},
    "val_every_none": {"max_epochs": 3, "check_val_every_n_epoch": None, "val_check_interval": 5},
    "val_every_2": {"max_epochs": 4, "check_val_every_n_epoch": 2},
    "max_steps": {"max_steps": 6},
    "max_steps_accumulate": {"max_steps": 2, "accumulate_grad_batches": 2},
    "min_epochs": {"max_epochs": 3, "min_epochs": 2, "stop_at_epoch": 0},
    "reload_every": {"max_epochs": 3, "reload_dataloaders_every_n_epochs": 2},
    "overfit_int": {"max_epochs": 2, "overfit_batches": 2},
    "overfit_frac": {"max_epochs": 1, "overfit_batches": 0.4},
    "seeded": {"max_epochs": 3, "accumulate_grad_batches": 2, "gradient_clip_val": 0.3, "seeded": True},
    "plateau": {"max_epochs": 4, "scheduler": "plateau"},
    "step_interval_frequency": {"max_epochs": 2, "scheduler": "step2"},
    "seeded_value_clip": {"max_epochs": 2, "gradient_clip_val": 0.05, "gradient_clip_algorithm": "value", "seeded": True},
}


def run(framework: str) -> dict[str, Any]:
    # Chosen at run time: Lightning in the parity environment, fulmen everywhere else.
    L: Any = importlib.import_module("lightning.pytorch" if framework == "lightning" else "fulmen")
    warnings.filterwarnings("ignore")
    generator = torch.Generator().manual_seed(11)
    x, y = torch.randn(20, 4, generator=generator), torch.randn(20, 1, generator=generator)
    xv, yv = torch.randn(10, 4, generator=generator), torch.randn(10, 1, generator=generator)
    results: dict[str, Any] = {}

    for name, settings in CONFIGS.items():
        flags = dict(settings)
        seeded = flags.pop("seeded", False)
        stop_at = flags.pop("stop_at_epoch", None)
        scheduler_kind = flags.pop("scheduler", "steplr")
        events: list[str] = []
        losses: list[float] = []
        loads: list[str] = []

        class Net(L.LightningModule):  # base chosen at run time
            def __init__(self) -> None:
                super().__init__()
                self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))

            def training_step(self, batch: Any, batch_idx: int) -> Any:
                events.append(f"T{batch_idx}@e{self.current_epoch}g{self.global_step}")
                loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
                losses.append(loss.item())
                self.log("train_loss", loss, on_step=True, on_epoch=True)
                return loss

            def validation_step(self, batch: Any, batch_idx: int) -> None:
                prefix = "S" if self.trainer.sanity_checking else "V"
                events.append(f"{prefix}{batch_idx}@g{self.global_step}")
                self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

            def on_train_epoch_end(self) -> None:
                events.append(f"Tend@e{self.current_epoch}g{self.global_step}")
                if stop_at is not None and self.current_epoch == stop_at:
                    self.trainer.should_stop = True

            def configure_optimizers(self) -> Any:
                optimizer = torch.optim.Adam(self.parameters(), lr=0.01)
                if scheduler_kind == "plateau":
                    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
                    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}
                if scheduler_kind == "step2":
                    step = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.9)
                    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": step, "interval": "step", "frequency": 2}}
                return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.7)}

            def train_dataloader(self) -> Any:
                loads.append(f"train@e{self.current_epoch}")
                return DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)

            def val_dataloader(self) -> Any:
                loads.append(f"val@e{self.current_epoch}")
                return DataLoader(TensorDataset(xv, yv), batch_size=4)

        torch.manual_seed(0)
        L.seed_everything(5, verbose=False)
        model = Net()
        trainer = L.Trainer(
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **flags
        )
        trainer.fit(model)
        results[name] = {
            "events": events,
            "loads": loads,
            "global_step": trainer.global_step,
            "current_epoch": trainer.current_epoch,
            "num_training_batches": trainer.num_training_batches,
            "num_val_batches": list(trainer.num_val_batches),
            "callback_metrics": sorted(trainer.callback_metrics),
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
        }
        if seeded:
            results[name]["losses"] = losses
            results[name]["weights"] = [p.detach().flatten().tolist() for p in model.parameters()]
    return results


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1])))
