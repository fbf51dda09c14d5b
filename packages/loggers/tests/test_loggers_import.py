"""The package surface: lazy backends, the public names, and conformance to fulmen_core.Logger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fulmen_core import Logger, MisconfigurationException

import fulmen_loggers
from fulmen_loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

BACKENDS = ("tensorboard", "torch.utils.tensorboard", "mlflow", "wandb", "lightning", "pytorch_lightning")


def test_import_and_construction_load_no_backend(tmp_path: Path) -> None:
    """Importing fulmen_loggers and constructing every logger imports none of tensorboard, mlflow, wandb."""
    script = f"""
import importlib.util, json, sys
import fulmen_loggers
loaded = [name for name in {BACKENDS!r} if name in sys.modules]
made = [fulmen_loggers.CSVLogger({str(tmp_path)!r})]
if importlib.util.find_spec("tensorboard"):
    made.append(fulmen_loggers.TensorBoardLogger({str(tmp_path)!r}))
if importlib.util.find_spec("mlflow"):
    made.append(fulmen_loggers.MLFlowLogger(tracking_uri="sqlite:///{tmp_path}/m.db"))
if importlib.util.find_spec("wandb"):
    made.append(fulmen_loggers.WandbLogger(save_dir={str(tmp_path)!r}))
print(json.dumps([loaded, [name for name in {BACKENDS!r} if name in sys.modules], len(made)]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    after_import, after_construction, made = json.loads(result.stdout)
    assert after_import == [] and after_construction == [] and made >= 1


def test_public_names_are_exported() -> None:
    """__all__ lists exactly the loggers, the CSV writer and the version, and each name resolves."""
    assert sorted(fulmen_loggers.__all__) == [
        "CSVLogger",
        "ExperimentWriter",
        "MLFlowLogger",
        "MLflowLogger",
        "TensorBoardLogger",
        "WandbLogger",
        "__version__",
    ]
    assert all(hasattr(fulmen_loggers, name) for name in fulmen_loggers.__all__)
    assert fulmen_loggers.__version__ == "0.1.0"


def test_every_logger_class_satisfies_the_logger_protocol() -> None:
    """Each class is assignable to fulmen_core.Logger (mypy proves it) and has every Protocol member."""
    classes: list[type[Logger]] = [CSVLogger, TensorBoardLogger, MLFlowLogger, WandbLogger]
    members = ("name", "version", "save_dir", "log_dir", "log_metrics", "log_hyperparams", "save", "finalize")
    for cls in classes:
        assert all(hasattr(cls, member) for member in members), cls


@pytest.mark.parametrize(
    ("module", "make"),
    [
        ("tensorboard", lambda path: TensorBoardLogger(path)),
        ("mlflow", lambda path: MLFlowLogger(save_dir=path)),
        ("wandb", lambda path: WandbLogger(save_dir=path)),
    ],
)
def test_missing_backend_names_the_pip_line(
    module: str, make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its backend installed, a logger fails at construction naming `pip install fulmen-loggers[extra]`."""
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to the import system
    with pytest.raises(ModuleNotFoundError, match=rf"pip install fulmen-loggers\[{module}\]"):
        make(str(tmp_path))


@pytest.mark.parametrize(
    "make",
    [
        lambda path: CSVLogger(path),
        lambda path: TensorBoardLogger(path),
        lambda path: MLFlowLogger(save_dir=path),
        lambda path: WandbLogger(save_dir=path),
    ],
    ids=["csv", "tensorboard", "mlflow", "wandb"],
)
def test_unwritable_save_dir_is_refused_at_construction(make: Any, tmp_path: Path) -> None:
    """Every logger with a local save_dir under a regular file fails at construction, naming the path and fix."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    try:
        make(str(blocker / "logs"))
    except ModuleNotFoundError as err:  # the backend is not installed: that check comes first
        assert err.name in {"tensorboard", "mlflow", "wandb"}
        pytest.skip(f"{err.name} is not installed")
    except MisconfigurationException as err:
        assert str(blocker) in str(err) and "save_dir" in str(err) and "not a directory" in str(err)
    else:
        pytest.fail("an unwritable save_dir was accepted")
