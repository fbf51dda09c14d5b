"""The steps every exporter shares: check the sample, trace, write aside, verify, move in place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
from fulmen_core import ExportResult

from fulmen_export._context import export_mode
from fulmen_export._errors import ExportError
from fulmen_export._sample import (
    Args,
    as_args,
    batch_dynamic_shapes,
    batch_size,
    batched,
    with_batch_size,
)
from fulmen_export._staging import staged_artifact
from fulmen_export._verify import compare, first_line, run_eager


@attrs.frozen
class TracePlan:
    """What an exporter traces with and which axes it marks dynamic."""

    args: Args
    """The positional arguments to trace ``forward`` with."""
    dynamic_shapes: tuple[dict[int, Any] | None, ...] | None
    """``dynamic_shapes`` for ``torch.export`` (one shared batch dimension); ``None``: static."""
    batched_inputs: tuple[bool, ...]
    """Per argument: whether its dim 0 is the batch axis."""
    batched_outputs: tuple[bool, ...]
    """Per flattened output: whether its dim 0 follows the batch size."""


Runner = Callable[[Args], list[torch.Tensor]]
"""Runs a loaded artifact on positional arguments and returns its outputs, flattened."""


def export_verified(
    module: torch.nn.Module,
    path: str | os.PathLike[str],
    input_sample: Any,
    *,
    format_name: str,
    owner: str,
    dynamic_batch: bool,
    atol: float,
    rtol: float,
    write: Callable[[Path, TracePlan], None],
    load: Callable[[Path], Runner],
) -> ExportResult:
    """Export ``module`` with ``write``, check the artifact through ``load``, move it to ``path``.

    The eager module is run first on the sample (so a wrong sample is reported as such, not as a
    trace failure) and, with a dynamic batch, on a sample of another batch size. The artifact is
    compared with both; only an artifact that agrees within tolerance reaches ``path``.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{owner}.export needs a torch.nn.Module, got {type(module).__name__}")
    target = Path(path)
    args = as_args(input_sample, owner=owner)
    with export_mode(module):
        expected = run_eager(
            module,
            args,
            what="the input sample",
            fix="Pass an input_sample that forward accepts (one batch of inputs, without "
            "targets), or fix example_input_array",
        )
        size = batch_size(args)
        checks: list[tuple[int | None, Args, list[torch.Tensor]]] = [(size, args, expected)]
        flags = batched(args, size) if size is not None else tuple(False for _ in args)
        plan = TracePlan(args, None, flags, tuple(False for _ in expected))
        if dynamic_batch and size is not None:
            # torch.export specializes sizes 0 and 1, so a batch of one is traced as two rows.
            trace_size = max(size, 2)
            other = trace_size + 1
            other_args = with_batch_size(args, size, other)
            other_expected = run_eager(
                module,
                other_args,
                what=f"a batch of {other} rows built from the input sample",
                fix="forward seems to need a fixed batch size: make it work for any batch size, "
                "or export with dynamic_batch=False",
            )
            checks.append((other, other_args, other_expected))
            plan = TracePlan(
                args if trace_size == size else with_batch_size(args, size, trace_size),
                batch_dynamic_shapes(flags),
                flags,
                tuple(
                    a.ndim >= 1 and b.ndim >= 1 and a.shape[0] == size and b.shape[0] == other
                    for a, b in zip(expected, other_expected, strict=False)
                ),
            )
        errors: list[float] = []
        with staged_artifact(target) as staged:
            write(staged, plan)
            run = load(staged)
            for check_size, check_args, check_expected in checks:
                try:
                    actual = run(check_args)
                except ExportError:
                    raise
                except Exception as err:
                    at = "" if check_size is None else f" at batch size {check_size}"
                    raise ExportError(
                        f"the {format_name} artifact for {target} failed to run{at}: "
                        f"{type(err).__name__}: {first_line(err)}; nothing was written to "
                        f"{target}. If the model only works at one batch size, export with "
                        "dynamic_batch=False"
                    ) from err
                errors.append(
                    compare(
                        check_expected,
                        actual,
                        target=target,
                        format_name=format_name,
                        batch_size=check_size,
                        atol=atol,
                        rtol=rtol,
                    )
                )
            del run  # release the loaded artifact (an open session) before the file is moved
    return ExportResult(
        path=target,
        format=format_name,
        max_abs_error=max(errors),
        checked_batch_sizes=tuple(s for s, _, _ in checks if s is not None),
        output_shapes=tuple(tuple(int(d) for d in t.shape) for t in expected),
    )


def check_options(
    exporter: str,
    options: dict[str, Any],
    reserved: set[str],
    reserved_hint: str,
    known: set[str],
    target: str,
) -> None:
    """Reject exporter keyword options the exporter sets itself, or that ``target`` does not take."""
    taken = sorted(reserved & options.keys())
    if taken:
        raise TypeError(f"{exporter} sets {taken} itself; {reserved_hint}")
    unknown = sorted(options.keys() - known)
    if unknown:
        raise TypeError(
            f"unknown {exporter} options {unknown}: they are neither {exporter} options nor "
            f"arguments of {target} in torch {torch.__version__}"
        )
