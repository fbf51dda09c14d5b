"""``CSVLogger``: metrics to ``metrics.csv`` and hyperparameters to ``hparams.yaml``."""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from fulmen_loggers._utils import (
    VersionedRun,
    LOGGER_JOIN_CHAR,
    Params,
    add_prefix,
    check_writable_dir,
    convert_params,
    flush_at_exit,
    is_global_zero,
    make_dirs,
    save_hparams_yaml,
)


class ExperimentWriter:
    """The files of one CSV run: buffers metric rows and writes them to ``metrics.csv`` on ``save``.

    Columns are every key seen so far plus ``step``, sorted by name. When a flush brings keys the file
    does not have yet, the file is rewritten under the wider header (earlier rows get empty cells).
    """

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        # Only an earlier metrics.csv is lost; other files (a CLI's config.yaml saved just before the
        # first metrics) are no reason to warn.
        if os.path.isfile(self.metrics_file_path):
            warnings.warn(
                f"Experiment logs directory {log_dir} exists and is not empty. Its metrics.csv is being "
                "replaced by this run's; pass a new version (or leave version=None) to keep it.",
                stacklevel=4,
            )
            os.remove(self.metrics_file_path)
        make_dirs(log_dir, "CSVLogger")

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Buffer one row: ``metrics`` (tensors as Python numbers) plus a ``step`` column."""
        if step is None:
            step = len(self.metrics)
        row = {key: value.item() if isinstance(value, Tensor) else value for key, value in metrics.items()}
        row["step"] = step
        self.metrics.append(row)

    def log_hparams(self, params: Mapping[str, Any]) -> None:
        """Merge ``params`` into the run's hyperparameters and rewrite ``hparams.yaml`` now."""
        self.hparams.update(params)
        save_hparams_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def save(self) -> None:
        """Append the buffered rows to ``metrics.csv`` (rewriting it when the header grows)."""
        if not self.metrics:
            return
        seen = set(self.metrics_keys)
        new_keys = {key for row in self.metrics for key in row} - seen
        if new_keys:
            self.metrics_keys = sorted(seen | new_keys)
        file_exists = os.path.isfile(self.metrics_file_path)
        if new_keys and file_exists:
            self._rewrite_with_header(self.metrics_keys)
        with open(self.metrics_file_path, "a" if file_exists else "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            if not file_exists:
                writer.writeheader()
            writer.writerows(self.metrics)
        self.metrics = []

    def _rewrite_with_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        tmp_path = self.metrics_file_path + ".tmp"
        with open(tmp_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp_path, self.metrics_file_path)  # a crash mid-rewrite leaves the old file whole


class CSVLogger(VersionedRun):
    """Log to the local file system: metrics as CSV, hyperparameters as YAML.

    Files go to ``save_dir/name/version_N/`` (``metrics.csv``, ``hparams.yaml``), the same layout,
    columns and rows as Lightning's ``CSVLogger``.

    Args:
        save_dir: Directory the experiment folders are created in.
        name: Experiment name; ``None`` or ``""`` puts the versions directly in ``save_dir``.
        version: An ``int`` gives ``version_<int>``; a ``str`` is used as the folder name as it is;
            ``None`` picks the next free ``version_N``.
        prefix: Put ``"<prefix>-"`` before every metric key.
        flush_logs_every_n_steps: Write buffered rows when ``(step + 1)`` is a multiple of this.
            Buffered rows are also written by ``save()``, ``finalize()`` and at interpreter exit.
    """

    LOGGER_JOIN_CHAR = LOGGER_JOIN_CHAR

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        if flush_logs_every_n_steps < 1:
            raise ValueError(f"CSVLogger got flush_logs_every_n_steps={flush_logs_every_n_steps}; pass an int >= 1.")
        self._save_dir = os.fspath(save_dir)
        check_writable_dir(self._save_dir, "CSVLogger")
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_logs_every_n_steps = flush_logs_every_n_steps
        self._experiment: ExperimentWriter | None = None

    @property
    def log_dir(self) -> str:
        """``save_dir/name/version_N`` (or ``save_dir/name/<version>`` for a string version)."""
        return self.version_dir

    @property
    def group_separator(self) -> str:
        """The separator Lightning uses to group metric names (``"train/loss"``)."""
        return "/"

    @property
    def experiment(self) -> ExperimentWriter:
        """The run's :class:`ExperimentWriter`; the first access creates the log directory."""
        if self._experiment is None:
            make_dirs(self.root_dir, "CSVLogger")
            self._experiment = ExperimentWriter(self.log_dir)
            flush_at_exit(self)
        return self._experiment

    def log_hyperparams(self, params: Params = None) -> None:
        """Merge ``params`` into ``hparams.yaml`` (written at once)."""
        if not is_global_zero():
            return
        self.experiment.log_hparams(convert_params(params))

    def log_metrics(self, metrics: Mapping[str, float | Tensor], step: int | None = None) -> None:
        """Buffer a row of ``metrics`` at ``step`` (``None``: the number of rows buffered now)."""
        if not is_global_zero():
            return
        experiment = self.experiment
        if step is None:
            step = len(experiment.metrics)
        experiment.log_metrics(add_prefix(metrics, self._prefix), step)
        if (step + 1) % self._flush_logs_every_n_steps == 0:
            self.save()

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """CSV files hold no graphs: a no-op, present so every logger can be called the same way."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """A no-op: CSV runs keep no checkpoint artifacts."""

    def save(self) -> None:
        """Write the buffered rows to ``metrics.csv``."""
        if not is_global_zero():
            return
        self.experiment.save()

    def finalize(self, status: str) -> None:
        """Write what is buffered, whatever ``status`` (a failed run keeps its metrics)."""
        if not is_global_zero():
            return
        if self._experiment is None:
            return
        self.save()

    def _flush_at_exit(self) -> None:
        if self._experiment is not None:
            self._experiment.save()
