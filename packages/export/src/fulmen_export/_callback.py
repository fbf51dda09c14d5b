"""``ExportCallback``: export the best checkpoint (or the trained module) when fit ends."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from fulmen_core import Callback, Exporter, ExportResult, LightningModule, MisconfigurationException
from fulmen_core import move_data_to_device

from fulmen_export._onnx import ONNXExporter
from fulmen_export._torch_export import TorchExportExporter

_BUILT_IN = {"onnx": ONNXExporter, "pt2": TorchExportExporter}


class ExportCallback(Callback):
    """Exports a serving artifact at the end of ``fit``, verified like every fulmen export.

    Which weights: if the Trainer has a checkpoint callback with a non-empty ``best_model_path``
    (as ``ModelCheckpoint`` has), the weights of that checkpoint are exported; otherwise the
    module's weights as they are when fit ends. The best weights are loaded into the module only for
    the export and its own weights are put back afterwards. Only the global-zero process exports.

    Args:
        exporter: ``"onnx"``, ``"pt2"``, or any object satisfying the ``Exporter`` Protocol.
        dirpath: the directory to write to; by default the Trainer's ``default_root_dir`` (or the
            working directory when the Trainer has none).
        filename: the artifact's file name; by default ``model.onnx`` or ``model.pt2``. Required
            with a custom exporter.
        input_sample: what to trace ``forward`` with; by default the module's
            ``example_input_array``. Checked when fit starts, so a missing sample fails early.
    """

    def __init__(
        self,
        exporter: str | Exporter = "onnx",
        *,
        dirpath: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        input_sample: Any = None,
    ) -> None:
        if isinstance(exporter, str):
            if exporter not in _BUILT_IN:
                raise MisconfigurationException(
                    f"ExportCallback got exporter={exporter!r}; use one of {sorted(_BUILT_IN)} or "
                    "pass an Exporter instance"
                )
            filename = filename or f"model.{exporter}"
            self.exporter: Exporter = _BUILT_IN[exporter]()
        else:
            if filename is None:
                raise MisconfigurationException(
                    f"ExportCallback with a custom exporter ({type(exporter).__name__}) needs "
                    "filename=, including the extension the exporter writes"
                )
            self.exporter = exporter
        self.filename = filename
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.input_sample = input_sample
        self.result: ExportResult | None = None
        """What the last export wrote and how closely it matched; ``None`` before fit ends."""

    def setup(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        """Fail at the start of fit, not after it, when there is nothing to trace with."""
        if stage == "fit":
            self._sample(pl_module)

    def on_fit_end(self, trainer: Any, pl_module: LightningModule) -> None:
        """Export the best checkpoint's weights (or the module's own) to ``dirpath / filename``."""
        if not getattr(trainer, "is_global_zero", True):
            return
        sample = move_data_to_device(self._sample(pl_module), _device_of(pl_module))
        dirpath = self.dirpath or Path(getattr(trainer, "default_root_dir", None) or os.getcwd())
        target = dirpath / self.filename
        best = _best_model_path(trainer)
        if best is None:
            self.result = self.exporter.export(pl_module, target, sample)
        else:
            with _weights_from(pl_module, best):
                self.result = self.exporter.export(pl_module, target, sample)

    def _sample(self, pl_module: LightningModule) -> Any:
        sample = self.input_sample
        if sample is None:
            sample = pl_module.example_input_array
        if sample is None:
            raise MisconfigurationException(
                f"ExportCallback has nothing to trace {type(pl_module).__name__}.forward with: "
                "pass ExportCallback(input_sample=...) or set self.example_input_array in the "
                "module's __init__"
            )
        return sample


def _best_model_path(trainer: Any) -> Path | None:
    """The best checkpoint's path, read by duck typing so any checkpoint callback can provide it."""
    checkpoint_callback = getattr(trainer, "checkpoint_callback", None)
    best = getattr(checkpoint_callback, "best_model_path", None)
    if not best:
        return None
    path = Path(best)
    if not path.is_file():
        raise FileNotFoundError(
            f"the checkpoint callback's best_model_path {path} does not exist; it was moved or "
            "deleted before fit ended"
        )
    return path


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def _weights_from(module: torch.nn.Module, checkpoint_path: Path) -> Iterator[None]:
    """Load ``checkpoint_path``'s ``state_dict`` into ``module``; restore its weights on exit."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(
            f"best checkpoint {checkpoint_path} has no 'state_dict' entry; it is not a "
            "Lightning-format checkpoint"
        )
    own = {key: value.detach().clone() for key, value in module.state_dict().items()}
    module.load_state_dict(checkpoint["state_dict"])
    try:
        yield
    finally:
        module.load_state_dict(own)
