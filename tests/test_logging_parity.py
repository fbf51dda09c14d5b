"""self.log semantics: the three metric dictionaries and the validate/test results equal Lightning's.

The expected values in ``fixtures/lightning/log_basic.json`` were recorded by running this same module
under Lightning 2.6.6 (values ``1 + batch_idx + 10 * epoch`` make every aggregate checkable by hand).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

import fulmen as L
from hook_recorder import quiet_trainer

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "lightning" / "log_basic.json").read_text())
_UNSEEDED = ("t_grad",)  # depends on the weight initialisation, which the recording did not seed


class Const(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item i is ``(tensor([i]), tensor([0.]))``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([float(i)]), torch.tensor([0.0])


def short(metrics: dict[str, Any]) -> dict[str, str]:
    """Each metric as ``"<value> <dtype>"``, the recording's format."""
    out = {}
    for key, value in metrics.items():
        if key.startswith(_UNSEEDED):
            continue
        if isinstance(value, torch.Tensor):
            out[key] = f"{value.item()!r} <{str(value.dtype).replace('torch.', '')}>"
        else:
            out[key] = f"{value!r} <{type(value).__name__}>"
    return out


def snapshot(trainer: Any) -> dict[str, dict[str, str]]:
    return {
        "callback_metrics": short(trainer.callback_metrics),
        "logged_metrics": short(trainer.logged_metrics),
        "progress_bar_metrics": short(trainer.progress_bar_metrics),
    }


def expected(snap: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: {k: v for k, v in d.items() if not k.startswith(_UNSEEDED)} for name, d in snap.items()}


class Snap(L.Callback):
    def __init__(self) -> None:
        self.snaps: list[dict[str, Any]] = []

    def _take(self, trainer: Any, hook: str, **extra: Any) -> None:
        self.snaps.append({"hook": hook, **extra, "gs": trainer.global_step, "ep": trainer.current_epoch, **snapshot(trainer)})

    def on_train_batch_end(self, trainer: Any, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._take(trainer, "on_train_batch_end", batch_idx=batch_idx)

    def on_train_epoch_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_train_epoch_end")

    def on_validation_epoch_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_validation_epoch_end")

    def on_validation_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_validation_end")

    def on_validation_epoch_start(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_validation_epoch_start")

    def on_train_epoch_start(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_train_epoch_start")

    def on_train_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_train_end")

    def on_test_epoch_end(self, trainer: Any, pl_module: L.LightningModule) -> None:
        self._take(trainer, "on_test_epoch_end")


class Logging(L.LightningModule):
    """Logs every combination of on_step/on_epoch/prog_bar/logger/reduce_fx from many hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(1, 1)

    def v(self, batch_idx: int) -> torch.Tensor:
        return torch.tensor(1.0 + batch_idx + 10 * self.current_epoch)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        v = self.v(batch_idx)
        self.log("t_default", v)
        self.log("t_step_epoch", v, on_step=True, on_epoch=True)
        self.log("t_epoch_pb", v, on_step=False, on_epoch=True, prog_bar=True)
        self.log("t_step_epoch_pb", v, on_step=True, on_epoch=True, prog_bar=True)
        self.log("t_nologger", v, on_step=True, on_epoch=True, logger=False)
        self.log("t_nologger_pb", v, on_step=True, on_epoch=True, logger=False, prog_bar=True)
        self.log("t_max", v, on_step=False, on_epoch=True, reduce_fx="max")
        self.log("t_min", v, on_step=False, on_epoch=True, reduce_fx="min")
        self.log("t_sum", v, on_step=False, on_epoch=True, reduce_fx="sum")
        self.log("t_torchmean", v, on_step=False, on_epoch=True, reduce_fx=torch.mean)
        self.log("t_torchmax", v, on_step=False, on_epoch=True, reduce_fx=torch.max)
        self.log("t_int", batch_idx, on_step=True, on_epoch=True)
        self.log("t_float", float(batch_idx) + 0.5, on_step=True, on_epoch=True)
        self.log("t_bool", True, on_step=True, on_epoch=True)
        x, y = batch
        loss: torch.Tensor = ((self.l(x) - y) ** 2).mean()
        self.log("t_grad", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        v = torch.tensor(100.0 + batch_idx + 10 * self.current_epoch)
        self.log("v_default", v)
        self.log("v_step_epoch", v, on_step=True, on_epoch=True)
        self.log("v_pb", v, prog_bar=True)
        self.log("v_step_only", v, on_step=True, on_epoch=False)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        v = torch.tensor(200.0 + batch_idx)
        self.log("te_default", v)
        self.log("te_step_epoch", v, on_step=True, on_epoch=True)

    def on_train_start(self) -> None:
        self.log("h_on_train_start", 5.0)

    def on_train_epoch_start(self) -> None:
        self.log("h_on_train_epoch_start", 6.0 + self.current_epoch)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("h_on_train_batch_end", float(batch_idx))

    def on_train_epoch_end(self) -> None:
        self.log("h_on_train_epoch_end", 7.0 + self.current_epoch)

    def on_validation_epoch_end(self) -> None:
        self.log("h_on_validation_epoch_end", 8.0 + self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        self.log("h_on_validation_epoch_start", 9.0)

    def on_validation_start(self) -> None:
        self.log("h_on_validation_start", 11.0)

    def on_test_epoch_end(self) -> None:
        self.log("h_on_test_epoch_end", 12.0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Const(6), batch_size=2)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Const(4), batch_size=2)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Const(4), batch_size=2)


def _run() -> dict[str, Any]:
    callback = Snap()
    trainer = quiet_trainer(max_epochs=2, num_sanity_val_steps=1, callbacks=[callback])
    model = Logging()
    trainer.fit(model)
    result: dict[str, Any] = {"after_fit": snapshot(trainer), "fit_snaps": callback.snaps}
    callback.snaps = []
    result["validate_return"] = trainer.validate(model)
    result["after_validate"] = snapshot(trainer)
    result["validate_snaps"] = callback.snaps
    callback.snaps = []
    result["test_return"] = trainer.test(model)
    result["after_test"] = snapshot(trainer)
    result["test_snaps"] = callback.snaps
    return result


RESULT = _run()


def test_metric_dictionaries_after_fit_equal_lightnings() -> None:
    """After fit, callback_metrics, logged_metrics and progress_bar_metrics hold Lightning's keys, values and dtypes."""
    assert RESULT["after_fit"] == expected(EXPECTED["after_fit"])


def test_metric_dictionaries_during_fit_equal_lightnings() -> None:
    """At every callback hook during fit, the three dictionaries show what Lightning's show at that moment."""
    ours = RESULT["fit_snaps"]
    theirs = EXPECTED["fit_snaps"]
    assert [s["hook"] for s in ours] == [s["hook"] for s in theirs]
    for mine, lightning in zip(ours, theirs):
        for part in ("callback_metrics", "logged_metrics", "progress_bar_metrics"):
            want = {k: v for k, v in lightning[part].items() if not k.startswith(_UNSEEDED)}
            assert mine[part] == want, f"{part} at {lightning['hook']} (gs={lightning['gs']})"


def test_validate_and_test_return_equal_lightnings() -> None:
    """validate() and test() return one dict of epoch-level logged metrics as floats, as Lightning does."""
    for key in ("validate_return", "test_return"):
        want = [{k: v["value"] for k, v in d.items()} for d in EXPECTED[key]]
        assert RESULT[key] == want
        assert all(type(v) is float for d in RESULT[key] for v in d.values())


def test_metric_dictionaries_after_validate_and_test_equal_lightnings() -> None:
    """Each of validate and test starts from empty dictionaries and fills them as Lightning does."""
    assert RESULT["after_validate"] == expected(EXPECTED["after_validate"])
    assert RESULT["after_test"] == expected(EXPECTED["after_test"])
