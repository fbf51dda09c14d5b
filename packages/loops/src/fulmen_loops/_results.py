"""What ``self.log`` records, and how it becomes the Trainer's three metric dictionaries.

Values stay tensors (detached, on their device) until somebody reads them, so logging a scalar every
step costs a dictionary lookup and, for epoch aggregation, one multiply-add: no host sync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from fulmen_core import MisconfigurationException


class HookLevels(NamedTuple):
    """Where ``self.log`` may aggregate in one hook, and its defaults there."""

    allowed_on_step: tuple[bool, ...]
    allowed_on_epoch: tuple[bool, ...]
    default_on_step: bool
    default_on_epoch: bool


_STEP = HookLevels((False, True), (False, True), True, False)
_EVAL_STEP = HookLevels((False, True), (False, True), False, True)
_EPOCH = HookLevels((False,), (True,), False, True)

# Hooks from which `self.log` is allowed (others raise, as in Lightning).
HOOK_LEVELS: dict[str, HookLevels] = {
    **dict.fromkeys(
        (
            "training_step",
            "on_train_batch_start",
            "on_train_batch_end",
            "on_before_backward",
            "backward",
            "on_after_backward",
            "on_before_optimizer_step",
            "optimizer_step",
            "configure_gradient_clipping",
            "clip_gradients",
            "on_before_zero_grad",
            "optimizer_zero_grad",
        ),
        _STEP,
    ),
    **dict.fromkeys(
        (
            "validation_step",
            "test_step",
            "on_validation_batch_start",
            "on_validation_batch_end",
            "on_test_batch_start",
            "on_test_batch_end",
        ),
        _EVAL_STEP,
    ),
    **dict.fromkeys(
        (
            "on_train_start",
            "on_train_epoch_start",
            "on_train_epoch_end",
            "on_validation_start",
            "on_validation_epoch_start",
            "on_validation_epoch_end",
            "on_test_start",
            "on_test_epoch_start",
            "on_test_epoch_end",
        ),
        _EPOCH,
    ),
}

_STAGE_START_HOOKS = frozenset({"on_train_start", "on_validation_start", "on_test_start"})

_REDUCTIONS: dict[object, str] = {
    "mean": "mean",
    "avg": "mean",
    "max": "max",
    "min": "min",
    "sum": "sum",
    torch.mean: "mean",
    torch.max: "max",
    torch.min: "min",
    torch.sum: "sum",
}

_TORCHMETRICS_TYPES: dict[type, bool] = {}


def is_torchmetrics_metric(value: object) -> bool:
    """Whether ``value`` is a ``torchmetrics.Metric``, decided without importing torchmetrics."""
    kind = type(value)
    known = _TORCHMETRICS_TYPES.get(kind)
    if known is None:
        known = any(
            base.__name__ == "Metric" and base.__module__.startswith("torchmetrics")
            for base in kind.__mro__
        )
        _TORCHMETRICS_TYPES[kind] = known
    return known


class LoggedMetric:
    """One ``(hook, name, dataloader)`` entry: its options, last step value and epoch aggregate."""

    __slots__ = (
        "name",
        "hook",
        "options",
        "prog_bar",
        "logger",
        "on_step",
        "on_epoch",
        "reduction",
        "enable_graph",
        "dataloader_idx",
        "add_dataloader_idx",
        "step_value",
        "total",
        "weight",
        "metric_object",
        "computed",
        "updated",
    )

    def __init__(
        self,
        hook: str,
        name: str,
        options: tuple[Any, ...],
        *,
        prog_bar: bool,
        logger: bool,
        on_step: bool,
        on_epoch: bool,
        reduce_fx: str | Callable[..., Any],
        enable_graph: bool,
        dataloader_idx: int | None,
        add_dataloader_idx: bool,
    ) -> None:
        self.hook = hook
        self.name = name
        self.options = options
        self.prog_bar = prog_bar
        self.logger = logger
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.reduction = _REDUCTIONS[reduce_fx]
        self.enable_graph = enable_graph
        self.dataloader_idx = dataloader_idx
        self.add_dataloader_idx = add_dataloader_idx
        self.step_value: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.weight: int = 0
        self.metric_object: Any = None
        self.computed: torch.Tensor | None = None
        self.updated = False

    def names(self, on_step: bool) -> tuple[str, str]:
        """``(name, forked_name)``: forked carries ``_step``/``_epoch`` when both levels are logged."""
        name = self.name
        forked = name
        if self.on_step and self.on_epoch:
            forked = f"{name}_step" if on_step else f"{name}_epoch"
        if self.dataloader_idx is not None and self.add_dataloader_idx:
            suffix = f"/dataloader_idx_{self.dataloader_idx}"
            name += suffix
            forked += suffix
        return name, forked

    def update(self, value: torch.Tensor, batch_size: int) -> None:
        if self.on_step:
            self.step_value = value
        if self.on_epoch:
            self.computed = None
            reduction = self.reduction
            total = self.total
            if reduction == "mean":
                weighted = value * batch_size
                self.total = weighted if total is None else total + weighted
                self.weight += batch_size
            elif reduction == "sum":
                self.total = value if total is None else total + value
            elif reduction == "max":
                self.total = value if total is None else torch.maximum(total, value)
            else:
                self.total = value if total is None else torch.minimum(total, value)
        self.updated = True

    def compute(self) -> torch.Tensor | None:
        """The epoch aggregate, computed once per change."""
        if self.computed is not None:
            return self.computed
        if self.metric_object is not None:
            result = self.metric_object.compute()
        elif self.total is None:
            return None
        elif self.reduction == "mean":
            result = self.total / self.weight
        else:
            result = self.total
        self.computed = result if self.enable_graph else result.detach()
        return self.computed

    def reset(self) -> None:
        self.step_value = None
        self.total = None
        self.weight = 0
        self.computed = None
        self.updated = False
        if self.metric_object is not None and self.on_epoch:
            self.metric_object.reset()


class MetricStore:
    """Every value logged during one stage (training, or one evaluation run)."""

    def __init__(self, training: bool) -> None:
        self.training = training
        # Lightning shows values logged in on_*_start before the first batch, except in the
        # validation that runs inside fit (observed behaviour, kept for identical dictionaries).
        self.show_start_values = True
        self.entries: dict[tuple[str, str, int | None], LoggedMetric] = {}
        self.hook: str | None = None
        self.dataloader_idx: int | None = None
        self.batch: Any = None
        self._batch_size: int | None = None
        self.device: torch.device | None = None
        #: Reduces a value over processes for ``sync_dist=True`` (``None`` with one process).
        self.sync: Callable[[torch.Tensor, str], torch.Tensor] | None = None

    def set_batch(self, batch: Any, dataloader_idx: int | None) -> None:
        """The batch now being processed: used to infer ``batch_size`` when it is needed."""
        self.batch = batch
        self._batch_size = None
        self.dataloader_idx = dataloader_idx

    def _current_batch_size(self) -> int:
        size = self._batch_size
        if size is None:
            # Outside a batch (epoch hooks, on_train_start) each value weighs 1.
            size = 1 if self.batch is None else extract_batch_size(self.batch)
            self._batch_size = size
        return size

    def log(
        self,
        name: str,
        value: Any,
        *,
        prog_bar: bool,
        logger: bool | None,
        on_step: bool | None,
        on_epoch: bool | None,
        reduce_fx: str | Callable[..., Any],
        enable_graph: bool,
        sync_dist: bool,
        add_dataloader_idx: bool,
        batch_size: int | None,
        rank_zero_only: bool,
    ) -> None:
        """Record ``value`` for ``name`` in the current hook (see ``LightningModule.log``)."""
        hook = self.hook
        if hook is None:
            raise MisconfigurationException(
                f"self.log({name!r}) was called outside the hooks the Trainer runs; log from a "
                "step or an on_* hook of fit, validate or test"
            )
        key = (hook, name, self.dataloader_idx)
        options = (prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, add_dataloader_idx)
        entry = self.entries.get(key)
        if entry is None or entry.options != options:
            entry = self._register(key, options, entry)
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(
                    f"self.log({name!r}, {value}) was called, but the tensor must have a single "
                    f"element (it has shape {tuple(value.shape)}); log a reduction such as "
                    f"self.log({name!r}, value.mean())"
                )
            if not enable_graph:
                value = value.detach()
            # Lightning keeps float64 and turns every other dtype into float32, as a 0-dim tensor.
            if value.dtype is not torch.float32 and value.dtype is not torch.float64:
                value = value.float()
            if value.ndim:
                value = value.reshape(())
        elif isinstance(value, (int, float)):
            value = torch.tensor(float(value), dtype=torch.float32, device=self.device)
        elif is_torchmetrics_metric(value):
            entry.metric_object = value
            cached = getattr(value, "_forward_cache", None)
            if entry.on_step and isinstance(cached, torch.Tensor):
                entry.step_value = cached.detach()
            entry.computed = None
            entry.updated = True
            return
        elif _is_numpy_scalar(value):
            value = torch.tensor(float(value), dtype=torch.float32, device=self.device)
        else:
            raise ValueError(
                f"self.log({name!r}, {value}) was called, but `{type(value).__qualname__}` values "
                "cannot be logged; log a number, a one-element tensor or a torchmetrics Metric "
                "(log_dict for several values)"
            )
        if sync_dist and self.sync is not None:
            value = self.sync(value, entry.reduction)
        if entry.on_epoch and entry.reduction == "mean":
            size = batch_size if batch_size is not None else self._current_batch_size()
        else:
            size = 1
        entry.update(value, size)

    def _register(
        self,
        key: tuple[str, str, int | None],
        options: tuple[Any, ...],
        previous: LoggedMetric | None,
    ) -> LoggedMetric:
        hook, name, dataloader_idx = key
        if previous is not None and previous.updated:
            raise MisconfigurationException(
                f"You called `self.log({name}, ...)` twice in `{hook}` with different arguments. "
                "This is not allowed: log one name with one set of options, or use two names"
            )
        levels = HOOK_LEVELS.get(hook)
        if levels is None:
            raise MisconfigurationException(
                f"You can't `self.log()` inside `{hook}` (logging {name!r}); log from "
                "training_step, validation_step, test_step or the batch/epoch hooks of those "
                "stages. HINT: a logger's own API still works there"
            )
        prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, add_dataloader_idx = options
        step = levels.default_on_step if on_step is None else on_step
        epoch = levels.default_on_epoch if on_epoch is None else on_epoch
        if step not in levels.allowed_on_step:
            raise MisconfigurationException(
                f"You can't `self.log(on_step={step})` inside `{hook}` (logging {name!r}), must "
                f"be one of {levels.allowed_on_step}"
            )
        if epoch not in levels.allowed_on_epoch:
            raise MisconfigurationException(
                f"You can't `self.log(on_epoch={epoch})` inside `{hook}` (logging {name!r}), "
                f"must be one of {levels.allowed_on_epoch}"
            )
        if not step and not epoch:
            raise MisconfigurationException(
                f"`self.log({name!r}, on_step=False, on_epoch=False)` is not useful: the value "
                "would go nowhere; set on_step or on_epoch"
            )
        if add_dataloader_idx and "dataloader_idx" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key {name!r} but it should not contain "
                "information about `dataloader_idx` when `add_dataloader_idx=True`"
            )
        if reduce_fx not in _REDUCTIONS:
            raise MisconfigurationException(
                "Only `self.log(..., reduce_fx={min,max,mean,sum})` are supported. If you need a "
                f"custom reduction, log a `torchmetrics.Metric` instead. Found: {reduce_fx}"
            )
        self._check_clash(name, bool(step and epoch))
        entry = LoggedMetric(
            hook,
            name,
            options,
            prog_bar=bool(prog_bar),
            logger=True if logger is None else bool(logger),
            on_step=step,
            on_epoch=epoch,
            reduce_fx=reduce_fx,
            enable_graph=bool(enable_graph),
            dataloader_idx=dataloader_idx,
            add_dataloader_idx=bool(add_dataloader_idx),
        )
        self.entries[key] = entry
        return entry

    def _check_clash(self, name: str, forked: bool) -> None:
        """A plain name must not equal another metric's ``_step``/``_epoch`` name, nor the reverse:
        the two would overwrite each other in the dictionaries and the loggers."""
        mine = {f"{name}_step", f"{name}_epoch"} if forked else {name}
        for other in self.entries.values():
            if other.name == name:
                continue
            theirs = (
                {f"{other.name}_step", f"{other.name}_epoch"} if other.on_step and other.on_epoch else {other.name}
            )
            if mine & theirs:
                clash = sorted(mine & theirs)[0]
                raise MisconfigurationException(
                    f"self.log({name!r}) clashes with self.log({other.name!r}): both would be reported "
                    f"as {clash!r} (logging with on_step=True and on_epoch=True adds '_step' and "
                    "'_epoch' to the name); rename one of them"
                )

    def metrics(
        self, on_step: bool
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(logged, progress_bar, callback)`` values as of now: step values during an epoch
        (``on_step=True``), epoch aggregates at its end."""
        logged: dict[str, torch.Tensor] = {}
        bar: dict[str, torch.Tensor] = {}
        callback: dict[str, torch.Tensor] = {}
        for entry in self.entries.values():
            if not entry.updated:
                continue
            epoch_value = not on_step
            if on_step:
                if entry.on_step:
                    value = entry.step_value
                elif self.show_start_values and entry.hook in _STAGE_START_HOOKS:
                    # Logged once before any batch: Lightning shows it straight away.
                    value = entry.compute()
                    epoch_value = True
                else:
                    continue
            else:
                if not entry.on_epoch:
                    continue
                value = entry.compute()
            if value is None:
                continue
            name, forked = entry.names(on_step)
            if entry.logger:
                logged[forked] = value
            if self.training or (entry.on_epoch and epoch_value):
                callback[name] = value
                callback[forked] = value
            if entry.prog_bar:
                bar[forked] = value
        return logged, bar, callback

    def reset(self) -> None:
        """Forget the values (not the options) of every entry, e.g. at an epoch's end."""
        for entry in self.entries.values():
            entry.reset()


def _is_numpy_scalar(value: object) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0


def extract_batch_size(batch: Any) -> int:
    """The size of the first dimension of the first tensor found in ``batch``."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim > 0 else 1
    if isinstance(batch, str):
        return len(batch)
    if isinstance(batch, dict):
        for value in batch.values():
            try:
                return extract_batch_size(value)
            except ValueError:
                continue
    elif isinstance(batch, (list, tuple)):
        for value in batch:
            try:
                return extract_batch_size(value)
            except ValueError:
                continue
    raise ValueError(
        "could not infer the batch size for an epoch-level self.log: the batch holds no tensor; "
        "pass self.log(..., batch_size=N)"
    )
