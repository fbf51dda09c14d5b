"""``ONNXExporter``: ONNX through ``torch.onnx``, verified in onnxruntime before it is kept."""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import os
from pathlib import Path
from typing import Any

import torch
from fulmen_core import ExportResult

from fulmen_export._errors import ExportError
from fulmen_export._optional import require
from fulmen_export._pipeline import Runner, TracePlan, check_options, export_verified
from fulmen_export._sample import Args
from fulmen_export._verify import first_line, trace_failure

# Past this many bytes the weights go to a side file: one protobuf message is capped at 2 GB.
_EXTERNAL_DATA_BYTES = 3 * 2**29

# Arguments that export() itself fills in from its own parameters.
_RESERVED = frozenset({"model", "args", "f"})


@functools.cache
def _onnx_export_parameters() -> frozenset[str]:
    return frozenset(inspect.signature(torch.onnx.export).parameters)


def _dynamo_available() -> bool:
    # torch.onnx.export gained dynamo=True (the torch.export-based exporter) in torch 2.5.
    return "dynamo" in _onnx_export_parameters()


def _weight_bytes(module: torch.nn.Module) -> int:
    return sum(
        t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers())
    )


def _names(prefix: str, count: int) -> list[str]:
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


class ONNXExporter:
    """Writes a module as ONNX and checks it in onnxruntime against the eager module.

    Args:
        opset_version: the ONNX opset to target; ``None`` lets torch choose its recommended one.
        dynamic_batch: mark dim 0 of every input whose dim 0 is the sample's batch size (and of
            the outputs that follow it) as dynamic, and verify at a second batch size too.
            Passing your own ``dynamic_shapes`` or ``dynamic_axes`` replaces this, and then only
            the sample's batch size is verified.
        dynamo: use torch's ``torch.export``-based exporter (``True``) or the TorchScript-based
            one (``False``); ``None`` picks the dynamo exporter where torch has it (torch >= 2.5).
        external_data: store the weights in a side file ``<name>.data`` next to the model;
            ``None`` does so only for weights too large for one ONNX file (about 1.5 GB and up).
        atol, rtol: the tolerance of the check, as in ``torch.allclose``.
        **export_kwargs: further arguments of ``torch.onnx.export`` (e.g. ``input_names``).
    """

    format = "onnx"

    def __init__(
        self,
        *,
        opset_version: int | None = None,
        dynamic_batch: bool = True,
        dynamo: bool | None = None,
        external_data: bool | None = None,
        atol: float = 1e-4,
        rtol: float = 1e-3,
        **export_kwargs: Any,
    ) -> None:
        check_options(
            "ONNXExporter",
            export_kwargs,
            set(_RESERVED),
            "pass the module, sample and path to export() and the rest as ONNXExporter options",
            set(_onnx_export_parameters()),
            "torch.onnx.export",
        )
        if dynamo and not _dynamo_available():
            raise ExportError(
                f"torch {torch.__version__} has no dynamo ONNX exporter; upgrade to torch>=2.5 "
                "or pass dynamo=False"
            )
        self.opset_version = opset_version
        self.dynamic_batch = dynamic_batch
        self.dynamo = _dynamo_available() if dynamo is None else dynamo
        self.external_data = external_data
        self.atol = atol
        self.rtol = rtol
        self.export_kwargs = dict(export_kwargs)

    def export(
        self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
    ) -> ExportResult:
        """Write ``module`` to ``path`` as ONNX traced on ``input_sample``, checked in onnxruntime.

        Raises :class:`ExportVerificationError` (with the numbers) when onnxruntime's outputs
        differ from the eager module's beyond tolerance; then nothing is written to ``path``.
        """
        owner = "ONNXExporter"
        ort = require("onnxruntime", owner=owner, purpose="to check the exported model")
        if self.dynamo:
            require("onnxscript", owner=owner, purpose="for torch's dynamo ONNX exporter")
            require("onnx", owner=owner, purpose="for torch's dynamo ONNX exporter")
        target = Path(path)
        own_dynamic = "dynamic_shapes" in self.export_kwargs or "dynamic_axes" in self.export_kwargs

        def write(staged: Path, plan: TracePlan) -> None:
            self._write(module, staged, plan)

        def load(staged: Path) -> Runner:
            try:
                session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
            except Exception as err:
                raise ExportError(
                    f"onnxruntime {ort.__version__} could not load the ONNX model exported for "
                    f"{target}: {type(err).__name__}: {first_line(err)}; nothing was written to "
                    f"{target}. If the opset is newer than this onnxruntime supports, pass an "
                    "older opset_version or upgrade onnxruntime"
                ) from err
            names = [node.name for node in session.get_inputs()]

            def run(args: Args) -> list[torch.Tensor]:
                if len(names) != len(args):
                    raise ExportError(
                        f"the ONNX graph exported for {target} takes {len(names)} inputs "
                        f"{names} but the sample has {len(args)} tensors (the exporter drops "
                        "inputs that forward does not use); remove unused inputs from forward "
                        "and from the sample"
                    )
                feeds = {
                    name: t.detach().cpu().numpy() for name, t in zip(names, args, strict=True)
                }
                return [torch.as_tensor(output) for output in session.run(None, feeds)]

            return run

        return export_verified(
            module,
            target,
            input_sample,
            format_name=self.format,
            owner=owner,
            dynamic_batch=self.dynamic_batch and not own_dynamic,
            atol=self.atol,
            rtol=self.rtol,
            write=write,
            load=load,
        )

    def _write(self, module: torch.nn.Module, staged: Path, plan: TracePlan) -> None:
        kwargs = dict(self.export_kwargs)
        # The dynamo exporter prints its progress unless told not to.
        kwargs.setdefault("verbose", False)
        if self.opset_version is not None:
            kwargs["opset_version"] = self.opset_version
        if _dynamo_available():
            kwargs["dynamo"] = self.dynamo
        if self.dynamo:
            if plan.dynamic_shapes is not None:
                kwargs["dynamic_shapes"] = plan.dynamic_shapes
            if "external_data" in _onnx_export_parameters():
                external = self.external_data
                if external is None:
                    external = _weight_bytes(module) > _EXTERNAL_DATA_BYTES
                kwargs["external_data"] = external
        elif plan.dynamic_shapes is not None:
            # The TorchScript exporter names dynamic axes by input/output name, so both must exist.
            input_names = kwargs.setdefault("input_names", _names("input", len(plan.args)))
            output_names = kwargs.setdefault(
                "output_names", _names("output", len(plan.batched_outputs))
            )
            axes = {
                name: {0: "batch"}
                for name, flag in itertools.chain(
                    zip(input_names, plan.batched_inputs, strict=False),
                    zip(output_names, plan.batched_outputs, strict=False),
                )
                if flag
            }
            kwargs["dynamic_axes"] = axes
        try:
            torch.onnx.export(module, plan.args, str(staged), **kwargs)
        except Exception as err:
            raise trace_failure(
                err, module=module, format_name="ONNX", tool="torch.onnx.export"
            ) from err
        if self.opset_version is not None:
            self._check_opset(staged)

    def _check_opset(self, staged: Path) -> None:
        # torch only warns when it cannot convert to a requested older opset and keeps its own.
        try:
            onnx = importlib.import_module("onnx")
        except ImportError:  # the TorchScript exporter runs without onnx; then this goes unchecked
            return
        model = onnx.load(str(staged), load_external_data=False)
        found = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), None)
        if found != self.opset_version:
            raise ExportError(
                f"torch.onnx.export wrote opset {found}, not the requested "
                f"opset_version={self.opset_version} (it could not convert the model to it); "
                f"pass opset_version={found} or newer, or leave it unset"
            )
