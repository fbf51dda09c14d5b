"""``PredictionLoop``: ``predict_step`` over every batch, collecting the outputs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from fulmen_loops._data import length_of, limit_batches
from fulmen_loops._evaluation import capture_modes, restore_modes
from fulmen_loops._profiling import ProfiledIterator
from fulmen_loops._results import MetricStore
from fulmen_loops._steps import through_sharded_root

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner


class PredictionLoop:
    """Runs ``predict_step`` in inference mode and returns the outputs per batch."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.return_predictions = True

    def run(self) -> list[Any] | None:
        """Predict; a list of per-batch outputs, or a list of such lists for several dataloaders."""
        runner = self.runner
        settings = runner.settings
        limit = settings.fast_dev_run_batches or settings.limit_predict_batches
        if limit is None:
            limit = 1.0
        loaders = runner.loaders_for("predict")
        budget = [limit_batches(length_of(lo), limit, "limit_predict_batches", "predict") for lo in loaders]
        runner.num_predict_batches = list(budget)
        runner.state.stage = "predict"
        context = torch.inference_mode if settings.inference_mode else torch.no_grad
        # A store that accepts nothing, so that self.log in predict_step names the hook at fault.
        runner._results = MetricStore(training=False)
        try:
            with context():
                outputs = self._run(runner, loaders, budget)
        finally:
            runner._results = None
        if not self.return_predictions:
            return None
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(self, runner: Runner, loaders: list[Any], budget: list[int | float]) -> list[list[Any]]:
        module = runner.lightning_module
        cbs = runner.callback_list
        set_hook = runner.set_hook
        modes = capture_modes(module)
        set_hook("on_predict_model_eval")
        module.on_predict_model_eval()
        set_hook("on_predict_start")
        cbs.on_predict_start(runner, module)
        module.on_predict_start()
        set_hook("on_predict_epoch_start")
        cbs.on_predict_epoch_start(runner, module)
        module.on_predict_epoch_start()
        several = len(loaders) > 1
        keep = self.return_predictions
        predict_step = through_sharded_root(runner, module, "predict_step")
        profiler = runner._profiler
        everything: list[list[Any]] = []
        for dataloader_idx, (loader, limit) in enumerate(zip(loaders, budget)):
            outputs: list[Any] = []
            everything.append(outputs)
            if limit == 0:
                continue
            iterator: Any = iter(loader)
            if profiler is not None:
                iterator = ProfiledIterator(iterator, "[_PredictionLoop].predict_next", profiler)
            batch_idx = 0
            while limit == math.inf or batch_idx < limit:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                batch = runner.transfer_batch(batch, dataloader_idx)
                # dataloader_idx only with several loaders, as in Lightning (see EvaluationLoop).
                set_hook("on_predict_batch_start")
                if several:
                    cbs.on_predict_batch_start(runner, module, batch, batch_idx, dataloader_idx)
                    module.on_predict_batch_start(batch, batch_idx, dataloader_idx)
                    set_hook("predict_step")
                    output = predict_step(batch, batch_idx, dataloader_idx)
                    set_hook("on_predict_batch_end")
                    cbs.on_predict_batch_end(runner, module, output, batch, batch_idx, dataloader_idx)
                    module.on_predict_batch_end(output, batch, batch_idx, dataloader_idx)
                else:
                    cbs.on_predict_batch_start(runner, module, batch, batch_idx)
                    module.on_predict_batch_start(batch, batch_idx)
                    set_hook("predict_step")
                    output = predict_step(batch, batch_idx)
                    set_hook("on_predict_batch_end")
                    cbs.on_predict_batch_end(runner, module, output, batch, batch_idx)
                    module.on_predict_batch_end(output, batch, batch_idx)
                if keep:
                    outputs.append(output)
                batch_idx += 1
        set_hook("on_predict_epoch_end")
        cbs.on_predict_epoch_end(runner, module)
        module.on_predict_epoch_end()
        set_hook("on_predict_end")
        cbs.on_predict_end(runner, module)
        module.on_predict_end()
        restore_modes(modes)
        return everything
