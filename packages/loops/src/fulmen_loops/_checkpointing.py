"""What a checkpoint holds and how a run is restored from one.

The keys are Lightning's (``epoch``, ``global_step``, ``state_dict``, ``loops``, ``callbacks``,
``optimizer_states``, ``lr_schedulers``, ``hparams_name``/``hyper_parameters``, ...) so either
framework reads the other's files. One more key, ``"fulmen"``, records where in the epoch the save
happened and the RNG states, which lets a run resume mid-epoch with the same batches and random
draws as a run never interrupted (Lightning's files resume at epoch granularity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fulmen_core import (
    CheckpointError,
    LightningModule,
    SupportsSharding,
    collect_rng_states,
)
from fulmen_core._checkpoint import LIGHTNING_FORMAT_VERSION, plain_hyperparameters

from fulmen_loops._version import __version__

if TYPE_CHECKING:
    from fulmen_loops._runner import Runner


def _progress(count: int, *, started: int | None = None, processed: int | None = None) -> dict[str, int]:
    started = count if started is None else started
    processed = count if processed is None else processed
    return {"ready": started, "started": started, "processed": processed, "completed": count}


def _lightning_loops(runner: Runner, position: dict[str, Any]) -> dict[str, Any]:
    """Lightning's ``loops`` entry, filled from our counters, so Lightning can resume our files."""
    epoch = position["epoch"]
    phase = position["phase"]
    if phase in ("batch", "validation"):
        epochs = _progress(epoch, started=epoch + 1, processed=epoch)
        batches = position["batch_idx"] + 1
    elif phase == "epoch_end":
        epochs = _progress(epoch, started=epoch + 1, processed=epoch + 1)
        batches = position["batch_idx"] + 1
    else:
        epochs = _progress(epoch)
        batches = 0
    batch_progress = {
        "total": _progress(runner_total_batches(position)),
        "current": _progress(batches),
        "is_last_batch": phase == "epoch_end",
    }
    steps = {"ready": runner.global_step, "completed": runner.global_step}
    idle = {"state_dict": {}, "batch_progress": {"total": _progress(0), "current": _progress(0), "is_last_batch": False}}
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": position["batches_that_stepped"]},
            "epoch_loop.batch_progress": batch_progress,
            "epoch_loop.scheduler_progress": {"total": {"ready": 0, "completed": 0}, "current": {"ready": 0, "completed": 0}},
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {
                "optimizer": {
                    "step": {"total": dict(steps), "current": dict(steps)},
                    "zero_grad": {
                        "total": {**steps, "started": runner.global_step},
                        "current": {**steps, "started": runner.global_step},
                    },
                }
            },
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": {
                "total": {"ready": 0, "completed": 0},
                "current": {"ready": 0, "completed": 0},
            },
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": idle["batch_progress"],
            "epoch_progress": {"total": dict(epochs), "current": dict(epochs)},
        },
        "validate_loop": idle,
        "test_loop": idle,
        "predict_loop": idle,
    }


def runner_total_batches(position: dict[str, Any]) -> int:
    return int(position.get("total_batch_idx", 0))


def dump_checkpoint(runner: Runner, weights_only: bool) -> dict[str, Any]:
    """Build the checkpoint dictionary, calling the save hooks in Lightning's order."""
    from fulmen_loops._fit import FitLoop

    module = runner.lightning_module
    fit_loop = runner.fit_loop
    position = fit_loop.position() if isinstance(fit_loop, FitLoop) else FitLoop.idle_position(runner)
    sharding = runner.strategy if isinstance(runner.strategy, SupportsSharding) else None
    checkpoint: dict[str, Any] = {
        "epoch": runner.current_epoch,
        "global_step": runner.global_step,
        "pytorch-lightning_version": LIGHTNING_FORMAT_VERSION,
        "state_dict": module.state_dict() if sharding is None else sharding.module_state_dict(module),
        "loops": _lightning_loops(runner, position),
    }
    runner.set_hook("state_dict")
    if not weights_only:
        states: dict[str, Any] = {}
        for callback in runner.callbacks:
            state = callback.state_dict()
            if state:
                states[callback.state_key] = state
        checkpoint["callbacks"] = states
        checkpoint["optimizer_states"] = [
            optimizer.state_dict() if sharding is None else sharding.optimizer_state_dict(module, optimizer)
            for optimizer in runner.optimizers
        ]
        checkpoint["lr_schedulers"] = [config.scheduler.state_dict() for config in runner.lr_scheduler_configs]
        precision_state = runner.precision_plugin.state_dict()
        if precision_state:
            checkpoint["MixedPrecision"] = precision_state  # Lightning's key for the loss scaler
        checkpoint["fulmen"] = {
            "version": __version__,
            "position": position,
            "rng": collect_rng_states(),
        }
    dm = runner.datamodule
    if dm is not None:
        dm_state = dm.state_dict()
        if dm_state:
            checkpoint[type(dm).__qualname__] = dm_state
    if module._hparams_or_new():
        checkpoint["hparams_name"] = "kwargs"
        checkpoint["hyper_parameters"] = plain_hyperparameters(module.hparams, type(module).__qualname__)
    if dm is not None and dm._hparams_or_new():
        checkpoint["datamodule_hparams_name"] = "kwargs"
        checkpoint["datamodule_hyper_parameters"] = plain_hyperparameters(dm.hparams, type(dm).__qualname__)
    runner.set_hook("on_save_checkpoint")
    runner.callback_list.on_save_checkpoint(runner, module, checkpoint)
    module.on_save_checkpoint(checkpoint)
    return checkpoint


def restore_model(runner: Runner, checkpoint: dict[str, Any], path: str, strict: bool = True) -> None:
    """Module weights, datamodule and (when fitting) callback states, with the load hooks in
    Lightning's order."""
    module = runner.lightning_module
    runner.set_hook("on_load_checkpoint")
    module.on_load_checkpoint(checkpoint)
    load_module_state(module, checkpoint, path, strict)
    dm = runner.datamodule
    if dm is not None and type(dm).__qualname__ in checkpoint:
        dm.load_state_dict(checkpoint[type(dm).__qualname__])
    if runner.state.fn != "fit":
        return  # as in Lightning, callbacks resume their state only when training resumes
    runner.callback_list.on_load_checkpoint(runner, module, checkpoint)
    states = checkpoint.get("callbacks", {})
    for callback in runner.callbacks:
        state = states.get(callback.state_key)
        if state:
            callback.load_state_dict(state)


def load_module_state(module: LightningModule, checkpoint: dict[str, Any], path: str, strict: bool) -> None:
    """``module.load_state_dict`` with an error naming the file and the mismatching keys."""
    if "state_dict" not in checkpoint:
        raise CheckpointError(f"checkpoint {path!r} has no 'state_dict' entry; it is not a model checkpoint")
    result = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise CheckpointError(
            f"checkpoint {path!r} does not fit {type(module).__qualname__}: missing keys "
            f"{list(result.missing_keys)}, unexpected keys {list(result.unexpected_keys)}; is it a "
            "checkpoint of another model? (pass strict=False to load what matches)"
        )


def restore_training_state(runner: Runner, checkpoint: dict[str, Any], path: str) -> None:
    """Optimizers, schedulers and loop progress (after ``on_fit_start``, as in Lightning)."""
    from fulmen_loops._fit import FitLoop

    optimizer_states = checkpoint.get("optimizer_states")
    if optimizer_states is not None:
        if len(optimizer_states) != len(runner.optimizers):
            raise CheckpointError(
                f"checkpoint {path!r} holds {len(optimizer_states)} optimizer states but "
                f"configure_optimizers returned {len(runner.optimizers)} optimizers"
            )
        sharding = runner.strategy if isinstance(runner.strategy, SupportsSharding) else None
        for optimizer, state in zip(runner.optimizers, optimizer_states):
            if sharding is None:
                optimizer.load_state_dict(state)
            else:
                sharding.load_optimizer_state_dict(runner.lightning_module, optimizer, state)
    for config, state in zip(runner.lr_scheduler_configs, checkpoint.get("lr_schedulers", [])):
        config.scheduler.load_state_dict(state)
    runner.precision_plugin.load_state_dict(checkpoint.get("MixedPrecision", {}))
    runner._global_step = int(checkpoint.get("global_step", 0))
    ours = checkpoint.get("fulmen")
    fit_loop = runner.fit_loop
    if ours is not None and "position" in ours:
        position = dict(ours["position"])
        position["rng"] = ours.get("rng")
    else:
        position = _position_from_lightning(checkpoint)
    if isinstance(fit_loop, FitLoop):
        fit_loop.resume_from(position)
    else:
        runner._current_epoch = int(position["epoch"])


def _position_from_lightning(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Where a Lightning checkpoint left off, at epoch granularity (it records no RNG state)."""
    fit = checkpoint.get("loops", {}).get("fit_loop", {})
    epochs = fit.get("epoch_progress", {}).get("current", {})
    processed = int(epochs.get("processed", checkpoint.get("epoch", 0)))
    stepped = int(fit.get("epoch_loop.state_dict", {}).get("_batches_that_stepped", checkpoint.get("global_step", 0)))
    return {"phase": "idle", "epoch": processed, "batch_idx": -1, "batches_that_stepped": stepped, "total_batch_idx": 0}
