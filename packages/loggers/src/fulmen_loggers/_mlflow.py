"""``MLFlowLogger``: metrics, params and checkpoints to an MLflow tracking store."""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from fulmen_core import MisconfigurationException
from torch import Tensor

from fulmen_loggers._checkpoints import scan_checkpoints
from fulmen_loggers._utils import (
    LOGGER_JOIN_CHAR,
    Params,
    add_prefix,
    check_writable_dir,
    convert_params,
    flatten_dict,
    is_global_zero,
    require_extra,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

LOCAL_FILE_URI_PREFIX = "file:"
#: URIs this package put into $MLFLOW_TRACKING_URI (``mlflow.set_tracking_uri`` exports it), which a
#: later logger must not mistake for the user's own setting.
_URIS_WE_SET: set[str] = set()
_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
_CHECKPOINT_ATTRS = (
    "monitor",
    "mode",
    "save_last",
    "save_top_k",
    "save_weights_only",
    "_every_n_train_steps",
    "_every_n_val_epochs",
)


class MLFlowLogger:
    """Log to an MLflow tracking store: a local ``file:`` folder, a ``sqlite:///`` database or a server.

    Arguments and behaviour are those of Lightning's ``MLFlowLogger``. Needs
    ``pip install fulmen-loggers[mlflow]``; mlflow is imported on first use, not at construction.

    Args:
        experiment_name: The MLflow experiment; created when it does not exist.
        run_name: The run's name (the ``mlflow.runName`` tag).
        tracking_uri: Where to log; defaults to ``$MLFLOW_TRACKING_URI``, else ``file:<save_dir>``.
            MLflow 3.x refuses the ``file:`` store unless ``MLFLOW_ALLOW_FILE_STORE=true``; a
            ``sqlite:///path/mlflow.db`` URI needs no server and no opt-in.
        tags: Tags for the new run.
        save_dir: The folder for ``file:`` tracking when no ``tracking_uri`` is given.
        log_model: ``True`` logs the checkpoints of a checkpoint callback as artifacts when the run
            ends, ``"all"`` each time one is saved, ``False`` never.
        prefix: Put ``"<prefix>-"`` before every metric key.
        artifact_location: Artifact location of a newly created experiment.
        run_id: Log into this existing run instead of starting a new one.
        synchronous: Passed to MLflow's ``log_batch`` (``False`` logs in the background).
        checkpoint_path_prefix: Put this path before each checkpoint's artifact path.
    """

    LOGGER_JOIN_CHAR = LOGGER_JOIN_CHAR

    def __init__(
        self,
        experiment_name: str = "lightning_logs",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        save_dir: str | None = "./mlruns",
        log_model: Literal[True, False, "all"] = False,
        prefix: str = "",
        artifact_location: str | None = None,
        run_id: str | None = None,
        synchronous: bool | None = None,
        checkpoint_path_prefix: str = "",
    ) -> None:
        require_extra("mlflow", "mlflow", "MLFlowLogger")
        if not tracking_uri:
            from_env = os.environ.get("MLFLOW_TRACKING_URI")
            if from_env and from_env in _URIS_WE_SET:
                from_env = None  # set by an earlier logger's mlflow.set_tracking_uri, not by the user
            tracking_uri = from_env or f"{LOCAL_FILE_URI_PREFIX}{save_dir}"
        local = _local_store_dir(tracking_uri)
        if local is not None:
            check_writable_dir(local, "MLFlowLogger")
        self._experiment_name = experiment_name
        self._experiment_id: str | None = None
        self._tracking_uri = tracking_uri
        self._run_name = run_name
        self._run_id = run_id
        self.tags = tags
        self._log_model = log_model
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callback: Any = None
        self._prefix = prefix
        self._artifact_location = artifact_location
        self._log_batch_kwargs: dict[str, Any] = {} if synchronous is None else {"synchronous": synchronous}
        self._checkpoint_path_prefix = checkpoint_path_prefix
        self._client: MlflowClient | None = None
        self._initialized = False

    def _make_client(self) -> MlflowClient:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            return MlflowClient(self._tracking_uri)
        except MlflowException as err:
            hint = ""
            if "MLFLOW_ALLOW_FILE_STORE" in str(err):
                hint = (
                    " This MLflow refuses the file store: pass tracking_uri='sqlite:///<dir>/mlflow.db' "
                    "(no server needed), or set MLFLOW_ALLOW_FILE_STORE=true."
                )
            raise MisconfigurationException(
                f"MLFlowLogger could not open the tracking store {self._tracking_uri!r}: {err.message}{hint}"
            ) from err

    @property
    def experiment(self) -> MlflowClient:
        """The ``MlflowClient``; the first access opens the store and creates the experiment and run."""
        if self._client is None:
            self._client = self._make_client()
        if self._initialized:
            return self._client
        import mlflow

        if os.environ.get("MLFLOW_TRACKING_URI") != self._tracking_uri:
            _URIS_WE_SET.add(self._tracking_uri)
        mlflow.set_tracking_uri(self._tracking_uri)  # so mlflow.log_* in user code goes to this store too
        client = self._client
        if self._run_id is not None:
            self._experiment_id = client.get_run(self._run_id).info.experiment_id
            self._initialized = True
            return client
        if self._experiment_id is None:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is not None and found.lifecycle_stage != "deleted":
                self._experiment_id = found.experiment_id
            else:
                self._experiment_id = client.create_experiment(
                    name=self._experiment_name, artifact_location=self._artifact_location
                )
        tags = dict(self.tags or {})
        if self._run_name is not None:
            from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

            if MLFLOW_RUN_NAME in tags:
                warnings.warn(
                    f"MLFlowLogger: the tag {MLFLOW_RUN_NAME} in `tags` is overridden by run_name={self._run_name!r}.",
                    stacklevel=2,
                )
            tags[MLFLOW_RUN_NAME] = self._run_name
        self.tags = tags
        from mlflow.tracking.context.registry import resolve_tags

        run = client.create_run(experiment_id=self._experiment_id, tags=resolve_tags(tags))
        self._run_id = run.info.run_id
        self._initialized = True
        return client

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (starting the run if needed)."""
        _ = self.experiment
        return self._run_id

    @property
    def experiment_id(self) -> str | None:
        """The MLflow experiment id (creating the experiment if needed)."""
        _ = self.experiment
        return self._experiment_id

    @property
    def name(self) -> str | None:
        """The experiment id, as in Lightning."""
        return self.experiment_id

    @property
    def version(self) -> str | None:
        """The run id, as in Lightning."""
        return self.run_id

    @property
    def save_dir(self) -> str | None:
        """The local folder of a ``file:`` tracking URI, else ``None``."""
        if self._tracking_uri.startswith(LOCAL_FILE_URI_PREFIX):
            return self._tracking_uri[len(LOCAL_FILE_URI_PREFIX) :]
        return None

    @property
    def log_dir(self) -> str | None:
        """``None``: an MLflow run has no single folder of its own to report."""
        return None

    @property
    def group_separator(self) -> str:
        """The separator Lightning uses to group metric names (``"train/loss"``)."""
        return "/"

    def log_hyperparams(self, params: Params = None) -> None:
        """Log ``params`` flattened to ``"outer/inner"`` keys, values as text cut to 250 characters."""
        if not is_global_zero():
            return
        from mlflow.entities import Param

        flat = flatten_dict(convert_params(params))
        entries = [Param(key=key, value=str(value)[:250]) for key, value in flat.items()]
        for start in range(0, len(entries), 100):  # MLflow takes at most 100 params per batch
            self.experiment.log_batch(
                run_id=self._require_run_id(), params=entries[start : start + 100], **self._log_batch_kwargs
            )

    def log_metrics(self, metrics: Mapping[str, float | Tensor | str], step: int | None = None) -> None:
        """Log ``metrics`` at ``step`` (``None`` is step 0); string values are dropped with a warning.

        Characters MLflow forbids in a metric name are removed (with a warning).
        """
        if not is_global_zero():
            return
        from mlflow.entities import Metric

        timestamp_ms = int(time.time() * 1000)
        entries = []
        for key, value in add_prefix(metrics, self._prefix).items():
            if isinstance(value, str):
                warnings.warn(f"MLFlowLogger: discarding metric {key}={value!r}: it is a string.", stacklevel=2)
                continue
            clean = re.sub(r"[^a-zA-Z0-9_/. -]+", "", key)
            if clean != key:
                warnings.warn(
                    "MLflow only allows '_', '/', '.', '-' and ' ' as special characters in metric names;"
                    f" logging {key!r} as {clean!r}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            number = value.item() if isinstance(value, Tensor) else value
            entries.append(Metric(key=clean, value=float(number), timestamp=timestamp_ms, step=step or 0))
        self.experiment.log_batch(run_id=self._require_run_id(), metrics=entries, **self._log_batch_kwargs)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """A no-op: MLflow runs hold no graphs here."""

    def save(self) -> None:
        """A no-op: every call already went to the tracking store."""

    def finalize(self, status: str = "success") -> None:
        """End the run: ``success`` is FINISHED, ``failed`` FAILED, ``interrupted`` KILLED.

        With ``log_model=True`` the checkpoint callback's files are logged first.
        """
        if not is_global_zero():
            return
        if not self._initialized:
            return
        if self._checkpoint_callback is not None:
            self._scan_and_log_checkpoints(self._checkpoint_callback)
        run_id = self._require_run_id()
        if self.experiment.get_run(run_id):
            self.experiment.set_terminated(run_id, _STATUS.get(status, status.upper()))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Log the new checkpoints now (``log_model="all"``, or ``True`` with ``save_top_k=-1``), or at the end."""
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1
        ):
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        run_id = self._require_run_id()
        for mtime, path, score, _tag in scan_checkpoints(checkpoint_callback, self._logged_model_time):
            metadata = {
                "score": score.item() if isinstance(score, Tensor) else score,
                "original_filename": Path(path).name,
                "Checkpoint": {
                    attr: getattr(checkpoint_callback, attr)
                    for attr in _CHECKPOINT_ATTRS
                    if hasattr(checkpoint_callback, attr)
                },
            }
            best = path == getattr(checkpoint_callback, "best_model_path", None)
            aliases = ["latest", "best"] if best else ["latest"]
            artifact_path = self._checkpoint_path_prefix + Path(path).stem
            self.experiment.log_artifact(run_id, path, artifact_path)
            import yaml

            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "metadata.yaml"), "w") as handle:
                    yaml.dump(metadata, handle, default_flow_style=False)
                with open(os.path.join(tmp, "aliases.txt"), "w") as handle:
                    handle.write(str(aliases))
                self.experiment.log_artifacts(run_id, tmp, artifact_path)
            self._logged_model_time[path] = mtime

    def _require_run_id(self) -> str:
        _ = self.experiment
        if self._run_id is None:  # cannot happen once `experiment` has run; kept for the type checker
            raise RuntimeError("MLFlowLogger has no run id after starting its run")
        return self._run_id


#: The spelling of the class in MLflow's own docs; the same class.
MLflowLogger = MLFlowLogger


def _local_store_dir(tracking_uri: str) -> str | None:
    """The local directory a ``file:`` or ``sqlite:`` tracking URI writes into, else ``None``."""
    if tracking_uri.startswith(LOCAL_FILE_URI_PREFIX):
        path = urlparse(tracking_uri).path if tracking_uri.startswith("file://") else tracking_uri[5:]
        return path or "."
    if tracking_uri.startswith("sqlite:///"):
        return os.path.dirname(tracking_uri[len("sqlite:///") :]) or "."
    if "://" not in tracking_uri:  # a bare path: MLflow treats it as a file store
        return tracking_uri
    return None
