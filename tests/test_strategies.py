"""The Trainer's strategy flag: names become strategy objects with the run's devices, objects built
without devices get them, and wrong combinations are clear errors. (Nothing is launched here.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_accelerators import CPUAccelerator, DDPStrategy, FSDPStrategy
from fulmen_core import CheckpointError, MisconfigurationException, Strategy, SupportsSharding
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L


def _trainer(**settings: Any) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                     max_epochs=1, **settings)


def test_strategy_names_become_strategies_with_the_devices() -> None:
    """'ddp', 'ddp_find_unused_parameters_true' and 'fsdp' give strategies for two processes; 'auto' on one device none."""
    ddp = _trainer(strategy="ddp", devices=2).strategy
    assert isinstance(ddp, DDPStrategy) and not isinstance(ddp, FSDPStrategy)
    assert (ddp.world_size, ddp.find_unused_parameters) == (2, False)
    unused = _trainer(strategy="ddp_find_unused_parameters_true", devices=2).strategy
    assert isinstance(unused, DDPStrategy) and unused.find_unused_parameters
    fsdp = _trainer(strategy="fsdp", devices=2).strategy
    assert isinstance(fsdp, FSDPStrategy) and fsdp.world_size == 2 and fsdp.state_dict_type == "full"
    assert not isinstance(_trainer(devices=1).strategy, DDPStrategy)


def test_a_strategy_object_without_devices_gets_the_trainers() -> None:
    """FSDPStrategy(state_dict_type='sharded') given to Trainer(devices=2) learns its accelerator and world size."""
    given = FSDPStrategy(auto_wrap_policy={torch.nn.Linear}, state_dict_type="sharded")
    assert not given.connected
    with pytest.raises(MisconfigurationException, match="built without an accelerator"):
        given.accelerator  # noqa: B018  # the property raises
    trainer = _trainer(strategy=given, devices=2)
    assert trainer.strategy is given and given.connected and given.world_size == 2
    assert given.accelerator.distributed_backend == "gloo"


def test_fsdp_strategy_has_the_sharding_ability_and_ddp_not() -> None:
    """FSDPStrategy satisfies both Strategy and SupportsSharding; DDPStrategy only Strategy."""
    fsdp: Strategy = FSDPStrategy(CPUAccelerator(), 2)
    ddp: Strategy = DDPStrategy(CPUAccelerator(), 2)
    assert isinstance(fsdp, SupportsSharding) and not isinstance(ddp, SupportsSharding)


def test_unknown_strategy_names_the_known_ones() -> None:
    """An unknown strategy name is an error listing the available ones, fsdp included."""
    with pytest.raises(MisconfigurationException, match=r"strategy='deepspeed' is not available; available: .*'fsdp'"):
        _trainer(strategy="deepspeed")


def test_single_device_with_two_devices_is_an_error() -> None:
    """strategy='single_device' with devices=2 says to use 'ddp'."""
    with pytest.raises(MisconfigurationException, match="use strategy='ddp'"):
        _trainer(strategy="single_device", devices=2)


def test_unknown_fsdp_state_dict_type_lists_the_known_ones() -> None:
    """FSDPStrategy(state_dict_type=...) accepts 'full' and 'sharded' only."""
    with pytest.raises(MisconfigurationException, match=r"state_dict_type='local'.*\['full', 'sharded'\]"):
        FSDPStrategy(state_dict_type="local")


class _Regressor(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss: torch.Tensor = self.layer(batch[0]).sum()
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_sharded_checkpoint_without_fsdp_is_a_clear_error(tmp_path: Path) -> None:
    """Resuming a sharded checkpoint directory in a run without FSDP names the directory and the fix."""
    directory = tmp_path / "epoch=0-step=1.ckpt"
    directory.mkdir()
    loader = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
    with pytest.raises(CheckpointError, match=r"is a directory: a sharded checkpoint.*strategy='fsdp'"):
        _trainer(enable_checkpointing=False).fit(_Regressor(), loader, ckpt_path=directory)


def test_lightning_namespaces_for_strategies_and_accelerators() -> None:
    """from fulmen.strategies / fulmen.accelerators import what lightning.pytorch's modules of those names hold."""
    from fulmen.accelerators import CPUAccelerator as FromAccelerators
    from fulmen.strategies import DDPStrategy as FromStrategies
    from fulmen.strategies import FSDPStrategy as FSDPFromStrategies

    assert (FromAccelerators, FromStrategies, FSDPFromStrategies) == (CPUAccelerator, DDPStrategy, FSDPStrategy)
    assert isinstance(_trainer(strategy=FSDPFromStrategies(), devices=2).strategy, FSDPStrategy)
