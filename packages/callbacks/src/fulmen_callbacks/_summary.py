"""The model summary: a table of a module's layers with their parameter counts, and the callback that
prints it when fit starts.

The table, its columns and its totals are Lightning's (``lightning.pytorch.utilities.model_summary``
and ``lightning.pytorch.callbacks.ModelSummary``), so a ported script shows the same numbers. Where the
two differ on purpose, the docstrings below say so.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import torch
from fulmen_core import Callback, LightningDataModule, LightningModule, move_data_to_device

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

# A shape as the table shows it: a list of sizes, a list of shapes for a tuple of tensors, or "?".
Shape = Union[str, list[int], list["Shape"]]

UNKNOWN_SIZE = "?"
LEFTOVER_PARAMS_NAME = "other params"
NOT_APPLICABLE = "n/a"
_UNITS = (" ", "K", "M", "B", "T")


def get_human_readable_count(number: int) -> str:
    """Abbreviate a count with K, M, B and T as Lightning's table does: ``"54  "``, ``"9.0 K"``,
    ``"200 M"``, ``"5,000 T"`` (three significant digits, never beyond trillions)."""
    if number < 0:
        raise ValueError(f"a count cannot be negative, got {number}")
    digits = len(str(int(number)))
    groups = min(-(-digits // 3), len(_UNITS))
    # Lightning scales by multiplying with a negative power of ten; doing the same float
    # arithmetic keeps the rounding at the .1f boundaries identical.
    scaled = number * 10.0 ** (-3 * (groups - 1))
    unit = _UNITS[groups - 1]
    if groups == 1 or scaled >= 100:
        return f"{int(scaled):,d} {unit}"
    return f"{scaled:,.1f} {unit}"


def get_formatted_model_size(megabytes: float) -> str:
    """The model size as the table shows it: megabytes with three decimals."""
    return f"{megabytes:,.3f}"


@dataclass(frozen=True)
class LayerSummary:
    """One row of the table: a submodule of the summarized module."""

    name: str
    """Dotted path from the summarized module (``"net.0"``)."""
    layer_type: str
    """The submodule's class name."""
    num_parameters: int
    """Parameters of the submodule and everything under it (uninitialized lazy ones count 0)."""
    training: bool
    """Whether the submodule is in training mode."""
    flops: int = 0
    """FLOPs of one forward pass of ``example_input_array`` (0 when there is none)."""
    in_size: Shape = UNKNOWN_SIZE
    """The input shape seen in that forward pass, ``"?"`` when not called or not run."""
    out_size: Shape = UNKNOWN_SIZE
    """The output shape seen in that forward pass, ``"?"`` when not called or not run."""


@dataclass(frozen=True)
class Summary:
    """What :func:`summarize` found: the rows (``layers``) and the module's totals.

    ``str(summary)`` is Lightning's table. The Lightning-named properties (``layer_names``,
    ``param_nums``, ``in_sizes``, ...) are here too, so code written against Lightning's
    ``ModelSummary`` object reads the same values.
    """

    layers: tuple[LayerSummary, ...]
    total_parameters: int
    trainable_parameters: int
    leftover_parameters: int
    """Parameters held by the summarized module itself rather than by any top-level child."""
    model_size: float
    """Megabytes the parameters take (their element size times their count)."""
    modules_in_train_mode: int
    modules_in_eval_mode: int
    total_flops: int
    has_example_input: bool
    """Whether a forward pass of ``example_input_array`` ran (adds the In/Out sizes columns)."""
    max_depth: int

    @property
    def non_trainable_parameters(self) -> int:
        """Parameters with ``requires_grad=False``."""
        return self.total_parameters - self.trainable_parameters

    @property
    def layer_names(self) -> list[str]:
        """The rows' names."""
        return [layer.name for layer in self.layers]

    @property
    def layer_types(self) -> list[str]:
        """The rows' class names."""
        return [layer.layer_type for layer in self.layers]

    @property
    def param_nums(self) -> list[int]:
        """The rows' parameter counts."""
        return [layer.num_parameters for layer in self.layers]

    @property
    def training_modes(self) -> list[bool]:
        """The rows' ``training`` flags."""
        return [layer.training for layer in self.layers]

    @property
    def in_sizes(self) -> list[Shape]:
        """The rows' input shapes."""
        return [layer.in_size for layer in self.layers]

    @property
    def out_sizes(self) -> list[Shape]:
        """The rows' output shapes."""
        return [layer.out_size for layer in self.layers]

    @property
    def total_training_modes(self) -> dict[str, int]:
        """Submodules (the summarized module excluded) in train and in eval mode."""
        return {"train": self.modules_in_train_mode, "eval": self.modules_in_eval_mode}

    @property
    def total_layer_params(self) -> int:
        """The sum of the rows' parameter counts (nested rows count their parameters again)."""
        return sum(self.param_nums)

    def columns(self) -> list[tuple[str, list[str]]]:
        """The table's columns as (header, cells), with the "other params" row when there is one."""
        layers = self.layers
        columns: list[tuple[str, list[str]]] = [
            (" ", [str(index) for index in range(len(layers))]),
            ("Name", [layer.name for layer in layers]),
            ("Type", [layer.layer_type for layer in layers]),
            ("Params", [get_human_readable_count(layer.num_parameters) for layer in layers]),
            ("Mode", ["train" if layer.training else "eval" for layer in layers]),
            ("FLOPs", [get_human_readable_count(layer.flops) for layer in layers]),
        ]
        if self.has_example_input:
            columns.append(("In sizes", [str(layer.in_size) for layer in layers]))
            columns.append(("Out sizes", [str(layer.out_size) for layer in layers]))
        if self.leftover_parameters > 0:
            leftover = {" ": " ", "Name": LEFTOVER_PARAMS_NAME, "Params": get_human_readable_count(self.leftover_parameters)}
            for header, cells in columns:
                cells.append(leftover.get(header, NOT_APPLICABLE))
        return columns

    def __str__(self) -> str:
        columns = self.columns()
        widths = [max([len(header), *(len(cell) for cell in cells)]) for header, cells in columns]
        # Lightning counts one more column than it draws when sizing the rules; kept so the
        # dashes are as long as in its output.
        rule = "-" * (sum(widths) + 3 * (len(columns) + 1))
        rows = len(columns[0][1])
        lines = [" | ".join(header.ljust(width) for (header, _), width in zip(columns, widths)), rule]
        for row in range(rows):
            lines.append(" | ".join(cells[row].ljust(width) for (_, cells), width in zip(columns, widths)))
        lines.append(rule)
        totals = (
            (get_human_readable_count(self.trainable_parameters), "Trainable params"),
            (get_human_readable_count(self.non_trainable_parameters), "Non-trainable params"),
            (get_human_readable_count(self.total_parameters), "Total params"),
            (get_formatted_model_size(self.model_size), "Total estimated model params size (MB)"),
            (str(self.modules_in_train_mode), "Modules in train mode"),
            (str(self.modules_in_eval_mode), "Modules in eval mode"),
            (get_human_readable_count(self.total_flops), "Total Flops"),
        )
        lines.extend(value.ljust(10) + label for value, label in totals)
        return "\n".join(lines)


def summarize(module: torch.nn.Module, max_depth: int = 1) -> Summary:
    """Summarize ``module``'s layers down to ``max_depth`` levels (-1: all; 0: no rows, totals only).

    When the module has an ``example_input_array``, it is run once through the module (in eval mode,
    under ``torch.no_grad``, modes restored afterwards) to record each row's input and output
    shapes and FLOPs; otherwise no forward pass runs.

    Differences from Lightning, on purpose: the size in MB counts each parameter's real element size
    (Lightning assumes 32 bits unless the Trainer's precision says otherwise: the same number for
    every precision it knows), and the "other params" row counts the parameters that belong to no
    top-level child at every depth (Lightning drops the row as soon as nested rows are shown).
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < -1:
        raise ValueError(f"max_depth must be -1 (all layers), 0 (none) or a positive int, got {max_depth!r}")
    chosen = _rows_for(module, max_depth)
    example = getattr(module, "example_input_array", None)
    recorders = [_ShapeRecorder(sub) for _, sub in chosen]
    flops_by_name: dict[str, int] = {}
    total_flops = 0
    try:
        if example is not None:
            flops_by_name, total_flops = _forward_example(module, example)
    finally:
        for recorder in recorders:
            recorder.detach()

    all_params = list(module.parameters())
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in all_params):
        warnings.warn(
            "the model has uninitialized (lazy) parameters, counted as 0 in the summary; set "
            "`example_input_array` so that a forward pass materializes them first",
            stacklevel=2,
        )
    total = sum(_count(p) for p in all_params)
    trainable = sum(_count(p) for p in all_params if p.requires_grad)
    # "other params": what no row accounts for. Rows below the top level repeat their parents'
    # parameters, so only the top-level children are subtracted (none when there are no rows).
    in_children = {id(p) for _, child in module.named_children() for p in child.parameters()} if chosen else set()
    leftover = sum(_count(p) for p in all_params if id(p) not in in_children)
    size_bytes = sum(_count(p) * p.element_size() for p in all_params if _count(p))
    submodules = list(module.modules())[1:]
    in_train = sum(1 for sub in submodules if sub.training)
    root = type(module).__name__
    layers = tuple(
        LayerSummary(
            name=name,
            layer_type=type(sub).__name__,
            num_parameters=sum(_count(p) for p in sub.parameters()),
            training=sub.training,
            flops=flops_by_name.get(f"{root}.{name}", 0),
            in_size=recorder.in_size,
            out_size=recorder.out_size,
        )
        for (name, sub), recorder in zip(chosen, recorders)
    )
    return Summary(
        layers=layers,
        total_parameters=total,
        trainable_parameters=trainable,
        leftover_parameters=leftover,
        model_size=size_bytes * 1e-6,
        modules_in_train_mode=in_train,
        modules_in_eval_mode=len(submodules) - in_train,
        total_flops=total_flops,
        has_example_input=example is not None,
        max_depth=max_depth,
    )


def _rows_for(module: torch.nn.Module, max_depth: int) -> list[tuple[str, torch.nn.Module]]:
    if max_depth == 0:
        return []
    if max_depth == 1:
        return list(module.named_children())
    # named_modules() visits a shared submodule once, under its first name, as Lightning shows it.
    rows = list(module.named_modules())[1:]
    if max_depth > 1:
        rows = [(name, sub) for name, sub in rows if name.count(".") < max_depth]
    return rows


def _count(parameter: torch.Tensor) -> int:
    # A lazy module's parameter has no size until its first forward: it counts as 0.
    if isinstance(parameter, torch.nn.parameter.UninitializedParameter):
        return 0
    return parameter.numel()


def _shape_of(value: Any) -> Shape:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return [int(size) for size in shape]
    if isinstance(value, (list, tuple)):
        return [_shape_of(item) for item in value]
    return UNKNOWN_SIZE


class _ShapeRecorder:
    """Records a submodule's input and output shapes at its first call, then unhooks itself (so a
    module called several times shows its first call, as in Lightning)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.in_size: Shape = UNKNOWN_SIZE
        self.out_size: Shape = UNKNOWN_SIZE
        self._handle: RemovableHandle | None = None
        # Scripted modules do not run Python forward hooks; their shapes stay unknown.
        if not isinstance(module, torch.jit.ScriptModule):
            self._handle = module.register_forward_hook(self._record, with_kwargs=True)

    def _record(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        inputs = (*args, *kwargs.values())
        self.in_size = _shape_of(inputs[0] if len(inputs) == 1 else inputs)
        self.out_size = _shape_of(output)
        self.detach()

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _forward_example(module: torch.nn.Module, example: Any) -> tuple[dict[str, int], int]:
    """Run ``example`` through ``module`` once; returns the FLOPs per module path and in total."""
    from torch.utils.flop_counter import FlopCounterMode

    trainer = getattr(module, "_trainer", None)
    batch = _to_module_device(module, example, trainer)
    precision = getattr(trainer, "precision_plugin", None)
    convert = getattr(precision, "convert_input", None)
    if callable(convert):
        batch = convert(batch)
    forward_context = getattr(precision, "forward_context", None)
    modes = [(sub, sub.training) for sub in module.modules()]
    counter = FlopCounterMode(display=False)
    module.eval()
    try:
        context = forward_context() if callable(forward_context) else contextlib.nullcontext()
        with torch.no_grad(), context, counter:
            if isinstance(batch, (list, tuple)):
                module(*batch)
            elif isinstance(batch, dict):
                module(**batch)
            else:
                module(batch)
    finally:
        for sub, training in modes:
            sub.training = training
    counts = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
    return counts, int(counter.get_total_flops())


def _to_module_device(module: torch.nn.Module, example: Any, trainer: Any) -> Any:
    """Move the example input where the module is, through the batch-transfer hooks (the
    datamodule's where it overrides them, as the Trainer does for real batches)."""
    if not isinstance(module, LightningModule):
        device = next(_tensors(module), torch.empty(0)).device
        return move_data_to_device(example, device)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None

    def pick(name: str) -> Any:
        if isinstance(datamodule, LightningDataModule) and getattr(type(datamodule), name) is not getattr(
            LightningDataModule, name
        ):
            return getattr(datamodule, name)
        return getattr(module, name)

    batch = pick("on_before_batch_transfer")(example, 0)
    batch = pick("transfer_batch_to_device")(batch, module.device, 0)
    return pick("on_after_batch_transfer")(batch, 0)


def _tensors(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


class ModelSummary(Callback):
    """Print the model summary table when fit starts (Lightning's ``ModelSummary`` callback).

    Args:
        max_depth: How deep the table goes: 1 (default) lists the direct children, -1 every
            submodule, 0 prints nothing.
        **summarize_kwargs: Passed on to :meth:`print_summary`, for subclasses that show the table
            another way.

    The table is printed on the global-zero process only, to ``sys.stdout`` so that it lands in
    order with the progress bars (Lightning sends it through its logger, to stderr). When the module
    has an ``example_input_array``, every process runs the forward pass (a sharded model may need
    all processes to take part), as Lightning does.
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < -1:
            raise ValueError(f"max_depth must be -1 (all layers), 0 (off) or a positive int, got {max_depth!r}")
        self._max_depth = max_depth
        self._summarize_kwargs = summarize_kwargs

    @property
    def max_depth(self) -> int:
        """How deep the table goes (0: the callback prints nothing)."""
        return self._max_depth

    def on_fit_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if not self._max_depth:
            return
        zero = bool(getattr(trainer, "is_global_zero", True))
        if not zero and pl_module.example_input_array is None:
            return
        summary = summarize(pl_module, max_depth=self._max_depth)
        if zero:
            self.print_summary(summary, **self._summarize_kwargs)

    def print_summary(self, summary: Summary, **summarize_kwargs: Any) -> None:
        """Show ``summary``; override to send it elsewhere (a logger, a rich table)."""
        # The leading blank line separates the table from whatever the run printed before, as
        # Lightning's output does.
        print("\n" + str(summary), file=sys.stdout, flush=True)

