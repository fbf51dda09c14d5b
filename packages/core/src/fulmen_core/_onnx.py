"""``to_onnx`` for ``LightningModule``, through whichever installed package provides an exporter.

fulmen-core imports neither onnx nor any exporter: ``to_onnx`` looks up the entry point ``onnx`` in
the group ``fulmen.exporters`` (fulmen-export registers ``fulmen_export:ONNXExporter`` there) when
it is called, and calls it with ``to_onnx``'s keyword arguments to get an ``Exporter``.

``to_torchscript`` is deliberately not offered: TorchScript is deprecated in PyTorch. Use
``to_onnx``, or ``fulmen_export.TorchExportExporter`` for a ``torch.export`` program saved as
``.pt2`` (what ``torch.jit.script``/``trace`` users should move to).
"""

from __future__ import annotations

import itertools
import os
from importlib import metadata
from typing import Any

import torch

from fulmen_core._collections import move_data_to_device
from fulmen_core._exporter import Exporter, ExportResult

EXPORTERS_ENTRY_POINT_GROUP = "fulmen.exporters"


def _onnx_exporter(options: dict[str, Any]) -> Exporter:
    found = list(metadata.entry_points(group=EXPORTERS_ENTRY_POINT_GROUP, name="onnx"))
    if not found:
        raise ModuleNotFoundError(
            "to_onnx needs an ONNX exporter and none is installed (no entry point 'onnx' in the "
            f"group {EXPORTERS_ENTRY_POINT_GROUP!r}); install one with: "
            "pip install 'fulmen-export[onnx]'",
            name="fulmen_export",
        )
    factory = found[0].load()
    exporter: Exporter = factory(**options)
    return exporter


class OnnxExportMixin:
    """Adds :meth:`to_onnx` to a ``torch.nn.Module`` subclass (``LightningModule`` lists it)."""

    def to_onnx(
        self,
        file_path: str | os.PathLike[str],
        input_sample: Any | None = None,
        **kwargs: Any,
    ) -> ExportResult:
        """Export this module as ONNX to ``file_path`` and check it in onnxruntime.

        As in Lightning: ``input_sample`` defaults to ``self.example_input_array``, goes through
        ``on_before_batch_transfer``, ``transfer_batch_to_device`` (to this module's device) and
        ``on_after_batch_transfer``, and ``kwargs`` reach ``torch.onnx.export`` (e.g.
        ``input_names``, ``export_params``). Options of the exporter itself also go in ``kwargs``:
        ``opset_version``, ``dynamic_batch`` (default ``True``), ``dynamo``, ``external_data``,
        ``atol``, ``rtol``.

        Unlike Lightning, the module is exported in eval mode without autograd (its train/eval
        state is restored), the file appears only once onnxruntime has reproduced the module's
        outputs at two batch sizes, and the return value says how closely
        (``ExportResult.max_abs_error``). Needs ``pip install 'fulmen-export[onnx]'``.

        There is no ``to_torchscript``: TorchScript is deprecated in PyTorch. Use this method, or
        ``fulmen_export.TorchExportExporter().export(module, "model.pt2", sample)``.
        """
        if not isinstance(self, torch.nn.Module):
            raise TypeError(f"to_onnx exports a torch.nn.Module; {type(self).__name__} is not one")
        if input_sample is None:
            input_sample = getattr(self, "example_input_array", None)
            if input_sample is None:
                raise ValueError(
                    f"{type(self).__name__}.to_onnx has no input sample: pass "
                    "input_sample=..., or set self.example_input_array (e.g. torch.randn(1, 64)) "
                    "in __init__"
                )
        exporter = _onnx_exporter(kwargs)
        return exporter.export(self, file_path, self._onnx_batch_on_device(input_sample))

    def _onnx_batch_on_device(self, sample: Any) -> Any:
        # Lightning runs the sample through the module's batch-transfer hooks; do the same when the
        # module has them (LightningModule does), else just move its tensors.
        assert isinstance(self, torch.nn.Module)
        device = next(
            (t.device for t in itertools.chain(self.parameters(), self.buffers())),
            torch.device("cpu"),
        )
        before = getattr(self, "on_before_batch_transfer", None)
        transfer = getattr(self, "transfer_batch_to_device", None)
        after = getattr(self, "on_after_batch_transfer", None)
        if callable(before):
            sample = before(sample, 0)
        sample = (
            transfer(sample, device, 0)
            if callable(transfer)
            else move_data_to_device(sample, device)
        )
        if callable(after):
            sample = after(sample, 0)
        return sample
