"""MLFlowLogger: runs read back with MLflow's own MlflowClient from a local file store and a sqlite store."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import Logger, MisconfigurationException

from fulmen_loggers import MLFlowLogger, MLflowLogger

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install fulmen-loggers[mlflow]")

# loaded untyped, so that the tests type-check whether or not the mlflow extra is installed
MlflowClient: Any = importlib.import_module("mlflow.tracking").MlflowClient


class _Checkpoints:
    """The attributes of a ModelCheckpoint that loggers read, over two real files."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.best_model_path = str(folder / "epoch=1.ckpt")
        self.last_model_path = str(folder / "last.ckpt")
        for path in (self.best_model_path, self.last_model_path):
            Path(path).write_bytes(b"weights")
        self.best_model_score = torch.tensor(0.25)
        self.current_score = torch.tensor(0.5)
        self.best_k_models = {self.best_model_path: torch.tensor(0.25)}
        self.monitor = "val_loss"
        self.mode = "min"
        self.save_top_k = 1


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, key))


def test_mlflow_file_store_run_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Params, metrics, tags, status and checkpoint artifacts logged to a file: store read back with MlflowClient."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    save_dir = tmp_path / "mlruns"
    logger = MLFlowLogger(
        experiment_name="exp", run_name="first", tags={"team": "fulmen"}, save_dir=str(save_dir), log_model=True
    )
    logger.log_hyperparams({"lr": 0.01, "optim": {"name": "adam"}, "long": "x" * 300})
    logger.log_metrics({"loss": 0.5, "acc": torch.tensor(0.75)}, step=0)
    logger.log_metrics({"loss": 0.25}, step=3)
    logger.log_metrics({"loss": 1.0})  # no step: step 0, as in Lightning
    with pytest.warns(RuntimeWarning, match="val@loss"):
        logger.log_metrics({"val@loss": 0.125}, step=3)
    with pytest.warns(UserWarning, match="string"):
        logger.log_metrics({"note": "text"}, step=3)
    checkpoints = _Checkpoints(tmp_path / "ckpts")
    logger.after_save_checkpoint(checkpoints)  # log_model=True with save_top_k=1: kept for the end of the run
    logger.finalize("success")

    assert logger.save_dir == str(save_dir)
    assert logger.log_dir is None
    client = MlflowClient(f"file:{save_dir}")
    experiment = client.get_experiment_by_name("exp")
    assert experiment is not None and logger.name == experiment.experiment_id
    run = client.get_run(str(logger.version))
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == "first" and run.data.tags["team"] == "fulmen"
    assert run.data.params == {"lr": "0.01", "optim/name": "adam", "long": "x" * 250}
    assert _history(client, run.info.run_id, "loss") == [(0, 0.5), (0, 1.0), (3, 0.25)]
    assert _history(client, run.info.run_id, "acc") == [(0, 0.75)]
    assert _history(client, run.info.run_id, "valloss") == [(3, 0.125)]
    assert "note" not in run.data.metrics
    artifacts = {entry.path for entry in client.list_artifacts(run.info.run_id, "epoch=1")}
    assert artifacts == {"epoch=1/epoch=1.ckpt", "epoch=1/metadata.yaml", "epoch=1/aliases.txt"}
    assert {entry.path for entry in client.list_artifacts(run.info.run_id)} == {"epoch=1", "last"}
    # the URI this run exported through mlflow.set_tracking_uri does not redirect the next logger
    assert MLFlowLogger(save_dir=str(tmp_path / "other")).save_dir == str(tmp_path / "other")


def test_mlflow_sqlite_store_statuses_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a sqlite: store, failed/interrupted end FAILED/KILLED, and run_id logs into an existing run."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    failed = MLflowLogger(experiment_name="exp", tracking_uri=uri, prefix="train")
    failed.log_metrics({"loss": 2.0}, step=1)
    failed.finalize("failed")
    resumed = MLFlowLogger(tracking_uri=uri, run_id=failed.run_id)
    resumed.log_metrics({"loss": 1.5}, step=2)
    interrupted = MLFlowLogger(experiment_name="exp", tracking_uri=uri)
    interrupted.log_hyperparams({"seed": 1})
    interrupted.finalize("interrupted")

    client = MlflowClient(uri)
    first = client.get_run(str(failed.run_id))
    assert first.info.status == "FAILED"
    assert _history(client, first.info.run_id, "train-loss") == [(1, 2.0)]
    assert _history(client, first.info.run_id, "loss") == [(2, 1.5)]
    assert client.get_run(str(interrupted.run_id)).info.status == "KILLED"
    assert failed.experiment_id == interrupted.experiment_id
    assert failed.save_dir is None


def test_mlflow_refused_file_store_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When MLflow refuses the file store, the error names sqlite and MLFLOW_ALLOW_FILE_STORE."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = MLFlowLogger(save_dir=str(tmp_path / "mlruns"))
    try:
        logger.log_metrics({"loss": 1.0}, step=0)
    except MisconfigurationException as err:
        assert "sqlite:///" in str(err) and "MLFLOW_ALLOW_FILE_STORE" in str(err)
    else:
        pytest.skip(f"mlflow {mlflow.__version__} still accepts the file store")


def test_mlflow_satisfies_the_logger_protocol(tmp_path: Path) -> None:
    """MLFlowLogger is a fulmen_core.Logger (checked by mypy); the two spellings are one class."""
    logger: Logger = MLFlowLogger(tracking_uri=f"sqlite:///{tmp_path}/db.sqlite")
    assert MLflowLogger is MLFlowLogger and logger.save_dir is None
