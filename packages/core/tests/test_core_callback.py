"""Callback: the no-op hooks users inherit, its state defaults, and how mypy --strict sees overrides."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from fulmen_core import Callback, LightningModule


class OnlyTrainStart(Callback):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, LightningModule]] = []

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        self.calls.append((trainer, pl_module))


class Stateful(Callback):
    def __init__(self, best: float = 0.0) -> None:
        self.best = best

    @property
    def state_key(self) -> str:
        return f"Stateful[best={self.best}]"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]


_MODULE = LightningModule()
_OPT = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
_BATCH = torch.zeros(2)
_HOOKS: list[tuple[str, tuple[Any, ...]]] = [
    ("setup", ("fit",)),
    ("teardown", ("fit",)),
    ("on_fit_start", ()),
    ("on_fit_end", ()),
    ("on_sanity_check_start", ()),
    ("on_sanity_check_end", ()),
    ("on_train_batch_start", (_BATCH, 0)),
    ("on_train_batch_end", (torch.tensor(1.0), _BATCH, 0)),
    ("on_train_epoch_start", ()),
    ("on_train_epoch_end", ()),
    ("on_validation_epoch_start", ()),
    ("on_validation_epoch_end", ()),
    ("on_test_epoch_start", ()),
    ("on_test_epoch_end", ()),
    ("on_predict_epoch_start", ()),
    ("on_predict_epoch_end", ()),
    ("on_validation_batch_start", (_BATCH, 0)),
    ("on_validation_batch_end", (None, _BATCH, 0, 1)),
    ("on_test_batch_start", (_BATCH, 0)),
    ("on_test_batch_end", (None, _BATCH, 0)),
    ("on_predict_batch_start", (_BATCH, 0)),
    ("on_predict_batch_end", (None, _BATCH, 0)),
    ("on_train_end", ()),
    ("on_validation_start", ()),
    ("on_validation_end", ()),
    ("on_test_start", ()),
    ("on_test_end", ()),
    ("on_predict_start", ()),
    ("on_predict_end", ()),
    ("on_exception", (RuntimeError("stop"),)),
    ("on_save_checkpoint", ({"epoch": 1},)),
    ("on_load_checkpoint", ({"epoch": 1},)),
    ("on_before_backward", (torch.tensor(1.0),)),
    ("on_after_backward", ()),
    ("on_before_optimizer_step", (_OPT,)),
    ("on_before_zero_grad", (_OPT,)),
]


def test_subclass_overriding_one_hook_is_instantiable() -> None:
    """A Callback subclass with its own __init__ and one overridden hook can be created and its hook runs."""
    callback = OnlyTrainStart()
    trainer = object()
    callback.on_train_start(trainer, _MODULE)
    assert callback.calls == [(trainer, _MODULE)]


@pytest.mark.parametrize(("hook", "args"), _HOOKS, ids=[name for name, _ in _HOOKS])
def test_inherited_hooks_return_none(hook: str, args: tuple[Any, ...]) -> None:
    """Every hook a subclass does not override is a no-op returning None."""
    callback = OnlyTrainStart()
    assert getattr(callback, hook)(object(), _MODULE, *args) is None
    assert callback.calls == []


def test_checkpoint_hooks_leave_the_checkpoint_alone() -> None:
    """The default on_save_checkpoint adds nothing to the checkpoint dict."""
    checkpoint: dict[str, Any] = {"epoch": 1}
    OnlyTrainStart().on_save_checkpoint(object(), _MODULE, checkpoint)
    assert checkpoint == {"epoch": 1}


def test_state_key_is_the_class_qualname() -> None:
    """``state_key`` defaults to the class's qualified name, nested classes included."""

    class Inner(Callback):
        pass

    assert OnlyTrainStart().state_key == "OnlyTrainStart"
    assert Inner().state_key == "test_state_key_is_the_class_qualname.<locals>.Inner"


def test_state_dict_defaults_to_empty() -> None:
    """The default ``state_dict`` is an empty dict (a fresh one each call) and load_state_dict accepts it."""
    callback = OnlyTrainStart()
    first = callback.state_dict()
    assert first == {}
    first["x"] = 1
    assert callback.state_dict() == {}
    callback.load_state_dict({"anything": 1})
    assert callback.calls == []


def test_state_overrides_round_trip() -> None:
    """A subclass overriding state_key, state_dict and load_state_dict gets its own versions."""
    saved = Stateful(best=0.7)
    restored = Stateful()
    restored.load_state_dict(saved.state_dict())
    assert restored.best == 0.7
    assert saved.state_key == "Stateful[best=0.7]"


# ---------------------------------------------------------------------- static typing (mypy --strict)

_GOOD = '''
"""Callbacks annotated the way Lightning's docs and user code annotate them."""
from typing import Any

import torch
from fulmen_core import Callback, LightningModule, SupportsStateDict


class MyTrainer:
    """Stands for ``fulmen.Trainer``, which lives outside fulmen-core."""


class PrintingCallback(Callback):
    def __init__(self) -> None:
        self.seen = 0

    def on_train_start(self, trainer: Any, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.seen += 1

    def on_train_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.seen += batch_idx

    def on_validation_batch_end(
        self,
        trainer: "MyTrainer",
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.seen += dataloader_idx

    def on_before_optimizer_step(
        self, trainer: Any, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}


cb: Callback = PrintingCallback()
stateful: SupportsStateDict = PrintingCallback()
callbacks: list[Callback] = [PrintingCallback(), cb]
key: str = cb.state_key
'''

_BAD = '''
"""A Callback whose on_test_batch_end lacks the ``batch`` argument."""
from typing import Any

from fulmen_core import Callback, LightningModule


class WrongCallback(Callback):
    def on_test_batch_end(
        self, trainer: Any, pl_module: LightningModule, outputs: Any, batch_idx: int
    ) -> None:
        pass
'''


def _mypy_available() -> bool:
    return importlib.util.find_spec("mypy") is not None


@pytest.fixture(scope="module")
def mypy_callback_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One mypy --strict run over a correct and a wrong callback module; output lines keyed by file."""
    if not _mypy_available():
        pytest.skip("mypy is not installed")
    folder = tmp_path_factory.mktemp("mypy-callback")
    good = folder / "good_callback.py"
    bad = folder / "bad_callback.py"
    good.write_text(textwrap.dedent(_GOOD))
    bad.write_text(textwrap.dedent(_BAD))
    cache = tmp_path_factory.getbasetemp() / "mypy-cache"  # shared with the other mypy run of this session
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), str(good), str(bad)],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
    )
    lines = result.stdout.splitlines()
    return {
        "returncode": result.returncode,
        "output": result.stdout + result.stderr,
        "good": [line for line in lines if line.startswith(str(good)) or line.startswith(good.name)],
        "bad": [line for line in lines if line.startswith(str(bad)) or line.startswith(bad.name)],
    }


def test_mypy_accepts_lightning_style_callback(mypy_callback_report: dict[str, Any]) -> None:
    """mypy --strict reports no error for a Callback subclass annotated the Lightning way (trainer Any or narrower)."""
    assert mypy_callback_report["good"] == [], mypy_callback_report["output"]


def test_mypy_rejects_wrong_override_signature(mypy_callback_report: dict[str, Any]) -> None:
    """mypy --strict reports an incompatible override for on_test_batch_end missing ``batch``."""
    bad: list[str] = mypy_callback_report["bad"]
    assert mypy_callback_report["returncode"] == 1, mypy_callback_report["output"]
    errors = [line for line in bad if ": error:" in line]
    assert errors, mypy_callback_report["output"]
    assert any("on_test_batch_end" in line and "incompatible with supertype" in line for line in errors), (
        mypy_callback_report["output"]
    )


def test_mypy_output_covers_only_expected_files(mypy_callback_report: dict[str, Any]) -> None:
    """Every error mypy reports comes from the deliberately wrong module (none from fulmen_core itself)."""
    output: str = mypy_callback_report["output"]
    error_lines = [line for line in output.splitlines() if ": error:" in line]
    assert error_lines and all(line in mypy_callback_report["bad"] for line in error_lines), output
    assert "Found" in output and "in 1 file" in output, output


def test_snippets_also_run(tmp_path: Path) -> None:
    """The correct snippet also executes, so what mypy accepts works at run time."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(_GOOD), str(tmp_path / "good_callback.py"), "exec"), namespace)
    callback = namespace["PrintingCallback"]()
    callback.on_train_start(object(), _MODULE)
    callback.on_train_batch_end(object(), _MODULE, None, None, 4)
    assert callback.state_dict() == {"seen": 5}
    assert callback.state_key == "PrintingCallback"
