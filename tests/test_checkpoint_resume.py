"""Checkpoints: Lightning's keys, safe loading, and resuming to exactly the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fulmen as L
from fulmen_core import CheckpointError
from hook_recorder import quiet_trainer

_G = torch.Generator().manual_seed(5)
X, Y = torch.randn(40, 4, generator=_G), torch.randn(40, 1, generator=_G)


class Net(L.LightningModule):
    """Dropout, Adam and a StepLR: every source of state a resume must restore."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss: torch.Tensor = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)}

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(X[:16], Y[:16]), batch_size=8)


class Crash(Exception):
    """Stands for the process dying right after a checkpoint was written."""


class SaveThenCrash(L.Callback):
    def __init__(self, path: Path, hook: str, epoch: int, batch_idx: int = -1) -> None:
        self.path, self.hook, self.epoch, self.batch_idx = path, hook, epoch, batch_idx

    def _maybe(self, trainer: L.Trainer, hook: str, batch_idx: int = -1) -> None:
        if hook == self.hook and trainer.current_epoch == self.epoch and batch_idx == self.batch_idx:
            trainer.save_checkpoint(self.path)
            raise Crash()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._maybe(trainer, "on_train_batch_end", batch_idx)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._maybe(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._maybe(trainer, "on_train_epoch_end")


def _weights(model: L.LightningModule) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _uninterrupted() -> list[torch.Tensor]:
    L.seed_everything(3, verbose=False)
    model = Net()
    quiet_trainer(max_epochs=3).fit(model)
    return _weights(model)


REFERENCE = _uninterrupted()


@pytest.mark.parametrize(
    ("hook", "epoch", "batch_idx"),
    [
        ("on_train_batch_end", 1, 2),
        ("on_train_batch_end", 0, 0),
        ("on_train_batch_end", 1, 4),
        ("on_validation_end", 1, -1),
        ("on_train_epoch_end", 0, -1),
    ],
)
def test_resume_after_a_crash_ends_with_the_uninterrupted_weights(tmp_path: Path, hook: str, epoch: int, batch_idx: int) -> None:
    """A run killed right after a checkpoint (mid-epoch, in validation, or at epoch end) and resumed with
    fit(ckpt_path=...) ends with exactly the weights of a run never interrupted (shuffled data, dropout, Adam)."""
    path = tmp_path / "crash.ckpt"
    L.seed_everything(3, verbose=False)
    with pytest.raises(Crash):
        quiet_trainer(max_epochs=3, callbacks=[SaveThenCrash(path, hook, epoch, batch_idx)]).fit(Net())
    L.seed_everything(999, verbose=False)  # a new process: nothing of the old RNG state survives
    resumed = Net()
    trainer = quiet_trainer(max_epochs=3)
    trainer.fit(resumed, ckpt_path=path)
    assert trainer.current_epoch == 3
    for ours, reference in zip(_weights(resumed), REFERENCE):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


def test_checkpoint_has_lightnings_keys_and_loads_with_weights_only(tmp_path: Path) -> None:
    """A checkpoint carries Lightning's keys and reads back with torch.load(weights_only=True)."""
    model = Net(lr=0.02)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    for key in ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops", "callbacks",
                "optimizer_states", "lr_schedulers", "hparams_name", "hyper_parameters"):
        assert key in checkpoint, key
    assert checkpoint["hyper_parameters"] == {"lr": 0.02}
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 5)
    assert checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] == 1
    weights_only = tmp_path / "weights.ckpt"
    trainer.save_checkpoint(weights_only, weights_only=True)
    assert "optimizer_states" not in torch.load(weights_only, weights_only=True)


def test_missing_and_damaged_checkpoints_name_the_file(tmp_path: Path) -> None:
    """A ckpt_path that does not exist, and a truncated file, give errors naming the file."""
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        quiet_trainer(max_epochs=1).fit(Net(), ckpt_path=tmp_path / "nope.ckpt")
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(Net())
    good = tmp_path / "good.ckpt"
    trainer.save_checkpoint(good)
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged.ckpt.*damaged or truncated"):
        quiet_trainer(max_epochs=2).fit(Net(), ckpt_path=damaged)


def test_checkpoint_of_another_model_names_the_mismatching_keys(tmp_path: Path) -> None:
    """Loading a checkpoint into a different architecture names the missing and unexpected keys."""

    class Other(Net):
        def __init__(self) -> None:
            super().__init__()
            self.extra = torch.nn.Linear(2, 2)

    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(Net())
    path = tmp_path / "net.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing keys \\['extra.weight', 'extra.bias'\\]"):
        quiet_trainer(max_epochs=1).validate(Other(), ckpt_path=path)


def test_hyperparameters_that_are_not_plain_data_are_left_out_with_a_warning(tmp_path: Path) -> None:
    """A module passed as a hyperparameter is dropped from the checkpoint with a warning naming ignore=."""

    class WithModule(Net):
        def __init__(self, backbone: torch.nn.Module, lr: float = 0.01) -> None:
            super().__init__(lr=lr)
            self.save_hyperparameters()

    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(WithModule(torch.nn.Linear(1, 1)))
    path = tmp_path / "hp.ckpt"
    with pytest.warns(UserWarning, match="hyperparameter 'backbone'.*ignore="):
        trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hyper_parameters"] == {"lr": 0.01}


def test_load_from_checkpoint_rebuilds_the_module_with_overrides(tmp_path: Path) -> None:
    """LightningModule.load_from_checkpoint rebuilds from saved hyperparameters, with keyword overrides and the weights."""
    model = Net(lr=0.05)
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model)
    path = tmp_path / "net.ckpt"
    trainer.save_checkpoint(path)
    loaded = Net.load_from_checkpoint(path)
    assert isinstance(loaded, Net) and loaded.hparams.lr == 0.05
    for ours, theirs in zip(loaded.parameters(), model.parameters()):
        assert torch.equal(ours, theirs)
    assert Net.load_from_checkpoint(path, lr=0.5).hparams.lr == 0.5


def test_datamodule_load_from_checkpoint_restores_its_hyperparameters_and_state(tmp_path: Path) -> None:
    """LightningDataModule.load_from_checkpoint rebuilds from its saved hyperparameters and state."""

    class Data(L.LightningDataModule):
        def __init__(self, batch_size: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.seen = 0

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(TensorDataset(X, Y), batch_size=self.hparams.batch_size)

        def state_dict(self) -> dict[str, Any]:
            return {"seen": 41}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.seen = state_dict["seen"]

    class NoData(Net):
        def train_dataloader(self) -> DataLoader[Any]:
            raise AssertionError("the datamodule's loader must be used")

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(TensorDataset(X[:8], Y[:8]), batch_size=8)

    trainer = quiet_trainer(max_epochs=1, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(NoData(), datamodule=Data(batch_size=20))
    path = tmp_path / "dm.ckpt"
    trainer.save_checkpoint(path)
    data = Data.load_from_checkpoint(path)
    assert (data.hparams.batch_size, data.seen) == (20, 41)


def test_validate_with_ckpt_path_uses_the_saved_weights(tmp_path: Path) -> None:
    """validate(ckpt_path=...) evaluates the checkpoint's weights, not the module's current ones."""
    model = Net()
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model)
    path = tmp_path / "net.ckpt"
    trainer.save_checkpoint(path)
    expected = trainer.validate(model)[0]["val_loss"]
    fresh = Net()
    assert quiet_trainer().validate(fresh, ckpt_path=path)[0]["val_loss"] == pytest.approx(expected)


def test_callbacks_resume_their_state_only_when_fitting(tmp_path: Path) -> None:
    """As in Lightning, validate(ckpt_path=...) restores the module but not callback states; fit does."""

    class Counter(L.Callback):
        def __init__(self) -> None:
            self.loaded: list[tuple[str, Any]] = []

        def state_dict(self) -> dict[str, Any]:
            return {"count": 7}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.loaded.append(("load_state_dict", state_dict["count"]))

        def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            self.loaded.append(("on_load_checkpoint", trainer.state.fn))

    trainer = quiet_trainer(max_epochs=1, callbacks=[Counter()])
    trainer.fit(Net())
    path = tmp_path / "net.ckpt"
    trainer.save_checkpoint(path)
    evaluating = Counter()
    quiet_trainer(callbacks=[evaluating]).validate(Net(), ckpt_path=path)
    assert evaluating.loaded == []
    fitting = Counter()
    quiet_trainer(max_epochs=2, callbacks=[fitting]).fit(Net(), ckpt_path=path)
    assert fitting.loaded == [("on_load_checkpoint", "fit"), ("load_state_dict", 7)]


def test_process_killed_mid_epoch_resumes_from_last_ckpt_to_identical_weights(tmp_path: Path) -> None:
    """A process killed with os._exit mid-epoch and resumed in a new process from ckpt_path='last'
    (ModelCheckpoint save_last, every step) ends with the weights of an uninterrupted run, to 1e-6."""
    import subprocess
    import sys

    script = Path(__file__).parent / "resume_script.py"

    def run(mode: str) -> int:
        return subprocess.run([sys.executable, str(script), str(tmp_path), mode], capture_output=True, text=True).returncode

    assert run("full") == 0
    assert run("crash") == 3 and (tmp_path / "ckpt" / "last.ckpt").is_file()
    assert run("resume") == 0
    full = torch.load(tmp_path / "full.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resume.pt", weights_only=True)
    for a, b in zip(full, resumed):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_a_lightning_checkpoint_loads_and_resumes_like_in_lightning() -> None:
    """A checkpoint written by Lightning 2.6.6 loads with weights_only=True (load_from_checkpoint and
    fit(ckpt_path=...)) and resumes to the counters, learning rate and weights Lightning itself reaches."""
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "parity"))
    import checkpoint_interop

    fixtures = Path(__file__).parent / "fixtures" / "lightning"
    expected = json.loads((fixtures / "interop_resume.json").read_text())
    ours = checkpoint_interop.resume("fulmen", str(fixtures / "interop_lightning.ckpt"))
    assert (ours["global_step"], ours["current_epoch"], ours["hparams"]) == (
        expected["global_step"], expected["current_epoch"], expected["hparams"]
    )
    assert ours["lr"] == pytest.approx(expected["lr"])
    for mine, theirs in zip(ours["weights"], expected["weights"]):
        assert mine == pytest.approx(theirs, abs=1e-6)
