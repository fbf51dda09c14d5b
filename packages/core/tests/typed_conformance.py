"""Static conformance to fulmen_core's Protocols, proved by ``mypy --strict`` (run by test_core_protocols.py).

Not collected by pytest (no ``test_`` prefix). Each Protocol gets a plain class written the way a third
party would write one, without subclassing anything, and an annotated assignment that mypy must accept.
test_core_protocols.py also executes this module, so what type-checks here works at run time too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from fulmen_core import (
    STEP_OUTPUT,
    Accelerator,
    Callback,
    Exporter,
    ExportResult,
    LightningDataModule,
    LightningModule,
    Logger,
    Loop,
    Module,
    ModuleHost,
    OptimizerLRScheduler,
    Registry,
    SupportsStateDict,
)

# ---------------------------------------------------------------------- Accelerator


class MyAccel:
    """A custom accelerator in a few lines: plain attributes stand for the read-only properties."""

    name = "mine"
    autocast_device_type = "cpu"
    distributed_backend = "gloo"
    supported_precisions = frozenset({"32-true", "bf16-mixed"})

    def __init__(self) -> None:
        self.current: torch.device | None = None

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def get_device(self, index: int) -> torch.device:
        return torch.device("cpu", index)

    def setup_device(self, device: torch.device) -> None:
        self.current = device

    def teardown(self) -> None:
        self.current = None


acc: Accelerator = MyAccel()


# ---------------------------------------------------------------------- Logger


class MemoryLogger:
    """A logger that keeps everything in memory, with properties as the Protocol declares them."""

    def __init__(self) -> None:
        self.metrics: list[tuple[dict[str, float], int | None]] = []
        self.params: dict[str, Any] = {}
        self.status: str | None = None

    @property
    def name(self) -> str | None:
        return "memory"

    @property
    def version(self) -> int | str | None:
        return 0

    @property
    def save_dir(self) -> str | None:
        return None

    @property
    def log_dir(self) -> str | None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.metrics.append((dict(metrics), step))

    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def save(self) -> None:
        pass

    def finalize(self, status: str) -> None:
        self.status = status


logger: Logger = MemoryLogger()


# ---------------------------------------------------------------------- Exporter


class StateDictExporter:
    """An exporter that writes the state dict and reports the eager output shape."""

    def export(
        self, module: torch.nn.Module, path: str | os.PathLike[str], input_sample: Any
    ) -> ExportResult:
        target = Path(path)
        torch.save(module.state_dict(), target)
        with torch.no_grad():
            output: torch.Tensor = module(input_sample)
        return ExportResult(
            path=target,
            format="state_dict",
            max_abs_error=0.0,
            checked_batch_sizes=(int(input_sample.shape[0]),),
            output_shapes=(tuple(output.shape),),
        )


exporter: Exporter = StateDictExporter()


# ---------------------------------------------------------------------- Loop and SupportsStateDict


class CountingLoop:
    """A loop whose ``run`` returns how many steps it took; it can also save its progress."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.done = 0

    def run(self) -> int:
        while self.done < self.steps:
            self.done += 1
        return self.done

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done = int(state_dict["done"])


loop: Loop[int] = CountingLoop(3)
loop_state: SupportsStateDict = CountingLoop(3)


# ---------------------------------------------------------------------- Module


class Regressor(LightningModule):
    """A LightningModule with the step signature Lightning users write."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.layer(x)
        return output

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> STEP_OUTPUT:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class PlainModule:
    """A Module that is no torch.nn.Module at all: only the two members the Protocol asks for."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return torch.zeros(())

    def configure_optimizers(self) -> None:
        return None


module: Module = Regressor()
plain_module: Module = PlainModule()


# ---------------------------------------------------------------------- Callback


class MyCallback(Callback):
    """A Lightning-style callback: subclasses Callback, overrides one hook, annotates the Lightning way."""

    def __init__(self) -> None:
        self.started = 0

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.started += 1


cb: Callback = MyCallback()
callback_state: SupportsStateDict = MyCallback()
datamodule_state: SupportsStateDict = LightningDataModule()


# ---------------------------------------------------------------------- ModuleHost


class RecordingHost:
    """What a loop lends a running module: here it only records ``self.log`` calls."""

    def __init__(self) -> None:
        self.logged: dict[str, Any] = {}

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
        self.logged[name] = value

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        loss.backward(*args, **kwargs)  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated

    def optimizer_step(
        self, optimizer: torch.optim.Optimizer, closure: Callable[[], Any] | None, **kwargs: Any
    ) -> Any:
        result = closure() if closure is not None else None
        optimizer.step()
        return result


host: ModuleHost = RecordingHost()


# ---------------------------------------------------------------------- Registry


accelerators: Registry[Accelerator] = Registry("accelerator")
accelerators.register("mine", MyAccel)
created: Accelerator = accelerators.create("mine")
