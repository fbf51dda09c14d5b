"""``WandbLogger``: metrics, config and checkpoints to a Weights & Biases run (online or offline)."""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fulmen_core import MisconfigurationException
from torch import Tensor

from fulmen_loggers._checkpoints import scan_checkpoints
from fulmen_loggers._utils import (
    LOGGER_JOIN_CHAR,
    Params,
    add_prefix,
    check_writable_dir,
    convert_json_serializable,
    convert_params,
    is_global_zero,
    make_dirs,
    require_extra,
    sanitize_callable_params,
)

if TYPE_CHECKING:
    import torch

#: A ``wandb`` run. Typed loosely so that this package type-checks without the optional wandb.
Run = Any


def _import_wandb() -> Any:
    """The ``wandb`` module, imported on first use (untyped, like :data:`Run`)."""
    return importlib.import_module("wandb")


_CHECKPOINT_ATTRS = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only", "_every_n_train_steps")


class WandbLogger:
    """Log to Weights & Biases, with the arguments and behaviour of Lightning's ``WandbLogger``.

    Metrics are logged with a ``trainer/global_step`` key, which the run uses as the x-axis of
    every chart. ``offline=True`` (or ``WANDB_MODE=offline``) writes the run under
    ``<save_dir>/wandb/offline-run-*`` to upload later with ``wandb sync``. Needs
    ``pip install fulmen-loggers[wandb]``; wandb is imported on first use.

    Args:
        name: Display name of the run.
        save_dir: Folder wandb writes its ``wandb/`` folder into.
        version: Id of the run, to resume it (same as ``id``).
        offline: Run without a server; upload later with ``wandb sync``.
        dir: Same as ``save_dir`` (used when ``save_dir`` is ``None``).
        id: Same as ``version``.
        anonymous: Allow logging without a W&B account.
        project: Project of the run; default ``$WANDB_PROJECT``, else ``"lightning_logs"``.
        log_model: ``True`` logs the checkpoint callback's checkpoints as artifacts at the end of a
            successful run, ``"all"`` as each is saved, ``False`` never. Not with ``offline=True``.
        experiment: An existing run to log into instead of starting one.
        prefix: Put ``"<prefix>-"`` before every metric key.
        checkpoint_name: Name of the checkpoint artifact (default ``model-<run id>``).
        add_file_policy: ``"mutable"`` copies each checkpoint before upload, ``"immutable"`` does not.
        **kwargs: Passed on to ``wandb.init`` (``entity``, ``tags``, ``group``, ``mode``...).
    """

    LOGGER_JOIN_CHAR = LOGGER_JOIN_CHAR

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] | None = ".",
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike[str] | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: Literal["all"] | bool = False,
        experiment: Run | None = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        add_file_policy: Literal["mutable", "immutable"] = "mutable",
        **kwargs: Any,
    ) -> None:
        require_extra("wandb", "wandb", "WandbLogger")
        if offline and log_model:
            raise MisconfigurationException(
                f"WandbLogger got log_model={log_model!r} with offline=True: checkpoints cannot be uploaded "
                "offline. Set log_model=False, or offline=False to log the model."
            )
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._experiment = experiment
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callback: Any = None
        self._add_file_policy = add_file_policy
        self._checkpoint_name = checkpoint_name
        folder = os.fspath(save_dir) if save_dir is not None else (os.fspath(dir) if dir is not None else None)
        if folder is not None:
            check_writable_dir(folder, "WandbLogger")
        self._wandb_init: dict[str, Any] = {
            "name": name,
            "project": project or os.environ.get("WANDB_PROJECT", "lightning_logs"),
            "dir": folder,
            "id": version or id,
            "resume": "allow",
            "anonymous": "allow" if anonymous else None,
        }
        if offline:
            self._wandb_init["mode"] = "offline"
        self._wandb_init.update(kwargs)
        self._project: str | None = self._wandb_init.get("project")
        self._save_dir: str | None = self._wandb_init.get("dir")
        self._name: str | None = self._wandb_init.get("name")
        self._id: str | None = self._wandb_init.get("id")

    @property
    def experiment(self) -> Run:
        """The wandb ``Run``; the first access starts it (or reuses the run already in progress)."""
        if self._experiment is None:
            wandb = _import_wandb()
            if wandb.run is not None:
                warnings.warn(
                    "WandbLogger reuses the wandb run already in progress. Call `wandb.finish()` before "
                    "creating the logger if you want a new run.",
                    stacklevel=2,
                )
                self._experiment = wandb.run
            else:
                if self._save_dir is not None:
                    make_dirs(self._save_dir, "WandbLogger")
                self._experiment = wandb.init(**self._wandb_init)
                if self._wandb_init.get("sync_tensorboard"):
                    self._experiment.define_metric("*", step_metric="global_step")
                else:
                    self._experiment.define_metric("trainer/global_step")
                    self._experiment.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        return self._experiment

    @property
    def name(self) -> str | None:
        """The project name, as in Lightning."""
        return self._project

    @property
    def version(self) -> str | None:
        """The run id (once the run exists), else the id that was asked for."""
        return self._experiment.id if self._experiment is not None else self._id

    @property
    def save_dir(self) -> str | None:
        """The folder wandb writes its files under."""
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        """``None``, as in Lightning: the run's files live in wandb's own folder layout."""
        return None

    @property
    def group_separator(self) -> str:
        """The separator W&B groups metric names by (``"train/loss"``)."""
        return "/"

    def watch(
        self,
        model: torch.nn.Module,
        log: Literal["gradients", "parameters", "all"] | None = "gradients",
        log_freq: int = 100,
        log_graph: bool = True,
    ) -> None:
        """Have wandb log ``model``'s gradients and/or parameters every ``log_freq`` steps."""
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    def log_hyperparams(self, params: Params = None) -> None:
        """Merge ``params`` into the run config (callables by their result or name, other objects as text)."""
        if not is_global_zero():
            return
        converted = convert_json_serializable(sanitize_callable_params(convert_params(params)))
        self.experiment.config.update(converted, allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float | Tensor], step: int | None = None) -> None:
        """Log ``metrics``; with a ``step`` they carry ``trainer/global_step = step``."""
        if not is_global_zero():
            return
        prefixed = dict(add_prefix(metrics, self._prefix))
        if step is not None and not self._wandb_init.get("sync_tensorboard"):
            prefixed["trainer/global_step"] = step
        self.experiment.log(prefixed)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """A no-op, as in Lightning: use :meth:`watch` to log a model's graph."""

    def save(self) -> None:
        """A no-op: wandb streams each call to its own files."""

    def finalize(self, status: str) -> None:
        """On success, log the checkpoints kept for ``log_model=True``. The run itself stays open.

        As in Lightning, the run is not finished here (a later ``test`` may log into it); wandb
        finishes it at interpreter exit, or call ``logger.experiment.finish()``.
        """
        if not is_global_zero():
            return
        if status != "success":
            return
        if self._checkpoint_callback is not None and self._experiment is not None:
            self._scan_and_log_checkpoints(self._checkpoint_callback)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Log the new checkpoints now (``log_model="all"``, or ``True`` with ``save_top_k=-1``), or at the end."""
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1
        ):
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        wandb = _import_wandb()
        for mtime, path, score, _tag in scan_checkpoints(checkpoint_callback, self._logged_model_time):
            metadata = {
                "score": score.item() if isinstance(score, Tensor) else score,
                "original_filename": Path(path).name,
                type(checkpoint_callback).__name__: {
                    attr: getattr(checkpoint_callback, attr)
                    for attr in _CHECKPOINT_ATTRS
                    if hasattr(checkpoint_callback, attr)
                },
            }
            if not self._checkpoint_name:
                self._checkpoint_name = f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._checkpoint_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self._add_file_policy)
            best = path == getattr(checkpoint_callback, "best_model_path", None)
            self.experiment.log_artifact(artifact, aliases=["latest", "best"] if best else ["latest"])
            self._logged_model_time[path] = mtime
