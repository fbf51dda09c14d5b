"""``run_trial``: a short nested training run, for tuners, that leaves the Runner as it found it.

The learning-rate and batch-size finders train a few steps from inside a fit (at ``on_fit_start``)
with their own callbacks and limits. Everything such a run changes on the Runner (settings,
callbacks, loggers, progress counters, the stop flag, the stage, metrics, cached dataloaders) is
put back afterwards, even when the run raised (an out-of-memory error is how a batch-size trial
fails), so the enclosing fit goes on as if no trial had run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from fulmen_core import Callback, LightningDataModule, LightningModule

from fulmen_loops._callbacks import CallbackList
from fulmen_loops._fit import FitLoop

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner

# The FitLoop's own position and data cache; a trial starts at epoch 0, batch 0, with fresh loaders.
_FIT_LOOP_FIELDS = ("loaders", "_loaded_epoch", "batch_idx", "total_batch_idx", "_iterator", "_in_epoch",
                    "_epoch_start_rng", "_resume")  # fmt: skip
_RUNNER_FIELDS = ("settings", "callbacks", "callback_list", "_loggers", "_current_epoch", "_global_step",
                  "batches_that_stepped", "is_last_batch", "should_stop", "epoch_end_reached",
                  "num_training_batches", "val_check_batch", "num_val_batches", "_accumulate_grad_batches",
                  "_loaded_checkpoint", "_results", "_callback_metrics", "_logged_metrics",
                  "_progress_bar_metrics", "_profiler")  # fmt: skip


@contextlib.contextmanager
def _isolated(runner: Runner, callbacks: Sequence[Callback], settings: dict[str, Any], *extra: str) -> Iterator[None]:
    """The Runner with only ``callbacks``, no loggers, no profiling of its own (the stage around a
    trial may already be profiled) and ``settings`` overridden; its fields and state put back after."""
    saved = {name: getattr(runner, name) for name in (*_RUNNER_FIELDS, *extra)}
    state = attrs.evolve(runner.state)
    try:
        runner.settings = attrs.evolve(runner.settings, **settings)
        runner.callbacks = list(callbacks)
        runner.callback_list = CallbackList(runner.callbacks)
        runner._loggers = []
        runner._profiler = None
        yield
    finally:
        for name, value in saved.items():
            setattr(runner, name, value)
        runner.state = state


def run_trial(runner: Runner, callbacks: Sequence[Callback], **settings: Any) -> None:
    """Run ``runner.fit_loop`` once with only ``callbacks``, no loggers, progress from zero and
    ``settings`` (``LoopSettings`` fields) replacing the current ones; then restore the Runner."""
    loop = runner.fit_loop
    saved_loop = {name: getattr(loop, name) for name in _FIT_LOOP_FIELDS} if isinstance(loop, FitLoop) else {}
    try:
        with _isolated(runner, callbacks, settings):
            runner._current_epoch = 0
            runner._global_step = 0
            runner.batches_that_stepped = 0
            runner.should_stop = False
            runner.epoch_end_reached = False
            runner._accumulate_grad_batches = runner.settings.accumulate_grad_batches
            # A checkpoint being resumed belongs to the real run, not to the trial.
            runner._loaded_checkpoint = None
            runner.reset_metrics()
            if isinstance(loop, FitLoop):
                _fresh_data(loop)
                loop.run_training()  # as Lightning's trials: no fit start/end hooks, no sanity check
            else:
                loop.run()
    finally:
        if isinstance(loop, FitLoop):
            for name, value in saved_loop.items():
                setattr(loop, name, value)
            # The trial may have changed what the dataloader hooks return (the batch size): the
            # run asks for its dataloaders again when it next sets its data up.
            loop.loaders = None
            loop.val_loop.loaders = None


def _fresh_data(loop: FitLoop) -> None:
    loop.loaders = None
    loop._iterator = None
    loop._resume = None
    loop._in_epoch = False
    loop.batch_idx = 0
    loop.total_batch_idx = 0
    loop.val_loop.loaders = None


def run_stage_trial(
    runner: Runner,
    fn: str,
    module: LightningModule,
    datamodule: LightningDataModule | None,
    callbacks: Sequence[Callback],
    **settings: Any,
) -> None:
    """Run ``validate``, ``test`` or ``predict`` once, outside any other stage, with only
    ``callbacks``, no loggers and ``settings`` overridden; then restore the Runner."""
    if fn not in ("validate", "test", "predict"):
        raise ValueError(f"run_stage_trial runs validate, test or predict, not {fn!r}")
    with _isolated(runner, callbacks, settings, "_module", "datamodule", "ckpt_path"):
        if fn == "predict":
            runner.predict(module, datamodule=datamodule, return_predictions=False)
        elif fn == "validate":
            runner.validate(module, datamodule=datamodule, verbose=False)
        else:
            runner.test(module, datamodule=datamodule, verbose=False)
