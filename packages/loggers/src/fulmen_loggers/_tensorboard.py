"""``TensorBoardLogger``: event files written by TensorBoard's writer (through ``torch.utils.tensorboard``)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import jit_scanning
from torch import Tensor

from fulmen_loggers._utils import (
    VersionedRun,
    LOGGER_JOIN_CHAR,
    Params,
    add_prefix,
    check_writable_dir,
    convert_params,
    flatten_dict,
    flush_at_exit,
    is_global_zero,
    make_dirs,
    require_extra,
    sanitize_params,
    save_hparams_yaml,
)

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

_INSTALL = "tensorboard"


class TensorBoardLogger(VersionedRun):
    """Log to TensorBoard event files in ``save_dir/name/version_N[/sub_dir]``.

    Writes what Lightning's ``TensorBoardLogger`` writes: one scalar per metric, a dict metric as
    ``add_scalars`` (a sub-folder per key), hyperparameters as TensorBoard's HParams plugin data
    together with an ``hp_metric`` scalar of ``-1`` (unless ``default_hp_metric=False``), and
    ``hparams.yaml`` next to the events. Needs ``pip install fulmen-loggers[tensorboard]``; the
    ``tensorboard`` package is imported on first use, not at ``import fulmen_loggers``.

    Args:
        save_dir: Directory the experiment folders are created in.
        name: Experiment name; ``None`` or ``""`` puts the versions directly in ``save_dir``.
        version: ``int`` gives ``version_<int>``, ``str`` is the folder name, ``None`` the next free one.
        log_graph: Make :meth:`log_graph` write the model graph (traced with ``example_input_array``).
        default_hp_metric: With ``log_hyperparams(params)`` and no metrics, log ``hp_metric = -1`` so
            the HParams tab shows the run; log the real ``hp_metric`` later to replace it.
        prefix: Put ``"<prefix>-"`` before every metric key.
        sub_dir: A folder inside the version folder for the event files.
        **kwargs: Passed on to ``SummaryWriter`` (``max_queue``, ``flush_secs``, ``filename_suffix``...).
    """

    NAME_HPARAMS_FILE = "hparams.yaml"
    LOGGER_JOIN_CHAR = LOGGER_JOIN_CHAR

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        require_extra("tensorboard", _INSTALL, "TensorBoardLogger")
        self._save_dir = os.fspath(save_dir)
        check_writable_dir(self._save_dir, "TensorBoardLogger")
        self._name = name or ""
        self._version = version
        self._log_graph = log_graph
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)
        self._kwargs = kwargs
        self._experiment: SummaryWriter | None = None
        self.hparams: dict[str, Any] = {}

    @property
    def sub_dir(self) -> str | None:
        """The folder inside the version folder that holds the event files, if any."""
        return self._sub_dir

    @property
    def log_dir(self) -> str:
        """``save_dir/name/version_N[/sub_dir]``, with ``~`` and ``$VARS`` expanded."""
        log_dir = self.version_dir
        if self._sub_dir is not None:
            log_dir = os.path.join(log_dir, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(log_dir))

    @property
    def group_separator(self) -> str:
        """The separator TensorBoard groups metric names by (``"train/loss"``)."""
        return "/"

    @property
    def experiment(self) -> SummaryWriter:
        """The run's ``SummaryWriter``; the first access creates the log directory and imports tensorboard."""
        if self._experiment is None:
            from torch.utils.tensorboard import SummaryWriter

            if self.root_dir:
                make_dirs(self.root_dir, "TensorBoardLogger")
            make_dirs(self.log_dir, "TensorBoardLogger")
            self._experiment = SummaryWriter(log_dir=self.log_dir, **self._kwargs)
            flush_at_exit(self)
        return self._experiment

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Write each metric as a scalar at ``step``; a dict value is written with ``add_scalars``."""
        if not is_global_zero():
            return
        for key, value in add_prefix(metrics, self._prefix).items():
            if isinstance(value, Tensor):
                value = value.item()
            if isinstance(value, Mapping):
                self.experiment.add_scalars(key, dict(value), step)
                continue
            try:
                self.experiment.add_scalar(key, value, step)
            except Exception as err:  # the writer raises several types for a value it cannot encode
                raise ValueError(
                    f"TensorBoardLogger cannot log metric {key!r} = {value!r} ({type(value).__name__}); "
                    "log a number, a scalar tensor or a dict of numbers."
                ) from err

    def log_hyperparams(
        self,
        params: Params = None,
        metrics: Mapping[str, Any] | float | Tensor | None = None,
        step: int | None = None,
    ) -> None:
        """Record ``params`` for the HParams tab and ``hparams.yaml``, with ``metrics`` as their result.

        Nested params are flattened to ``"outer/inner"`` keys; values other than numbers, strings,
        bools and tensors are written as text. ``metrics`` may be a number (taken as ``hp_metric``).
        """
        if not is_global_zero():
            return
        converted = convert_params(params)
        self.hparams.update(converted)
        flat = sanitize_params(flatten_dict(converted))
        if metrics is None:
            hp_metrics: dict[str, Any] = {"hp_metric": -1} if self._default_hp_metric else {}
        elif isinstance(metrics, Mapping):
            hp_metrics = dict(metrics)
        else:
            hp_metrics = {"hp_metric": metrics}
        if not hp_metrics:
            return
        self.log_metrics(hp_metrics, step)
        from torch.utils.tensorboard.summary import hparams

        # torch leaves these two unannotated
        experiment, start_info, end_info = hparams(flat, hp_metrics)  # type: ignore[no-untyped-call]
        writer = self.experiment._get_file_writer()  # type: ignore[no-untyped-call]
        for summary in (experiment, start_info, end_info):
            writer.add_summary(summary, step)

    def log_graph(self, model: torch.nn.Module, input_array: Any = None) -> None:
        """Write ``model``'s graph, traced on ``input_array`` (default: ``model.example_input_array``).

        Does nothing unless the logger was made with ``log_graph=True``; warns when there is no input
        to trace with or it is neither a tensor nor a tuple of positional arguments.
        """
        if not self._log_graph or not is_global_zero():
            return
        if input_array is None:
            input_array = getattr(model, "example_input_array", None)
        if input_array is None:
            warnings.warn(
                "TensorBoardLogger could not log the model graph: set `model.example_input_array` or pass "
                "`input_array` to log_graph().",
                stacklevel=2,
            )
            return
        if not isinstance(input_array, (Tensor, tuple)):
            warnings.warn(
                f"TensorBoardLogger could not log the model graph: the input has type {type(input_array)}, "
                "which cannot be traced. Make it a tensor, or a tuple of the positional arguments of "
                "the model's forward().",
                stacklevel=2,
            )
            return
        with jit_scanning(model):  # torch.jit reads every attribute, `trainer` included
            self.experiment.add_graph(model, _to_model_device(model, input_array))

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """A no-op: TensorBoard runs keep no checkpoint artifacts."""

    def save(self) -> None:
        """Flush the event file, and write ``hparams.yaml`` if the run folder has none yet."""
        if not is_global_zero():
            return
        self.experiment.flush()
        hparams_file = os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)
        if os.path.isdir(self.log_dir) and not os.path.isfile(hparams_file):
            save_hparams_yaml(hparams_file, self.hparams)

    def finalize(self, status: str) -> None:
        """Flush and close the event file; on ``"success"`` also write ``hparams.yaml`` if missing."""
        if not is_global_zero():
            return
        if self._experiment is not None:
            self._experiment.flush()
            self._experiment.close()
        if status == "success":
            self.save()

    def _flush_at_exit(self) -> None:
        if self._experiment is not None:
            self._experiment.flush()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment"] = None  # a writer holds a thread and an open file: not picklable
        return state


def _to_model_device(model: torch.nn.Module, input_array: Any) -> Any:
    """Run the module's batch-transfer hooks when it has them, else move tensors to its device."""
    before = getattr(model, "on_before_batch_transfer", None)
    transfer = getattr(model, "transfer_batch_to_device", None)
    after = getattr(model, "on_after_batch_transfer", None)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if callable(before) and callable(transfer) and callable(after):
        return after(transfer(before(input_array, 0), device, 0), 0)
    if isinstance(input_array, Tensor):
        return input_array.to(device)
    return tuple(item.to(device) if isinstance(item, Tensor) else item for item in input_array)
