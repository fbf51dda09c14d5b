"""WandbLogger: offline runs (no network) read back from wandb's run file with wandb's own protobuf records."""

from __future__ import annotations

import importlib
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import Logger, MisconfigurationException

from fulmen_loggers import WandbLogger

wandb = pytest.importorskip("wandb", reason="needs the wandb extra: pip install fulmen-loggers[wandb]")

# wandb's generated protobuf module, loaded untyped: the tests type-check without wandb installed
wandb_internal_pb2: Any = importlib.import_module("wandb.proto.wandb_internal_pb2")

_BLOCK = 32768  # wandb's run file is a LevelDB-style log: 32 KiB blocks of framed records
_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version
_RECORD = struct.Struct("<IHB")  # checksum, length, kind (1 full, 2 first, 3 middle, 4 last)


def _frames(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    ident, magic, _version = _HEADER.unpack_from(data)
    assert (ident, magic) == (b":W&B", 0xBEE1)
    pos, pending = _HEADER.size, b""
    while pos + _RECORD.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD.size:
            pos += left
            continue
        _checksum, length, kind = _RECORD.unpack_from(data, pos)
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + _RECORD.size : pos + _RECORD.size + length]
        pos += _RECORD.size + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        else:
            yield pending + chunk


def _records(save_dir: Path) -> list[Any]:
    """The records of the one offline run under ``save_dir``, once wandb has written its exit record.

    ``run.finish()`` can return before wandb's service process has written the file out, so this
    waits (up to 30 s) for the record that closes the run.
    """
    deadline = time.monotonic() + 30
    while True:
        (run_file,) = save_dir.glob("wandb/offline-run-*/run-*.wandb")
        records = []
        for frame in _frames(run_file):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(frame)
            records.append(record)
        if any(record.WhichOneof("record_type") == "exit" for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _read_run(save_dir: Path) -> dict[str, Any]:
    """The run, config, history rows and artifacts of the one offline run under ``save_dir``."""
    out: dict[str, Any] = {"config": {}, "history": [], "artifacts": []}
    for record in _records(save_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {"id": record.run.run_id, "project": record.run.project, "name": record.run.display_name}
            out["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            row = {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
            out["history"].append({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "artifact":
            out["artifacts"].append(
                {"name": record.artifact.name, "type": record.artifact.type, "aliases": sorted(record.artifact.aliases)}
            )
    return out


@pytest.fixture
def quiet_wandb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No console capture, no prompts, no network; the run is finished after the test."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    yield
    if wandb.run is not None:
        wandb.finish()


def _act() -> str:
    return "relu"


def test_wandb_offline_run_reads_back(tmp_path: Path, quiet_wandb: None) -> None:
    """offline=True writes the run, config (callables and classes by name) and stepped history to its run file."""
    logger = WandbLogger(name="first", save_dir=tmp_path, project="proj", offline=True, prefix="train")
    logger.log_hyperparams({"lr": 0.1, "layer": torch.nn.Linear, "act": _act, "device": torch.device("cpu")})
    logger.log_metrics({"loss": 0.5, "acc": torch.tensor(0.25)}, step=0)
    logger.log_metrics({"loss": 0.25}, step=1)
    logger.finalize("success")
    run_id = logger.version
    logger.experiment.finish()

    assert (logger.name, logger.save_dir, logger.log_dir) == ("proj", str(tmp_path), None)
    read = _read_run(tmp_path)
    assert read["run"] == {"id": run_id, "project": "proj", "name": "first"}
    assert {k: v for k, v in read["config"].items() if k != "_wandb"} == {
        "lr": 0.1,
        "layer": "Linear",
        "act": "relu",
        "device": "cpu",
    }
    assert read["history"] == [
        {"train-loss": 0.5, "train-acc": 0.25, "trainer/global_step": 0},
        {"train-loss": 0.25, "trainer/global_step": 1},
    ]


class _Checkpoints:
    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.best_model_path = str(folder / "best.ckpt")
        Path(self.best_model_path).write_bytes(b"weights")
        self.best_model_score = 0.5
        self.best_k_models = {self.best_model_path: 0.5}
        self.save_top_k = 1
        self.monitor = "val_loss"


def test_wandb_log_model_all_logs_checkpoint_artifacts(tmp_path: Path, quiet_wandb: None) -> None:
    """log_model="all" logs each new checkpoint as a model artifact with the latest/best aliases."""
    # offline through wandb.init's own `mode` (offline=True forbids log_model, as in Lightning)
    logger = WandbLogger(save_dir=tmp_path, log_model="all", checkpoint_name="weights", mode="offline")
    logger.log_metrics({"loss": 1.0}, step=0)
    checkpoints = _Checkpoints(tmp_path / "ckpts")
    logger.after_save_checkpoint(checkpoints)
    logger.after_save_checkpoint(checkpoints)  # unchanged file: not logged twice
    logger.experiment.finish()
    read = _read_run(tmp_path)
    assert read["run"]["project"] == "lightning_logs"
    assert read["artifacts"] == [{"name": "weights", "type": "model", "aliases": ["best", "latest"]}]


def test_wandb_offline_with_log_model_is_refused() -> None:
    """offline=True with log_model is a configuration error naming both fixes."""
    with pytest.raises(MisconfigurationException, match="log_model=False, or offline=False"):
        WandbLogger(offline=True, log_model=True)


def test_wandb_satisfies_the_logger_protocol(tmp_path: Path) -> None:
    """WandbLogger is a fulmen_core.Logger (checked by mypy); before the run starts, version is the asked id."""
    logger: Logger = WandbLogger(save_dir=tmp_path, version="abc123", project="p")
    assert (logger.name, logger.version, logger.save_dir) == ("p", "abc123", str(tmp_path))
