"""``ModelCheckpoint``: file names, top-k bookkeeping, ``last.ckpt``, triggers, state and resume.

The expected names, bookkeeping and state keys were recorded from Lightning 2.6.6 (torch 2.13.0)
running the same modules, data and arguments (4 training batches and 2 validation batches per epoch).
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from fulmen_core import LightningModule, MisconfigurationException
from fulmen_loops import LoopSettings, Runner
from torch.utils.data import DataLoader, TensorDataset

from fulmen_callbacks import ModelCheckpoint

VALUES = [0.5, 0.3, 0.4, 0.1, 0.2]


class Scripted(LightningModule):
    """Trains a linear layer and logs ``val_loss`` from a fixed list, one value per epoch."""

    def __init__(self, values: Sequence[float] = VALUES) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.values = list(values)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss: torch.Tensor = self.layer(batch[0]).pow(2).mean()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        value = 9.0 if self.trainer.sanity_checking else self.values[self.current_epoch]
        self.log("val_loss", torch.tensor(value))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class NoValidation(Scripted):
    """Logs its metric in ``on_train_epoch_end`` and has no validation."""

    validation_step = LightningModule.validation_step  # type: ignore[assignment]

    def on_train_epoch_end(self) -> None:
        self.log("em", torch.tensor([3.0, 1.0, 2.0][self.current_epoch]))


class Boom(Scripted):
    """Raises in the third batch of the second epoch."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.current_epoch == 1 and batch_idx == 2:
            raise RuntimeError("boom")
        return super().training_step(batch, batch_idx)


class FakeLogger:
    """The attributes of a logger that decide the default checkpoint directory."""

    def __init__(self, save_dir: str | None, name: str, version: int | str) -> None:
        self._save_dir, self._name, self._version = save_dir, name, version

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        return self._version

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        return None

    def log_hyperparams(self, params: Any) -> None:
        return None

    def save(self) -> None:
        return None

    def finalize(self, status: str) -> None:
        return None


def loader(n: int) -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=2)


def fit(
    root: Path,
    callback: ModelCheckpoint,
    values: Sequence[float] = VALUES,
    module: LightningModule | None = None,
    validate: bool = True,
    loggers: Sequence[Any] = (),
    ckpt_path: str | None = None,
    **settings: Any,
) -> Runner:
    runner = Runner(
        callbacks=[callback],
        loggers=loggers,
        settings=LoopSettings(**{"max_epochs": len(values), **settings}),
        default_root_dir=root,
    )
    runner.fit(module or Scripted(values), loader(8), loader(4) if validate else None, ckpt_path=ckpt_path)
    return runner


def files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() or p.is_symlink())


def names(paths: Any) -> list[str]:
    return sorted(os.path.basename(p) for p in paths)


def scores(callback: ModelCheckpoint) -> dict[str, float]:
    return {os.path.basename(p): round(v.item(), 4) for p, v in callback.best_k_models.items()}


def test_top_k_keeps_the_best_files_and_bookkeeping_as_lightning(tmp_path: Path) -> None:
    """save_top_k=2 keeps the two lowest val_loss files, removes the others, and saves last.ckpt."""
    cb = ModelCheckpoint(
        dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=2, save_last=True, filename="{epoch}-{val_loss:.2f}"
    )
    fit(tmp_path, cb)
    assert files(tmp_path / "ck") == ["epoch=3-val_loss=0.10.ckpt", "epoch=4-val_loss=0.20.ckpt", "last.ckpt"]
    assert os.path.basename(cb.best_model_path) == "epoch=3-val_loss=0.10.ckpt"
    assert cb.best_model_score is not None and cb.best_model_score.item() == pytest.approx(0.1)
    assert scores(cb) == {"epoch=3-val_loss=0.10.ckpt": 0.1, "epoch=4-val_loss=0.20.ckpt": 0.2}
    assert os.path.basename(cb.kth_best_model_path) == "epoch=4-val_loss=0.20.ckpt"
    assert cb.kth_value.item() == pytest.approx(0.2)
    assert cb.current_score is not None and cb.current_score.item() == pytest.approx(0.2)
    assert cb.last_model_path == str(tmp_path / "ck" / "last.ckpt")
    checkpoint = torch.load(cb.last_model_path, weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (4, 20)


def test_default_name_and_directory_without_a_logger(tmp_path: Path) -> None:
    """With no arguments the latest epoch is kept as <default_root_dir>/checkpoints/epoch=E-step=S.ckpt."""
    cb = ModelCheckpoint()
    fit(tmp_path, cb)
    assert files(tmp_path) == ["checkpoints/epoch=4-step=20.ckpt"]
    assert cb.dirpath == str(tmp_path / "checkpoints")
    assert cb.best_model_path == str(tmp_path / "checkpoints" / "epoch=4-step=20.ckpt")
    assert cb.best_model_score is None and cb.best_k_models == {} and cb.last_model_path == ""


@pytest.mark.parametrize(
    ("save_dir", "version", "expected"),
    [("logs", 3, "logs/exp/version_3/checkpoints"), (None, "run-a", "exp/run-a/checkpoints")],
)
def test_default_directory_follows_the_first_logger(
    tmp_path: Path, save_dir: str | None, version: int | str, expected: str
) -> None:
    """With a logger, checkpoints go to save_dir/name/version/checkpoints (default_root_dir without save_dir)."""
    cb = ModelCheckpoint()
    logger = FakeLogger(str(tmp_path / save_dir) if save_dir else None, "exp", version)
    fit(tmp_path, cb, values=[0.5], loggers=[logger])
    assert cb.dirpath == str(tmp_path / expected)
    assert files(tmp_path / expected) == ["epoch=0-step=4.ckpt"]


def test_save_top_k_minus_one_keeps_every_checkpoint_in_max_mode(tmp_path: Path) -> None:
    """save_top_k=-1 keeps all files; in max mode the best is the highest value and kth the lowest."""
    cb = ModelCheckpoint(monitor="val_loss", save_top_k=-1, mode="max")
    fit(tmp_path, cb)
    assert files(tmp_path / "checkpoints") == [f"epoch={e}-step={4 * (e + 1)}.ckpt" for e in range(5)]
    assert os.path.basename(cb.best_model_path) == "epoch=0-step=4.ckpt"
    assert os.path.basename(cb.kth_best_model_path) == "epoch=3-step=16.ckpt"
    assert len(cb.best_k_models) == 5


def test_save_top_k_zero_saves_only_last(tmp_path: Path) -> None:
    """save_top_k=0 saves no ranked checkpoint; save_last=True still leaves last.ckpt when training ends."""
    cb = ModelCheckpoint(monitor="val_loss", save_top_k=0, save_last=True)
    fit(tmp_path, cb)
    assert files(tmp_path / "checkpoints") == ["last.ckpt"]
    assert cb.best_model_path == "" and cb.best_k_models == {}
    assert torch.load(cb.last_model_path, weights_only=True)["global_step"] == 20


def test_save_last_link_points_at_the_newest_checkpoint(tmp_path: Path) -> None:
    """save_last='link' makes last.ckpt a relative symbolic link to the newest saved checkpoint."""
    cb = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last="link")
    fit(tmp_path, cb)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_symlink() and os.readlink(last) == "epoch=4-step=20.ckpt"
    assert files(tmp_path / "checkpoints") == ["epoch=3-step=16.ckpt", "epoch=4-step=20.ckpt", "last.ckpt"]
    assert torch.load(last, weights_only=True)["global_step"] == 20


def test_save_last_link_copies_where_links_are_impossible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a symbolic link cannot be made, last.ckpt becomes a copy of the newest checkpoint."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("symbolic links are not supported here")

    monkeypatch.setattr(os, "symlink", refuse)
    cb = ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last="link")
    fit(tmp_path, cb, values=[0.5, 0.3])
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert not last.is_symlink()
    assert last.read_bytes() == (tmp_path / "checkpoints" / "epoch=1-step=8.ckpt").read_bytes()
    assert files(tmp_path / "checkpoints") == ["epoch=1-step=8.ckpt", "last.ckpt"]


def test_checkpoint_name_last_can_be_a_template(tmp_path: Path) -> None:
    """A CHECKPOINT_NAME_LAST template names each last checkpoint and removes the previous one."""

    class EpochLast(ModelCheckpoint):
        CHECKPOINT_NAME_LAST = "{epoch}-last"

    cb = EpochLast(save_last=True, dirpath=tmp_path)
    fit(tmp_path, cb, values=[0.5, 0.3, 0.2])
    assert files(tmp_path) == ["epoch=2-last.ckpt", "epoch=2-step=12.ckpt"]
    assert os.path.basename(cb.last_model_path) == "epoch=2-last.ckpt"


def test_format_checkpoint_name_matches_lightnings_examples(tmp_path: Path) -> None:
    """Templates fill in metrics with their format specs, names, -vN, a prefix, and 0 for unknown names."""
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}")
    assert os.path.basename(cb.format_checkpoint_name({"epoch": 0})) == "epoch=0.ckpt"
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch:03d}")
    assert os.path.basename(cb.format_checkpoint_name({"epoch": 5})) == "epoch=005.ckpt"
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}-{val_loss:.2f}")
    assert os.path.basename(cb.format_checkpoint_name({"epoch": 2, "val_loss": 0.123456})) == "epoch=2-val_loss=0.12.ckpt"
    assert os.path.basename(cb.format_checkpoint_name({"epoch": 2, "val_loss": 0.12}, filename="{epoch:d}")) == "epoch=2.ckpt"
    cb = ModelCheckpoint(
        dirpath=tmp_path, filename="epoch={epoch}-validation_loss={val_loss:.2f}", auto_insert_metric_name=False
    )
    assert os.path.basename(cb.format_checkpoint_name({"epoch": 2, "val_loss": 0.123456})) == "epoch=2-validation_loss=0.12.ckpt"
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{missing:d}")
    assert os.path.basename(cb.format_checkpoint_name({})) == "missing=0.ckpt"
    assert ModelCheckpoint(filename="{step}").format_checkpoint_name({"step": 0}) == "step=0.ckpt"
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}-{val/loss:.2f}-{missing}")
    metrics = {"epoch": torch.tensor(3), "val/loss": torch.tensor(0.123)}
    assert cb.format_checkpoint_name(metrics) == str(tmp_path / "epoch=3-val/loss=0.12-missing=0.ckpt")
    assert cb.format_checkpoint_name(metrics, ver=2, prefix="pre") == str(
        tmp_path / "pre-epoch=3-val/loss=0.12-missing=0-v2.ckpt"
    )


def test_a_format_that_does_not_fit_the_value_names_the_template() -> None:
    """A format spec that cannot format the metric raises an error naming the template and the value."""
    cb = ModelCheckpoint(filename="{val_loss:d}")
    with pytest.raises(MisconfigurationException, match=r"filename='\{val_loss:d\}'.*val_loss=0.5"):
        cb.format_checkpoint_name({"val_loss": torch.tensor(0.5)})


def test_filename_without_auto_inserted_metric_names(tmp_path: Path) -> None:
    """auto_insert_metric_name=False writes only the formatted values."""
    cb = ModelCheckpoint(filename="e{epoch:02d}-v{val_loss:.3f}", auto_insert_metric_name=False, monitor="val_loss")
    fit(tmp_path, cb, values=[0.5, 0.3])
    assert files(tmp_path / "checkpoints") == ["e01-v0.300.ckpt"]


def test_version_counter_avoids_clashing_names(tmp_path: Path) -> None:
    """A fixed filename gets -v1, -v2 for later checkpoints; with the counter off the file is overwritten."""
    cb = ModelCheckpoint(dirpath=tmp_path / "on", filename="fixed", monitor="val_loss", save_top_k=-1)
    fit(tmp_path, cb, values=[0.5, 0.3, 0.4])
    assert files(tmp_path / "on") == ["fixed-v1.ckpt", "fixed-v2.ckpt", "fixed.ckpt"]
    assert scores(cb) == {"fixed.ckpt": 0.5, "fixed-v1.ckpt": 0.3, "fixed-v2.ckpt": 0.4}
    assert os.path.basename(cb.best_model_path) == "fixed-v1.ckpt"
    off = ModelCheckpoint(
        dirpath=tmp_path / "off", filename="fixed", monitor="val_loss", save_top_k=-1, enable_version_counter=False
    )
    fit(tmp_path, off, values=[0.5, 0.3, 0.4])
    assert files(tmp_path / "off") == ["fixed.ckpt"]
    assert scores(off) == {"fixed.ckpt": 0.4}


def test_a_second_run_into_the_same_directory_adds_versions_and_warns(tmp_path: Path) -> None:
    """Files of an earlier run are never overwritten: the new run writes -v1 names and warns at start."""
    fit(tmp_path, ModelCheckpoint(save_last=True, dirpath=tmp_path / "ck"), values=[0.5, 0.3])
    second = ModelCheckpoint(save_last=True, dirpath=tmp_path / "ck")
    with pytest.warns(UserWarning, match="exists and is not empty"):
        fit(tmp_path, second, values=[0.5, 0.3])
    assert files(tmp_path / "ck") == [
        "epoch=1-step=8-v1.ckpt",
        "epoch=1-step=8.ckpt",
        "last-v1.ckpt",
        "last.ckpt",
    ]
    assert names([second.best_model_path, second.last_model_path]) == ["epoch=1-step=8-v1.ckpt", "last-v1.ckpt"]
    assert names(second._find_last_checkpoints(SimpleNamespace(loggers=[]))) == ["last-v1.ckpt", "last.ckpt"]


def test_every_n_train_steps_saves_by_optimizer_step(tmp_path: Path) -> None:
    """every_n_train_steps=3 saves at steps 3 and 6 and not at the epochs' ends."""
    cb = ModelCheckpoint(every_n_train_steps=3, save_top_k=-1)
    fit(tmp_path, cb, values=[0.5, 0.3])
    assert files(tmp_path / "checkpoints") == ["epoch=0-step=3.ckpt", "epoch=1-step=6.ckpt"]


def test_every_n_train_steps_waits_for_a_monitored_validation_metric(tmp_path: Path) -> None:
    """A step-triggered save whose metric is not logged yet waits; the next step save uses the logged value."""
    cb = ModelCheckpoint(every_n_train_steps=3, save_top_k=-1, monitor="val_loss")
    fit(tmp_path, cb, values=[0.5, 0.3])
    assert files(tmp_path / "checkpoints") == ["epoch=1-step=6.ckpt"]
    assert scores(cb) == {"epoch=1-step=6.ckpt": 0.5}


def test_zero_train_time_interval_saves_every_step(tmp_path: Path) -> None:
    """train_time_interval=timedelta(0) is a valid interval that is due after every step."""
    cb = ModelCheckpoint(train_time_interval=datetime.timedelta(0), save_top_k=-1)
    fit(tmp_path, cb, values=[0.5])
    assert files(tmp_path / "checkpoints") == [f"epoch=0-step={s}.ckpt" for s in range(1, 5)]


def test_every_n_epochs_and_check_val_every_n_epoch(tmp_path: Path) -> None:
    """every_n_epochs=2, or validation every 2 epochs, saves after epochs 1 and 3 only."""
    cb = ModelCheckpoint(every_n_epochs=2, save_top_k=-1, dirpath=tmp_path / "a")
    fit(tmp_path, cb)
    assert files(tmp_path / "a") == ["epoch=1-step=8.ckpt", "epoch=3-step=16.ckpt"]
    cb = ModelCheckpoint(save_top_k=-1, dirpath=tmp_path / "b")
    fit(tmp_path, cb, check_val_every_n_epoch=2)
    assert files(tmp_path / "b") == ["epoch=1-step=8.ckpt", "epoch=3-step=16.ckpt"]


def test_several_validations_per_epoch_save_after_each(tmp_path: Path) -> None:
    """With val_check_interval=0.5 a checkpoint follows each of the two validations of an epoch."""
    cb = ModelCheckpoint(save_top_k=-1, monitor="val_loss")
    fit(tmp_path, cb, values=[0.5, 0.3], val_check_interval=0.5)
    assert files(tmp_path / "checkpoints") == [f"epoch={s // 5}-step={s}.ckpt" for s in (2, 4)] + [
        f"epoch=1-step={s}.ckpt" for s in (6, 8)
    ]
    assert os.path.basename(cb.best_model_path) == "epoch=1-step=6.ckpt"


def test_save_on_train_epoch_end_true(tmp_path: Path) -> None:
    """save_on_train_epoch_end=True saves at the training epoch's end, with that epoch's val_loss."""
    cb = ModelCheckpoint(save_top_k=-1, save_on_train_epoch_end=True, monitor="val_loss")
    fit(tmp_path, cb, values=[0.5, 0.3])
    assert scores(cb) == {"epoch=0-step=4.ckpt": 0.5, "epoch=1-step=8.ckpt": 0.3}


def test_monitor_sees_what_the_module_logs_in_on_train_epoch_end(tmp_path: Path) -> None:
    """The checkpoint runs after the module's on_train_epoch_end, so a metric logged there ranks files."""
    cb = ModelCheckpoint(monitor="em", dirpath=tmp_path, filename="{epoch}-{em:.1f}")
    fit(tmp_path, cb, values=[0.0] * 3, module=NoValidation([0.0] * 3), validate=False)
    assert files(tmp_path) == ["epoch=1-em=1.0.ckpt"]


def test_nan_ranks_last(tmp_path: Path) -> None:
    """A NaN score counts as the worst value (inf in min mode) and is replaced by the next better one."""
    cb = ModelCheckpoint(save_top_k=2, monitor="val_loss")
    fit(tmp_path, cb, values=[0.5, math.nan, 0.4])
    assert scores(cb) == {"epoch=0-step=4.ckpt": 0.5, "epoch=2-step=12.ckpt": 0.4}
    assert files(tmp_path / "checkpoints") == ["epoch=0-step=4.ckpt", "epoch=2-step=12.ckpt"]


def test_unknown_monitor_names_the_key_and_the_logged_metrics(tmp_path: Path) -> None:
    """Monitoring a metric never logged raises after validation, listing the metrics that exist."""
    cb = ModelCheckpoint(monitor="nope")
    message = (
        r"`ModelCheckpoint\(monitor='nope'\)` could not find the monitored key in the returned metrics: "
        r"\['train_loss', 'val_loss', 'epoch', 'step'\]\. HINT: Did you call `log\('nope', value\)`"
    )
    with pytest.raises(MisconfigurationException, match=message):
        fit(tmp_path, cb, values=[0.5])


def test_unknown_monitor_without_validation_warns_and_saves_nothing(tmp_path: Path) -> None:
    """Without validation a missing monitor only warns (once), as in Lightning, and no file is written."""
    cb = ModelCheckpoint(monitor="nope", dirpath=tmp_path / "ck")
    with pytest.warns(UserWarning, match=r"monitor='nope'.*\['train_loss', 'epoch', 'step'\]") as record:
        fit(tmp_path, cb, values=[0.5, 0.3], validate=False)
    assert len([w for w in record if "nope" in str(w.message)]) == 1
    assert not (tmp_path / "ck").exists()


def test_no_saving_during_the_sanity_check_or_outside_fit() -> None:
    """The hooks save nothing while sanity checking, outside fit, under fast_dev_run, or twice per step."""
    saved: list[str] = []
    trainer = SimpleNamespace(
        fast_dev_run=False,
        sanity_checking=True,
        state=SimpleNamespace(fn="fit"),
        global_step=5,
        current_epoch=0,
        callback_metrics={"val_loss": torch.tensor(0.5)},
        is_global_zero=True,
        loggers=[],
        num_val_batches=[2],
        check_val_every_n_epoch=1,
        val_check_interval=0.5,
        save_checkpoint=lambda path, weights_only: saved.append(path),
    )
    module = LightningModule()
    cb = ModelCheckpoint(dirpath="/nonexistent/ck", monitor="val_loss")
    cb.on_validation_end(trainer, module)
    trainer.sanity_checking, trainer.state.fn = False, "validate"
    cb.on_validation_end(trainer, module)
    trainer.state.fn, trainer.fast_dev_run = "fit", True
    cb.on_validation_end(trainer, module)
    assert saved == []
    trainer.fast_dev_run = False
    cb.on_validation_end(trainer, module)
    cb.on_validation_end(trainer, module)
    assert saved == ["/nonexistent/ck/epoch=0-step=5.ckpt"]


def test_sanity_check_metrics_never_reach_a_file(tmp_path: Path) -> None:
    """A fit that fails right after the sanity check has written no checkpoint."""

    class StopAfterSanity(Scripted):
        def on_train_start(self) -> None:
            raise RuntimeError("stop")

    cb = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_last=True)
    with pytest.raises(RuntimeError, match="stop"):
        fit(tmp_path, cb, module=StopAfterSanity(), num_sanity_val_steps=2)
    assert not (tmp_path / "ck").exists() and cb.best_k_models == {}


def test_fast_dev_run_writes_no_checkpoint(tmp_path: Path) -> None:
    """Under fast_dev_run nothing is saved, last.ckpt included."""
    cb = ModelCheckpoint(save_last=True, save_top_k=-1)
    fit(tmp_path, cb, values=[0.5, 0.3], fast_dev_run=True)
    assert files(tmp_path) == []


def test_save_weights_only_leaves_out_the_training_state(tmp_path: Path) -> None:
    """save_weights_only=True writes the weights without optimizer or callback state."""
    cb = ModelCheckpoint(save_weights_only=True)
    fit(tmp_path, cb, values=[0.5])
    checkpoint = torch.load(cb.best_model_path, weights_only=True)
    assert "state_dict" in checkpoint and "optimizer_states" not in checkpoint and "callbacks" not in checkpoint


def test_save_on_exception_saves_the_interrupted_run(tmp_path: Path) -> None:
    """save_on_exception=True saves the run at the failing step and updates last.ckpt, then re-raises."""
    cb = ModelCheckpoint(save_on_exception=True, save_last=True, dirpath=tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, cb, module=Boom(), values=[0.5, 0.3, 0.4])
    assert files(tmp_path) == ["epoch=0-step=4.ckpt", "epoch=1-step=6.ckpt", "last.ckpt"]
    assert os.path.basename(cb.best_model_path) == "epoch=0-step=4.ckpt"
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 6


def test_state_key_is_lightnings() -> None:
    """state_key holds the class name and the monitor, mode and trigger arguments, as Lightning writes it."""
    assert ModelCheckpoint(monitor="val_loss").state_key == (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None}"
    )
    assert ModelCheckpoint(monitor="val_loss", mode="max", every_n_train_steps=5).state_key == (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'max', 'every_n_train_steps': 5, "
        "'every_n_epochs': 0, 'train_time_interval': None}"
    )
    assert ModelCheckpoint(train_time_interval=datetime.timedelta(seconds=3)).state_key == (
        "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 0, 'train_time_interval': datetime.timedelta(seconds=3)}"
    )


def test_state_dict_round_trip_and_checkpoint_entry(tmp_path: Path) -> None:
    """state_dict has Lightning's keys, lies in the file under state_key, and restores into a new callback."""
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, save_last=True)
    fit(tmp_path, cb, values=[0.5, 0.3, 0.4])
    state = cb.state_dict()
    assert list(state) == [
        "monitor",
        "best_model_score",
        "best_model_path",
        "current_score",
        "dirpath",
        "best_k_models",
        "kth_best_model_path",
        "kth_value",
        "last_model_path",
    ]
    stored = torch.load(cb.last_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert stored["best_model_path"] == cb.best_model_path and stored["dirpath"] == str(tmp_path)
    assert scores(cb) == {"epoch=1-step=8.ckpt": 0.3, "epoch=2-step=12.ckpt": 0.4}

    same = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    same.load_state_dict(stored)
    assert same.best_k_models.keys() == cb.best_k_models.keys()
    assert (same.best_model_path, same.kth_best_model_path, same.last_model_path) == (
        cb.best_model_path,
        cb.kth_best_model_path,
        cb.last_model_path,
    )
    assert same.best_model_score is not None and same.best_model_score.item() == pytest.approx(0.3)
    assert same.kth_value.item() == pytest.approx(0.4)

    moved = ModelCheckpoint(dirpath=tmp_path / "elsewhere", monitor="val_loss", save_top_k=2)
    with pytest.warns(UserWarning, match="dirpath has changed"):
        moved.load_state_dict(stored)
    assert moved.best_model_path == cb.best_model_path and moved.best_k_models == {} and moved.last_model_path == ""


def test_resume_from_last_continues_the_top_k(tmp_path: Path) -> None:
    """fit(ckpt_path='last') continues at the next epoch and keeps ranking against the restored top k."""
    cb = ModelCheckpoint(save_last=True, monitor="val_loss", save_top_k=2, dirpath=tmp_path / "ck")
    fit(tmp_path, cb, values=[0.5, 0.3, 0.4])
    assert names(cb._find_last_checkpoints(SimpleNamespace(loggers=[]))) == ["last.ckpt"]
    with pytest.warns(UserWarning, match="exists and is not empty"):
        runner = fit(tmp_path, cb, values=[0.5, 0.3, 0.4, 0.1, 0.35], ckpt_path="last")
    assert (runner.global_step, runner.current_epoch) == (20, 5)
    assert files(tmp_path / "ck") == ["epoch=1-step=8.ckpt", "epoch=3-step=16.ckpt", "last.ckpt"]
    assert os.path.basename(cb.best_model_path) == "epoch=3-step=16.ckpt"


def test_a_new_callback_resumes_its_state_from_the_file(tmp_path: Path) -> None:
    """A fresh ModelCheckpoint resuming from last.ckpt restores best_k_models and removes files that drop out."""
    first = ModelCheckpoint(save_last=True, monitor="val_loss", save_top_k=2, dirpath=tmp_path / "ck")
    fit(tmp_path, first, values=[0.5, 0.3, 0.4])
    second = ModelCheckpoint(save_last=True, monitor="val_loss", save_top_k=2, dirpath=tmp_path / "ck")
    with pytest.warns(UserWarning, match="exists and is not empty"):
        fit(tmp_path, second, values=[0.5, 0.3, 0.4, 0.1, 0.35], ckpt_path=first.last_model_path)
    assert files(tmp_path / "ck") == ["epoch=1-step=8.ckpt", "epoch=3-step=16.ckpt", "last.ckpt"]
    assert scores(second) == {"epoch=1-step=8.ckpt": 0.3, "epoch=3-step=16.ckpt": 0.1}
    assert second.last_model_path == first.last_model_path


def test_only_files_inside_dirpath_are_removed(tmp_path: Path) -> None:
    """A checkpoint outside dirpath, the new file itself, or the resumed-from file is never removed."""
    cb = ModelCheckpoint(dirpath=tmp_path / "ck")
    trainer = SimpleNamespace(ckpt_path=str(tmp_path / "ck" / "resumed.ckpt"))
    inside = str(tmp_path / "ck" / "a.ckpt")
    assert cb._should_remove_checkpoint(trainer, inside, str(tmp_path / "ck" / "b.ckpt"))
    assert not cb._should_remove_checkpoint(trainer, str(tmp_path / "other" / "a.ckpt"), inside)
    assert not cb._should_remove_checkpoint(trainer, inside, inside)
    assert not cb._should_remove_checkpoint(trainer, str(tmp_path / "ck" / "resumed.ckpt"), inside)


def test_to_yaml_writes_the_best_k_scores(tmp_path: Path) -> None:
    """to_yaml writes best_k_models as a YAML mapping of path to score, read back as floats."""
    yaml = pytest.importorskip("yaml")
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, filename="{epoch}")
    fit(tmp_path, cb, values=[0.5, 0.3, 0.2])
    cb.to_yaml()
    loaded = yaml.safe_load((tmp_path / "best_k_models.yaml").read_text())
    assert loaded == {str(tmp_path / "epoch=1.ckpt"): pytest.approx(0.3), str(tmp_path / "epoch=2.ckpt"): pytest.approx(0.2)}
    cb.best_k_models = {"odd: name.ckpt": torch.tensor(math.inf), "tiny.ckpt": torch.tensor(1e-5)}
    cb.to_yaml(tmp_path / "other.yaml")
    assert yaml.safe_load((tmp_path / "other.yaml").read_text()) == {
        "odd: name.ckpt": math.inf,
        "tiny.ckpt": pytest.approx(1e-5),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "foo"}, "`mode` can be min, max but got foo"),
        ({"save_top_k": -2}, r"Invalid value for save_top_k=-2\. Must be >= -1"),
        ({"save_top_k": 2}, r"save_top_k=2, monitor=None\) is not a valid configuration.*pass monitor="),
        ({"every_n_epochs": 2, "every_n_train_steps": 3}, "should be mutually exclusive"),
        ({"every_n_train_steps": -1}, r"every_n_train_steps=-1\. Must be >= 0"),
        ({"save_last": "yes"}, r"save_last='yes'.*use True"),
        ({"train_time_interval": 30}, "must be a datetime.timedelta"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    """Each invalid argument raises a MisconfigurationException naming it and the valid choices."""
    with pytest.raises(MisconfigurationException, match=message):
        ModelCheckpoint(**kwargs)


def test_a_superseded_sharded_checkpoint_directory_is_removed(tmp_path: Path) -> None:
    """A checkpoint that is a directory (FSDP's sharded form) is removed whole, as a file would be;
    other ranks remove nothing."""
    callback = ModelCheckpoint(dirpath=tmp_path)
    sharded = tmp_path / "epoch=0-step=4.ckpt"
    sharded.mkdir()
    (sharded / "meta.pt").write_bytes(b"x")
    callback._remove_checkpoint(SimpleNamespace(is_global_zero=False), str(sharded))
    assert sharded.is_dir()
    callback._remove_checkpoint(SimpleNamespace(is_global_zero=True), str(sharded))
    assert not sharded.exists()
