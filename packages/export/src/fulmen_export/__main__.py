"""The command line: ``python -m fulmen_export CKPT --module pkg.mod:Class --format onnx``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from fulmen_core import Exporter, MisconfigurationException

from fulmen_export._checkpoint import import_module_class, load_module_from_checkpoint
from fulmen_export._errors import ExportError
from fulmen_export._onnx import ONNXExporter
from fulmen_export._torch_export import TorchExportExporter

_SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fulmen_export",
        description="Export a checkpoint as ONNX or a torch.export .pt2 file, verified against "
        "the eager module before it is written.",
    )
    parser.add_argument("checkpoint", type=Path, help="a Lightning-format checkpoint (.ckpt)")
    parser.add_argument(
        "--module",
        required=True,
        metavar="PACKAGE.MODULE:CLASS",
        help="the LightningModule class the checkpoint was trained with",
    )
    parser.add_argument("--format", choices=sorted(_SUFFIXES), default="onnx")
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write (default: the checkpoint's path with .onnx/.pt2)",
    )
    parser.add_argument(
        "--input-shape",
        metavar="N,D,...",
        help="shape of a random input sample, e.g. 1,64 (default: example_input_array)",
    )
    parser.add_argument(
        "--input-dtype", default="float32", help="dtype of that sample (default: float32)"
    )
    parser.add_argument("--opset", type=int, help="ONNX opset version (onnx only)")
    parser.add_argument(
        "--no-dynamic-batch",
        action="store_true",
        help="keep the batch size of the sample fixed in the artifact",
    )
    parser.add_argument("--atol", type=float, help="absolute tolerance of the check")
    parser.add_argument("--rtol", type=float, help="relative tolerance of the check")
    return parser


def _input_sample(module: torch.nn.Module, shape: str | None, dtype_name: str) -> Any:
    if shape is None:
        sample = getattr(module, "example_input_array", None)
        if sample is None:
            raise MisconfigurationException(
                f"{type(module).__name__} has no example_input_array; pass --input-shape, "
                "e.g. --input-shape 1,64 (and --input-dtype if not float32)"
            )
        return sample
    try:
        dims = [int(part) for part in shape.split(",")]
    except ValueError as err:
        raise MisconfigurationException(
            f"--input-shape {shape!r} is not a comma-separated list of sizes such as 1,64"
        ) from err
    dtype = getattr(torch, dtype_name, None)
    if not isinstance(dtype, torch.dtype):
        raise MisconfigurationException(
            f"--input-dtype {dtype_name!r} is not a torch dtype; use e.g. float32, float16, int64"
        )
    if dtype.is_floating_point:
        return torch.randn(dims, dtype=dtype)
    return torch.zeros(dims, dtype=dtype)


def _exporter(args: argparse.Namespace) -> Exporter:
    tolerance = {
        name: value
        for name, value in (("atol", args.atol), ("rtol", args.rtol))
        if value is not None
    }
    if args.format == "onnx":
        return ONNXExporter(
            opset_version=args.opset, dynamic_batch=not args.no_dynamic_batch, **tolerance
        )
    if args.opset is not None:
        raise MisconfigurationException("--opset applies to --format onnx only")
    return TorchExportExporter(dynamic_batch=not args.no_dynamic_batch, **tolerance)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 written and verified, 1 failed)."""
    args = _parser().parse_args(argv)
    output = args.output or args.checkpoint.with_suffix(_SUFFIXES[args.format])
    try:
        exporter = _exporter(args)
        module = load_module_from_checkpoint(args.checkpoint, import_module_class(args.module))
        sample = _input_sample(module, args.input_shape, args.input_dtype)
        result = exporter.export(module, output, sample)
    except (
        ExportError,
        MisconfigurationException,
        ValueError,
        TypeError,
        OSError,
        ImportError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"wrote {result.path} ({result.format}): outputs {list(result.output_shapes)} match the "
        f"eager module at batch sizes {list(result.checked_batch_sizes)}, max abs error "
        f"{result.max_abs_error:.3g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
