"""``LearningRateMonitor``: send every optimizer's learning rate to the loggers (Lightning's callback).

Names are Lightning's: ``lr-<optimizer class>`` (``lr-Adam``), ``-1``, ``-2`` for more optimizers of
the same class, ``/pg1``, ``/pg2`` (or a param group's ``name``) when an optimizer has several param
groups, the scheduler config's ``name`` when it has one, and ``-momentum`` / ``-weight_decay`` for the
extra values. The values go to every logger at the step axis of the Trainer's own logging
(``trainer.batches_that_stepped``) and into ``trainer.callback_metrics``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
from fulmen_core import Callback, LightningModule, LRSchedulerConfig, MisconfigurationException
from torch.optim import Optimizer

_PG1 = "/pg1"


class LearningRateMonitor(Callback):
    r"""Log the learning rate of every optimizer (and of the optimizers behind the schedulers).

    Args:
        logging_interval: ``"step"`` or ``"epoch"`` logs every optimizer at that interval;
            ``None`` (default) logs each scheduler's optimizer at its scheduler's ``interval`` and the
            optimizers without a scheduler at both.
        log_momentum: Also log ``<name>-momentum``: ``betas[0]`` for Adam-like optimizers, else the
            param group's ``momentum`` (0 when it has none).
        log_weight_decay: Also log ``<name>-weight_decay``.

    Attributes:
        lrs: Every learning rate logged so far, by name.
        last_momentum_values: The last momentum logged, by ``<name>-momentum``.
        last_weight_decay_values: The last weight decay logged, by ``<name>-weight_decay``.

    Raises:
        MisconfigurationException: If ``logging_interval`` is not ``"step"``, ``"epoch"`` or
            ``None``; when training starts without a logger; when one optimizer has two param
            groups of the same ``name``.
    """

    def __init__(
        self,
        logging_interval: Literal["step", "epoch"] | None = None,
        log_momentum: bool = False,
        log_weight_decay: bool = False,
    ) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise MisconfigurationException(
                f"logging_interval should be `step` or `epoch` or `None`, got {logging_interval!r}."
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}

    # ------------------------------------------------------------------ hooks

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger. Pass a "
                "logger (e.g. Trainer(logger=CSVLogger('logs'))) or remove the callback."
            )
        configs: list[LRSchedulerConfig] = list(trainer.lr_scheduler_configs)
        if self.log_momentum and self._lacks("momentum", trainer) and self._lacks("betas", trainer):
            warnings.warn(
                "You have set log_momentum=True, but some optimizers do not have momentum. This will "
                "log a value 0 for the momentum.",
                RuntimeWarning,
                stacklevel=2,
            )
        named = self._named(configs, trainer.optimizers)
        names = [name for _, group_names, _ in named for name in group_names]
        self.lrs = {name: [] for name in names}
        self.last_momentum_values = {f"{name}-momentum": None for name in names}
        self.last_weight_decay_values = {f"{name}-weight_decay": None for name in names}

    def on_train_batch_start(
        self, trainer: Any, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.logging_interval == "epoch" or not _should_update_logs(trainer):
            return
        stats = self._extract_stats(trainer, "step" if self.logging_interval is None else "any")
        if stats:
            self._send(trainer, stats)

    def on_train_epoch_start(self, trainer: Any, pl_module: LightningModule) -> None:
        if self.logging_interval == "step":
            return
        stats = self._extract_stats(trainer, "epoch" if self.logging_interval is None else "any")
        if stats:
            self._send(trainer, stats)

    # ------------------------------------------------------------------ values

    def _send(self, trainer: Any, stats: dict[str, float]) -> None:
        step = trainer.batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)

    def _extract_stats(self, trainer: Any, interval: str) -> dict[str, float]:
        """The values due at ``interval`` (``"step"``, ``"epoch"``, or ``"any"``), by name; also
        put into ``trainer.callback_metrics`` as tensors."""
        configs: list[LRSchedulerConfig] = list(trainer.lr_scheduler_configs)
        named = self._named(configs, trainer.optimizers)
        self._remap_keys([group_names for _, group_names, _ in named])
        stats: dict[str, float] = {}
        for optimizer, group_names, config in named:
            if config is not None and interval not in (config.interval, "any"):
                continue
            stats.update(self._get_optimizer_stats(optimizer, group_names))
        if stats:
            device = getattr(trainer, "root_device", None)
            trainer.callback_metrics.update(
                {name: torch.tensor(value, device=device) for name, value in stats.items()}
            )
        return stats

    def _get_optimizer_stats(self, optimizer: Optimizer, names: list[str]) -> dict[str, float]:
        stats: dict[str, float] = {}
        use_betas = "betas" in optimizer.defaults
        for group, name in zip(optimizer.param_groups, names):
            lr = _number(group["lr"])
            self.lrs.setdefault(name, []).append(lr)
            stats[name] = lr
            if self.log_momentum:
                momentum = _number(group["betas"][0] if use_betas else group.get("momentum", 0))
                self.last_momentum_values[f"{name}-momentum"] = momentum
                stats[f"{name}-momentum"] = momentum
            if self.log_weight_decay:
                weight_decay = _number(group["weight_decay"])
                self.last_weight_decay_values[f"{name}-weight_decay"] = weight_decay
                stats[f"{name}-weight_decay"] = weight_decay
        return stats

    def _lacks(self, key: str, trainer: Any) -> bool:
        """Whether some optimizer (behind a scheduler, if there are schedulers) has no ``key``."""
        configs = trainer.lr_scheduler_configs
        if configs:
            return any(key not in config.scheduler.optimizer.defaults for config in configs)
        return any(key not in optimizer.defaults for optimizer in trainer.optimizers)

    # ------------------------------------------------------------------ names

    def _remap_keys(self, names: list[list[str]]) -> None:
        """Keep a history under its new name when an optimizer gained param groups (``lr-SGD``
        becomes ``lr-SGD/pg1``)."""
        for group_names in names:
            for name in group_names:
                old = name.replace(_PG1, "")
                if _PG1 in name and old in self.lrs:
                    self.lrs[name] = self.lrs.pop(old)
                elif name not in self.lrs:
                    self.lrs[name] = []

    def _named(
        self, configs: Sequence[LRSchedulerConfig], optimizers: Sequence[Any]
    ) -> list[tuple[Optimizer, list[str], LRSchedulerConfig | None]]:
        """Each scheduler's optimizer (in scheduler order), then each optimizer without a
        scheduler, with the names of its param groups."""
        seen: list[Optimizer] = []
        per_class: dict[type, int] = {}
        named: list[tuple[Optimizer, list[str], LRSchedulerConfig | None]] = []
        for config in configs:
            optimizer = config.scheduler.optimizer
            base = config.name if config.name is not None else f"lr-{type(optimizer).__name__}"
            names = self._group_names(optimizer, base, seen, per_class, counted=config.name is None)
            named.append((optimizer, names, config))
        for candidate in optimizers:
            # An optimizer wrapper (DeepSpeed's, for one) keeps the torch optimizer in `.optimizer`.
            optimizer = candidate.optimizer if hasattr(candidate, "optimizer") else candidate
            if any(optimizer is other for other in seen):
                continue
            base = f"lr-{type(optimizer).__name__}"
            names = self._group_names(optimizer, base, seen, per_class, counted=True)
            named.append((optimizer, names, None))
        return named

    @staticmethod
    def _group_names(
        optimizer: Optimizer, base: str, seen: list[Optimizer], per_class: dict[type, int], counted: bool
    ) -> list[str]:
        seen.append(optimizer)
        cls = type(optimizer)
        if counted:
            per_class[cls] = per_class.get(cls, 0) + 1
        groups = optimizer.param_groups
        labels = [group.get("name", f"pg{i}") for i, group in enumerate(groups, start=1)]
        duplicated = {label for label in labels if labels.count(label) > 1}
        if duplicated:
            raise MisconfigurationException(
                "A single `Optimizer` cannot have multiple parameter groups with identical `name` "
                f"values. {base} has duplicated parameter group names {duplicated}: give each group "
                "its own 'name' in the dicts passed to the optimizer"
            )
        # Lightning numbers optimizers of one class by how many unnamed ones came so far.
        count = per_class.get(cls, 0)
        if count > 1:
            base = f"{base}-{count - 1}"
        if len(groups) > 1:
            return [f"{base}/{label}" for label in labels]
        name = groups[0].get("name") if groups else None
        return [f"{base}/{name}" if name else base for _ in groups]


def _should_update_logs(trainer: Any) -> bool:
    """Lightning's rule for logging at a training batch: every ``log_every_n_steps`` optimizer
    steps (counted before this batch steps), and when a stop was asked."""
    every = trainer.log_every_n_steps
    if every == 0:
        return False
    return (trainer.batches_that_stepped + 1) % every == 0 or bool(trainer.should_stop)


def _number(value: Any) -> float:
    # A learning rate may be a tensor (torch accepts one); loggers take numbers.
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)
