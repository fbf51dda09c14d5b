"""Lightning's ``lightning.pytorch.tuner.Tuner``: ``from fulmen.tuner import Tuner``.

Wiring only: each method builds the finder callback from fulmen-callbacks, runs a fit on the
trainer with that callback alone (no other callbacks, no loggers, so nothing is written to the log
directory), and the finder ends the fit once it has searched (``TunerExitException``, a
``FitEnded``: the fit returns as a success). The trainer's callbacks, loggers,
state and stop flag are then as before, and the model as before but for the tuned attribute.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from fulmen_callbacks import BatchSizeFinder, LearningRateFinder, LRFinderResult
from fulmen_core import Callback, LightningDataModule, LightningModule, MisconfigurationException

from fulmen._trainer import Trainer

__all__ = ["LRFinderResult", "Tuner"]

_METHODS = ("fit", "validate", "test", "predict")


class Tuner:
    """Tune a model's learning rate or batch size with a :class:`~fulmen.Trainer`."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def scale_batch_size(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        method: Literal["fit", "validate", "test", "predict"] = "fit",
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> int | None:
        """The largest batch size that trains ``steps_per_trial`` steps without running out of memory
        (see :class:`~fulmen.callbacks.BatchSizeFinder`), also written to ``batch_arg_name`` on the
        model, its hparams or the datamodule. ``None`` under ``fast_dev_run``."""
        _check_method(method, train_dataloaders, val_dataloaders, dataloaders)
        given = dataloaders if method != "fit" else train_dataloaders
        if isinstance(given, LightningDataModule):
            datamodule, given = given, None
        if given is not None:
            hook = "train_dataloader" if method == "fit" else f"{'val' if method == 'validate' else method}_dataloader"
            raise MisconfigurationException(
                f"scale_batch_size cannot resize dataloaders passed to it: define {hook}() on the model "
                f"or a datamodule, reading self.{batch_arg_name}, and pass the datamodule instead"
            )
        if self._trainer.world_size > 1:
            raise MisconfigurationException("scale_batch_size does not support distributed runs")
        self._refuse_configured(BatchSizeFinder)
        finder = BatchSizeFinder(mode, steps_per_trial, init_val, max_trials, batch_arg_name, margin, max_val)
        if method == "fit":
            finder._early_exit = True
            self._fit_with(finder, model, None, val_dataloaders, datamodule)
        else:
            # Each trial is a short validate/test/predict run of its own; nothing to end early.
            finder.scale_batch_size(self._trainer, model, method=method, datamodule=datamodule)
        return finder.optimal_batch_size

    def lr_find(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        method: Literal["fit", "validate", "test", "predict"] = "fit",
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> LRFinderResult | None:
        """A learning-rate range test (see :class:`~fulmen.callbacks.LearningRateFinder`); returns
        its :class:`LRFinderResult` (``.results``, ``.suggestion()``, ``.plot()``), ``None`` under
        ``fast_dev_run``. With ``update_attr`` the model's ``lr``/``learning_rate`` is set to the
        suggestion."""
        if method != "fit":
            raise MisconfigurationException(
                f"lr_find(method={method!r}): the learning rate finder trains, so method='fit' is the only one"
            )
        _check_method(method, train_dataloaders, val_dataloaders, dataloaders)
        self._refuse_configured(LearningRateFinder)
        finder = LearningRateFinder(
            min_lr=min_lr,
            max_lr=max_lr,
            num_training_steps=num_training,
            mode=mode,
            early_stop_threshold=early_stop_threshold,
            update_attr=update_attr,
            attr_name=attr_name,
        )
        finder._early_exit = True
        self._fit_with(finder, model, train_dataloaders, val_dataloaders, datamodule)
        return finder.optimal_lr

    def _refuse_configured(self, kind: type[Callback]) -> None:
        if any(isinstance(c, kind) for c in self._trainer.callbacks):
            raise MisconfigurationException(
                f"the Trainer already has a {kind.__name__} callback; remove it to use the Tuner"
            )

    def _fit_with(
        self,
        finder: Callback,
        model: LightningModule,
        train_dataloaders: Any,
        val_dataloaders: Any,
        datamodule: LightningDataModule | None,
    ) -> None:
        trainer = self._trainer
        callbacks, loggers = trainer.callbacks, trainer.loggers
        state, should_stop = attrs.evolve(trainer.state), trainer.should_stop
        # Only the finder takes part: other callbacks would checkpoint or draw progress bars, and
        # loggers would create a run directory, for a fit that trains nothing.
        trainer.callbacks = [finder]
        trainer.loggers = []
        try:
            trainer.fit(model, train_dataloaders, val_dataloaders, datamodule)  # the finder ends it
        finally:
            trainer.callbacks = callbacks
            trainer.loggers = loggers
            trainer.state = state
            trainer.should_stop = should_stop


def _check_method(method: str, train_dataloaders: Any, val_dataloaders: Any, dataloaders: Any) -> None:
    if method not in _METHODS:
        raise MisconfigurationException(f"method={method!r} is not one of {list(_METHODS)}")
    if method == "fit" and dataloaders is not None:
        raise MisconfigurationException(
            "with method='fit' pass train_dataloaders= and val_dataloaders=, not dataloaders="
        )
    if method != "fit" and (train_dataloaders is not None or val_dataloaders is not None):
        raise MisconfigurationException(
            f"with method={method!r} pass dataloaders= (or a datamodule), not train_dataloaders=/val_dataloaders="
        )
