"""``TorchExportExporter``: a ``torch.export`` program saved as ``.pt2``, verified after loading."""

from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import Any

import torch
from fulmen_core import ExportResult

from fulmen_export._errors import ExportError
from fulmen_export._pipeline import Runner, TracePlan, check_options, export_verified
from fulmen_export._sample import Args
from fulmen_export._verify import first_line, flatten_tensors, trace_failure

_RESERVED = frozenset({"mod", "args", "strict"})


@functools.cache
def _export_parameters() -> frozenset[str]:
    return frozenset(inspect.signature(torch.export.export).parameters)


class TorchExportExporter:
    """Writes ``torch.export.export(module, sample)`` with ``torch.export.save`` and checks it.

    After saving, the file is read back with ``torch.export.load`` and run on the sample (and, with
    ``dynamic_batch``, on a sample of another batch size); outputs must match the eager module.

    Args:
        dynamic_batch: mark dim 0 of every input whose dim 0 is the sample's batch size as one
            dynamic dimension ``batch``. Passing your own ``dynamic_shapes`` replaces this, and
            then only the sample's batch size is verified.
        strict: trace with TorchDynamo (``True``) or by running the Python code (``False``, the
            torch default since 2.7).
        atol, rtol: the tolerance of the check, as in ``torch.allclose``.
        **export_kwargs: further arguments of ``torch.export.export``.
    """

    format = "pt2"

    def __init__(
        self,
        *,
        dynamic_batch: bool = True,
        strict: bool = False,
        atol: float = 1e-5,
        rtol: float = 1e-4,
        **export_kwargs: Any,
    ) -> None:
        check_options(
            "TorchExportExporter",
            export_kwargs,
            set(_RESERVED),
            "pass the module and sample to export() and strict as a TorchExportExporter option",
            set(_export_parameters()),
            "torch.export.export",
        )
        self.dynamic_batch = dynamic_batch
        self.strict = strict
        self.atol = atol
        self.rtol = rtol
        self.export_kwargs = dict(export_kwargs)

    def export(
        self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
    ) -> ExportResult:
        """Write ``module`` to ``path`` (a ``.pt2`` file) traced on ``input_sample``, then check it.

        Raises :class:`ExportVerificationError` (with the numbers) when the loaded program's outputs
        differ from the eager module's beyond tolerance; then nothing is written to ``path``.
        """
        target = Path(path)

        def write(staged: Path, plan: TracePlan) -> None:
            kwargs = dict(self.export_kwargs)
            if plan.dynamic_shapes is not None:
                kwargs["dynamic_shapes"] = plan.dynamic_shapes
            try:
                program = torch.export.export(module, plan.args, strict=self.strict, **kwargs)
            except Exception as err:
                raise trace_failure(
                    err, module=module, format_name="pt2", tool="torch.export.export"
                ) from err
            torch.export.save(program, staged)

        def load(staged: Path) -> Runner:
            try:
                loaded = torch.export.load(staged).module()
            except Exception as err:
                raise ExportError(
                    f"torch.export.load could not read back the program saved for {target}: "
                    f"{type(err).__name__}: {first_line(err)}; nothing was written to {target}"
                ) from err

            def run(args: Args) -> list[torch.Tensor]:
                return flatten_tensors(loaded(*args))

            return run

        return export_verified(
            module,
            target,
            input_sample,
            format_name=self.format,
            owner="TorchExportExporter",
            dynamic_batch=self.dynamic_batch and "dynamic_shapes" not in self.export_kwargs,
            atol=self.atol,
            rtol=self.rtol,
            write=write,
            load=load,
        )
