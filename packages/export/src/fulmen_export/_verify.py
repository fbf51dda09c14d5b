"""Comparing an artifact's outputs with the eager module's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fulmen_export._errors import ExportError, ExportVerificationError, InvalidInputSampleError
from fulmen_export._sample import Args, describe


def flatten_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors in ``output`` depth-first, in the order exporters flatten them.

    Tuples and lists go item by item, mappings value by value in insertion order; values that are
    not tensors (``None``, numbers) are skipped because no artifact returns them.
    """
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [tensor for item in output for tensor in flatten_tensors(item)]
    if isinstance(output, Mapping):
        return [tensor for item in output.values() for tensor in flatten_tensors(item)]
    return []


def run_eager(module: torch.nn.Module, args: Args, *, what: str, fix: str) -> list[torch.Tensor]:
    """The tensors ``module(*args)`` returns; if forward fails, an error with ``what``, ``fix``."""
    name = type(module).__name__
    shown = describe(args[0] if len(args) == 1 else args)
    try:
        output = module(*args)
    except Exception as err:
        raise InvalidInputSampleError(
            f"{name}.forward failed on {what} {shown}: {type(err).__name__}: "
            f"{first_line(err)}. {fix}"
        ) from err
    tensors = flatten_tensors(output)
    if not tensors:
        raise ExportError(
            f"{name}.forward returned {type(output).__name__} with no tensor in it; an exported "
            "artifact returns tensors, so forward must return a tensor or a tuple/list/dict of "
            "tensors"
        )
    return [tensor.detach() for tensor in tensors]


def compare(
    expected: Sequence[torch.Tensor],
    actual: Sequence[torch.Tensor],
    *,
    target: Path,
    format_name: str,
    batch_size: int | None,
    atol: float,
    rtol: float,
) -> float:
    """The largest absolute difference between ``actual`` and ``expected``; raises beyond tolerance.

    An element passes when ``|actual - expected| <= atol + rtol * |expected|`` (as in
    ``torch.allclose``); NaN matches NaN in the same place.
    """
    at = "" if batch_size is None else f" at batch size {batch_size}"
    where = f"the {format_name} artifact for {target}{at}"
    if len(actual) != len(expected):
        raise ExportVerificationError(
            f"{where} returns {len(actual)} outputs but the eager module returns {len(expected)}; "
            f"nothing was written to {target}",
            path=target,
            batch_size=batch_size,
            output_index=-1,
            max_abs_error=float("inf"),
            atol=atol,
            rtol=rtol,
        )
    worst = 0.0
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        want64 = want.detach().cpu().to(torch.float64)
        got64 = got.detach().cpu().to(torch.float64)
        if want64.shape != got64.shape:
            raise ExportVerificationError(
                f"{where}: output {index} has shape {tuple(got64.shape)} but the eager module's "
                f"has shape {tuple(want64.shape)}; nothing was written to {target}",
                path=target,
                batch_size=batch_size,
                output_index=index,
                max_abs_error=float("inf"),
                atol=atol,
                rtol=rtol,
            )
        both_nan = torch.isnan(want64) & torch.isnan(got64)
        diff = torch.where(both_nan, torch.zeros_like(want64), (got64 - want64).abs())
        error = float(diff.max()) if diff.numel() else 0.0
        close = bool(torch.isclose(got64, want64, rtol=rtol, atol=atol, equal_nan=True).all())
        if not close:
            raise ExportVerificationError(
                f"{where} disagrees with the eager module: output {index} differs by up to "
                f"{error:.6g} (tolerance atol={atol:g}, rtol={rtol:g}); nothing was written to "
                f"{target}. If forward depends on Python state or randomness that tracing freezes, "
                "make it a function of its inputs only; if the difference is numerical noise "
                "(e.g. half precision), pass larger atol/rtol to the exporter",
                path=target,
                batch_size=batch_size,
                output_index=index,
                max_abs_error=error,
                atol=atol,
                rtol=rtol,
            )
        # NaN > worst is False, so a NaN that matched NaN never becomes the reported error.
        worst = max(worst, error)
    return worst


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (torch's trace errors run to pages)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


def trace_failure(
    err: BaseException, *, module: torch.nn.Module, format_name: str, tool: str
) -> ExportError:
    """An :class:`ExportError` for a failed trace: the root cause's first line and a fix to try."""
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    text = f"{err}\n{root}"
    if "data-dependent" in text or "data dependent" in text:
        fix = (
            "forward branches or loops on tensor values (e.g. `if x.sum() > 0:`), which a trace "
            "cannot follow: compute both branches and pick with torch.where, or use torch.cond"
        )
    elif "Constraints violated" in text or "specialized" in text:
        fix = (
            "forward fixes the batch size (e.g. a reshape with a literal batch size): use "
            "x.shape[0] or -1 in reshapes, or export with dynamic_batch=False"
        )
    else:
        fix = (
            "make forward traceable by torch.export (tensor operations, no data-dependent Python "
            "control flow, no side effects); see https://pytorch.org/docs/stable/export.html"
        )
    return ExportError(
        f"could not export {type(module).__name__} to {format_name}: {tool} failed with "
        f"{type(root).__name__}: {first_line(root)}\nFix: {fix}"
    )
