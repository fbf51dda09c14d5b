"""Precision: mixed precision trains exactly like the equivalent hand-written autocast (and GradScaler) loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen_core import MisconfigurationException

_G = torch.Generator().manual_seed(8)
X, Y = torch.randn(32, 6, generator=_G), torch.randn(32, 1, generator=_G)


class Net(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss: torch.Tensor = torch.nn.functional.mse_loss(self.net(batch[0]).float(), batch[1])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _fit(precision: str, **flags: Any) -> Net:
    model = Net()
    trainer = L.Trainer(precision=precision, max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, **flags)
    trainer.fit(model, DataLoader(TensorDataset(X, Y), batch_size=8))
    return model


def _manual(dtype: torch.dtype, scaler: torch.amp.GradScaler | None, clip: float | None = None) -> Net:
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(2):
        for x, y in DataLoader(TensorDataset(X, Y), batch_size=8):
            with torch.autocast("cpu", dtype=dtype):
                loss = torch.nn.functional.mse_loss(model.net(x).float(), y)
            optimizer.zero_grad()
            torch.autograd.backward(scaler.scale(loss) if scaler is not None else loss)
            if scaler is not None:
                scaler.unscale_(optimizer)
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
    return model


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_bf16_mixed_equals_a_bf16_autocast_loop() -> None:
    """precision='bf16-mixed' runs the steps under bfloat16 autocast, nothing else changes."""
    _same(_fit("bf16-mixed"), _manual(torch.bfloat16, None))


def test_16_mixed_scales_the_loss_and_unscales_before_clipping() -> None:
    """precision='16-mixed' scales the loss, unscales before clipping and steps through a GradScaler."""
    _same(_fit("16-mixed", gradient_clip_val=0.5), _manual(torch.float16, torch.amp.GradScaler("cpu"), clip=0.5))


def test_16_mixed_scaler_state_is_checkpointed(tmp_path: Path) -> None:
    """The loss scaler's state is saved under Lightning's 'MixedPrecision' key."""
    model = Net()
    trainer = L.Trainer(precision=16, max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(TensorDataset(X, Y), batch_size=8))
    trainer.save_checkpoint(tmp_path / "amp.ckpt")
    state = torch.load(tmp_path / "amp.ckpt", weights_only=True)["MixedPrecision"]
    scaler = trainer.precision_plugin.scaler
    assert scaler is not None and state == scaler.state_dict() and state["scale"] > 0


def test_64_true_trains_in_double() -> None:
    """precision='64-true' converts the module and the batches to float64."""
    model = _fit("64-true")
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_unknown_precision_lists_the_known_ones() -> None:
    """An unknown precision name is an error listing the accepted spellings."""
    with pytest.raises(MisconfigurationException, match="precision='8-bit' is not supported.*16-mixed"):
        L.Trainer(precision="8-bit")


def test_init_module_builds_in_the_precision_dtype_and_configure_model_runs_before_training() -> None:
    """trainer.init_module() creates layers in a "-true" precision's dtype, and configure_model builds
    layers before the optimizers are made, as in Lightning."""
    trainer = L.Trainer(precision="64-true", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with trainer.init_module():
        layer = torch.nn.Linear(2, 2)
    assert layer.weight.dtype == torch.float64
    assert torch.get_default_dtype() == torch.float32

    class Lazy(L.LightningModule):
        def configure_model(self) -> None:
            self.net = torch.nn.Linear(6, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss: torch.Tensor = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Lazy()
    trainer.fit(model, DataLoader(TensorDataset(X, Y), batch_size=8))
    assert trainer.global_step == 4 and model.net.weight.dtype == torch.float64
