"""``EvaluationLoop``: one pass of validation or test over its dataloaders."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from fulmen_core import EVALUATE_OUTPUT, LightningModule, MisconfigurationException

from fulmen_loops._data import length_of, limit_batches
from fulmen_loops._hooks import overrides
from fulmen_loops._profiling import ProfiledIterator
from fulmen_loops._results import MetricStore
from fulmen_loops._steps import through_sharded_root

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner


def capture_modes(module: torch.nn.Module) -> list[tuple[torch.nn.Module, bool]]:
    """Each submodule with its ``training`` flag, to restore after evaluation."""
    return [(m, m.training) for m in module.modules()]


def restore_modes(modes: list[tuple[torch.nn.Module, bool]]) -> None:
    """Put back the ``training`` flags recorded by :func:`capture_modes`."""
    for submodule, training in modes:
        submodule.training = training


class EvaluationLoop:
    """Runs ``validation_step`` or ``test_step`` over every batch of the stage's dataloaders.

    The same class serves ``validate``, ``test``, the validation inside fit and the sanity check.
    """

    def __init__(self, runner: Runner, stage: str, *, inside_fit: bool = False) -> None:
        if stage not in ("validate", "test"):
            raise ValueError(f"stage must be 'validate' or 'test', got {stage!r}")
        self.runner = runner
        self.stage = stage
        self.inside_fit = inside_fit
        self.store = MetricStore(training=False)
        self.loaders: list[Iterable[Any]] | None = None
        self.max_batches: list[int | float] = []
        self._loaded_epoch = -1

    def setup_data(self) -> None:
        """Ask for the dataloaders (once; again when reloading every n epochs) and count batches."""
        runner = self.runner
        reload_every = runner.settings.reload_dataloaders_every_n_epochs
        if self.loaders is not None and not (
            self.inside_fit and reload_every and runner.current_epoch - self._loaded_epoch >= reload_every
        ):
            return
        settings = runner.settings
        test = self.stage == "test"
        limit = settings.limit_test_batches if test else settings.limit_val_batches
        flag = "limit_test_batches" if test else "limit_val_batches"
        fast = settings.fast_dev_run_batches
        if fast:
            limit = fast
        elif self.inside_fit and settings.overfit_batches:
            limit, flag = settings.overfit_batches, "overfit_batches"
        elif limit is None:
            limit = 1.0
        step = "test_step" if test else "validation_step"
        module = runner.lightning_module
        if self.inside_fit and (limit == 0 or not overrides(module, LightningModule, step)):
            self.loaders = []
            self.max_batches = []
            return
        self.loaders = runner.loaders_for("test" if test else "val")
        self._loaded_epoch = runner.current_epoch
        self.max_batches = [
            limit_batches(length_of(loader), limit, flag, "test" if test else "val") for loader in self.loaders
        ]
        if test:
            runner.num_test_batches = list(self.max_batches)
        else:
            runner.num_val_batches = list(self.max_batches)

    def run(self) -> EVALUATE_OUTPUT:
        """Evaluate and return one dict of epoch metrics (floats) per dataloader."""
        runner = self.runner
        self.setup_data()
        assert self.loaders is not None
        sanity = runner.sanity_checking
        if sanity:
            steps = runner.num_sanity_val_steps
            budget = [b if steps == -1 else min(b, steps) for b in self.max_batches]
            runner.num_sanity_val_batches = budget
        else:
            budget = list(self.max_batches)
        if sum(budget) == 0:
            return []
        if not sanity:
            runner.state.stage = "test" if self.stage == "test" else "validate"
        context = torch.inference_mode if runner.settings.inference_mode else torch.no_grad
        runner._refresh()  # what the previous stage logged last is kept, as a per-batch update would
        self.store.show_start_values = not (self.inside_fit and not sanity)
        previous_results = runner._results
        previous_epoch_end = runner.epoch_end_reached
        runner._results = self.store
        runner.epoch_end_reached = False
        self.store.reset()
        self.store.device = runner.root_device
        self.store.sync = runner.sync_value if runner.world_size > 1 else None
        try:
            with context():
                return self._run(runner, budget)
        finally:
            runner._results = previous_results
            runner.epoch_end_reached = previous_epoch_end

    def _run(self, runner: Runner, budget: list[int | float]) -> EVALUATE_OUTPUT:
        module = runner.lightning_module
        cbs = runner.callback_list
        store = self.store
        set_hook = runner.set_hook
        test = self.stage == "test"
        if test:
            model_eval, model_train = module.on_test_model_eval, module.on_test_model_train
            train_overridden = overrides(module, LightningModule, "on_test_model_train")
            start_hooks = (cbs.on_test_start, module.on_test_start, "on_test_start")
            epoch_start = (cbs.on_test_epoch_start, module.on_test_epoch_start, "on_test_epoch_start")
            epoch_end = (cbs.on_test_epoch_end, module.on_test_epoch_end, "on_test_epoch_end")
            end_hooks = (cbs.on_test_end, module.on_test_end, "on_test_end")
            batch_start, module_batch_start = cbs.on_test_batch_start, module.on_test_batch_start
            batch_end, module_batch_end = cbs.on_test_batch_end, module.on_test_batch_end
            step, step_name = through_sharded_root(runner, module, "test_step"), "test_step"
            start_name, end_name = "on_test_batch_start", "on_test_batch_end"
        else:
            model_eval, model_train = module.on_validation_model_eval, module.on_validation_model_train
            train_overridden = overrides(module, LightningModule, "on_validation_model_train")
            start_hooks = (cbs.on_validation_start, module.on_validation_start, "on_validation_start")
            epoch_start = (cbs.on_validation_epoch_start, module.on_validation_epoch_start, "on_validation_epoch_start")
            epoch_end = (cbs.on_validation_epoch_end, module.on_validation_epoch_end, "on_validation_epoch_end")
            end_hooks = (cbs.on_validation_end, module.on_validation_end, "on_validation_end")
            batch_start, module_batch_start = cbs.on_validation_batch_start, module.on_validation_batch_start
            batch_end, module_batch_end = cbs.on_validation_batch_end, module.on_validation_batch_end
            step, step_name = through_sharded_root(runner, module, "validation_step"), "validation_step"
            start_name, end_name = "on_validation_batch_start", "on_validation_batch_end"

        assert self.loaders is not None
        profiler = runner._profiler
        fetch_action = "[_EvaluationLoop].test_next" if test else "[_EvaluationLoop].val_next"

        def batches(loader: Iterable[Any]) -> Iterator[Any]:
            if profiler is None:
                return iter(loader)
            return ProfiledIterator(iter(loader), fetch_action, profiler)

        # Lightning creates the first loader's iterator before any hook (it draws from the global
        # RNG); doing the same keeps seeded runs identical.
        iterators: dict[int, Any] = {}
        for index, limit in enumerate(budget):
            if limit != 0:
                iterators[index] = batches(self.loaders[index])
                break
        modes = capture_modes(module)
        set_hook("on_validation_model_eval" if not test else "on_test_model_eval")
        model_eval()
        for callback_hook, module_hook, name in (start_hooks, epoch_start):
            set_hook(name)
            callback_hook(runner, module)
            module_hook()
        several = len(self.loaders) > 1
        transfer = runner.transfer_batch
        for dataloader_idx, (loader, limit) in enumerate(zip(self.loaders, budget)):
            if limit == 0:
                continue
            store_idx = dataloader_idx if several else None
            iterator = iterators.pop(dataloader_idx, None) or batches(loader)
            batch_idx = 0
            while limit == math.inf or batch_idx < limit:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                store.set_batch(batch, store_idx)
                batch = transfer(batch, dataloader_idx)
                # As in Lightning, dataloader_idx is passed only when there are several loaders,
                # so overrides written for one loader may leave the parameter out.
                set_hook(start_name)
                if several:
                    batch_start(runner, module, batch, batch_idx, dataloader_idx)
                    module_batch_start(batch, batch_idx, dataloader_idx)
                    set_hook(step_name)
                    output = step(batch, batch_idx, dataloader_idx)
                    set_hook(end_name)
                    batch_end(runner, module, output, batch, batch_idx, dataloader_idx)
                    module_batch_end(output, batch, batch_idx, dataloader_idx)
                else:
                    batch_start(runner, module, batch, batch_idx)
                    module_batch_start(batch, batch_idx)
                    set_hook(step_name)
                    output = step(batch, batch_idx)
                    set_hook(end_name)
                    batch_end(runner, module, output, batch, batch_idx)
                    module_batch_end(output, batch, batch_idx)
                batch_idx += 1
        store.dataloader_idx = None
        runner.mark_epoch_end()
        callback_hook, module_hook, name = epoch_end
        set_hook(name)
        callback_hook(runner, module)
        module_hook()
        logged = runner.epoch_end()
        outputs: EVALUATE_OUTPUT = []
        if not runner.sanity_checking:
            runner.send_to_loggers(logged)
            outputs = _per_dataloader(logged, len(self.loaders))
        callback_hook, module_hook, name = end_hooks
        set_hook(name)
        callback_hook(runner, module)
        module_hook()
        set_hook("on_validation_model_train" if not test else "on_test_model_train")
        if train_overridden:
            model_train()
        else:
            restore_modes(modes)
        return outputs


def _per_dataloader(logged: dict[str, torch.Tensor], count: int) -> EVALUATE_OUTPUT:
    """The epoch's logged metrics split by dataloader, as floats (Lightning's return value)."""
    results: EVALUATE_OUTPUT = [{} for _ in range(count)]
    for name, value in logged.items():
        owner = _dataloader_of(name)
        number = float(value.item())
        if owner is None:
            for result in results:
                result[name] = number
        elif owner < count:
            results[owner][name] = number
    return results


def _dataloader_of(name: str) -> int | None:
    marker = "/dataloader_idx_"
    position = name.rfind(marker)
    if position < 0:
        return None
    try:
        return int(name[position + len(marker) :])
    except ValueError:
        return None


def check_empty(loader_lengths: list[int | float], stage: str) -> None:
    """Raise when every dataloader of ``stage`` is empty by length."""
    if loader_lengths and all(n == 0 for n in loader_lengths):
        raise MisconfigurationException(
            f"the {stage} dataloader has no batches (len() == 0): check the dataset is not empty "
            "and that batch_size/drop_last leave at least one batch"
        )


def results_table(results: EVALUATE_OUTPUT, stage: str) -> str:
    """Lightning's plain-text results table: one row per metric, one column per dataloader."""
    import shutil

    names = sorted({_strip_dataloader(name) for result in results for name in result})
    if not names:
        return ""
    width = shutil.get_terminal_size(fallback=(120, 30)).columns
    column = max(25, min(max(len(n) for n in names) + 2, width // 2))
    rule = "\u2500" * width
    header = f"{stage.capitalize() + ' metric':^{column}}" + "".join(
        f"{'DataLoader ' + str(index):^{column}}" for index in range(len(results))
    )
    lines = [rule, header.rstrip(), rule]
    for name in names:
        cells = []
        for index, result in enumerate(results):
            value = result.get(name, result.get(f"{name}/dataloader_idx_{index}"))
            cells.append("" if value is None else str(value))
        lines.append((f"{name:^{column}}" + "".join(f"{c:^{column}}" for c in cells)).rstrip())
    lines.append(rule)
    return "\n".join(lines)


def _strip_dataloader(name: str) -> str:
    owner = _dataloader_of(name)
    return name if owner is None else name[: name.rfind("/dataloader_idx_")]
