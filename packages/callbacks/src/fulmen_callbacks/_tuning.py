"""What the learning-rate and batch-size finders share: the trainer they need, the attribute
lookup across model, hparams and datamodule, and an in-memory snapshot of what a trial changes."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch
from fulmen_core import Callback, FitEnded, LightningModule, MisconfigurationException


class TunerExitException(FitEnded):
    """Raised by a finder whose work is the whole run (``Tuner.lr_find``/``scale_batch_size``) to
    end the fit right after tuning; the runner ends the fit as a success (no ``on_exception``)."""


class TrialRunner(Protocol):
    """What a finder needs of the trainer beyond ``TrainerView``: a short nested training run that
    restores the trainer afterwards (``fulmen_loops.Runner.run_trial``)."""

    def run_trial(self, callbacks: Sequence[Callback], **settings: Any) -> None: ...

    def run_stage_trial(
        self,
        fn: str,
        model: LightningModule,
        datamodule: Any,
        callbacks: Sequence[Callback],
        **settings: Any,
    ) -> None: ...


def _trial_runner(trainer: Any) -> TrialRunner:
    if not (callable(getattr(trainer, "run_trial", None)) and callable(getattr(trainer, "run_stage_trial", None))):
        raise TypeError(
            f"{type(trainer).__qualname__} has no run_trial/run_stage_trial; the tuner callbacks "
            "need a fulmen Trainer (or fulmen_loops.Runner)"
        )
    runner: TrialRunner = trainer
    return runner


def run_trial(trainer: Any, callbacks: Sequence[Callback], **settings: Any) -> None:
    """``trainer.run_trial(...)``, with an error naming what is missing for other trainers."""
    _trial_runner(trainer).run_trial(callbacks, **settings)


def run_stage_trial(
    trainer: Any, fn: str, model: LightningModule, datamodule: Any, callbacks: Sequence[Callback], **settings: Any
) -> None:
    """``trainer.run_stage_trial(...)``: one validate/test/predict run that leaves the trainer as it was."""
    _trial_runner(trainer).run_stage_trial(fn, model, datamodule, callbacks, **settings)


def require_positive_int(owner: str, name: str, value: object) -> None:
    """A finder's count argument must be an int >= 1 (not a bool); the error names the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MisconfigurationException(f"{owner}({name}={value!r}) must be an int >= 1")


def attribute_holders(module: LightningModule, name: str, datamodule: Any = None) -> list[Any]:
    """Where ``name`` lives, in Lightning's order: the module, its hparams, the datamodule (the one
    given, else the trainer's), the datamodule's hparams."""
    holders: list[Any] = []
    if hasattr(module, name):
        holders.append(module)
    hparams = getattr(module, "hparams", None)
    if isinstance(hparams, Mapping) and name in hparams:
        holders.append(hparams)
    if datamodule is None:
        trainer = getattr(module, "_trainer", None)
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    if datamodule is not None:
        if hasattr(datamodule, name):
            holders.append(datamodule)
        dm_hparams = getattr(datamodule, "hparams", None)
        if isinstance(dm_hparams, Mapping) and name in dm_hparams:
            holders.append(dm_hparams)
    return holders


def get_attribute(holders: list[Any], name: str) -> Any:
    """The value from the last holder (Lightning reads the last one found)."""
    holder = holders[-1]
    return holder[name] if isinstance(holder, Mapping) else getattr(holder, name)


def set_attribute(holders: list[Any], name: str, value: Any) -> None:
    """Write ``value`` into every holder, so model, hparams and datamodule agree."""
    for holder in holders:
        if isinstance(holder, dict):
            holder[name] = value
        else:
            setattr(holder, name, value)


class Snapshot:
    """The module's weights and buffers and the optimizers' and schedulers' states, copied in
    memory (Lightning writes a temporary checkpoint file; a copy leaves nothing behind on error)."""

    def __init__(self, trainer: Any, module: LightningModule) -> None:
        self._module = module
        self._weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self._optimizers = [(o, copy.deepcopy(o.state_dict())) for o in getattr(trainer, "optimizers", [])]
        self._schedulers = [
            (config.scheduler, copy.deepcopy(config.scheduler.state_dict()))
            for config in getattr(trainer, "lr_scheduler_configs", [])
        ]
        self._training = module.training

    def restore(self) -> None:
        """Put back exactly what was copied."""
        with torch.no_grad():
            self._module.load_state_dict(self._weights)
        for optimizer, state in self._optimizers:
            optimizer.load_state_dict(state)
        for scheduler, state in self._schedulers:
            scheduler.load_state_dict(state)
        self._module.train(self._training)
