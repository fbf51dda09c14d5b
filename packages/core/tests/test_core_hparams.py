"""save_hyperparameters, hparams and hparams_initial on LightningModule and LightningDataModule."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fulmen_core import AttributeDict, LightningDataModule, LightningModule


class AllArgs(LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 8, name: str = "mlp") -> None:
        super().__init__()
        self.save_hyperparameters()


class NamedSubset(LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 8, name: str = "mlp") -> None:
        super().__init__()
        self.save_hyperparameters("lr", "name")


class IgnoreOne(LightningModule):
    def __init__(self, backbone: torch.nn.Module, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters(ignore="backbone")
        self.backbone = backbone


class IgnoreMany(LightningModule):
    def __init__(self, backbone: torch.nn.Module, loss: torch.nn.Module, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "loss"])


class FromDict(LightningModule):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters(config)


class Base(LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()


class Child(Base):
    def __init__(self, hidden: int = 8, lr: float = 0.5) -> None:
        super().__init__(lr=lr)


class GrandChild(Child):
    def __init__(self, dropout: float, hidden: int = 16) -> None:
        super().__init__(hidden=hidden, lr=0.25)


class WithKwargs(LightningModule):
    def __init__(self, lr: float, *extra: Any, **kwargs: Any) -> None:
        super().__init__()
        self.save_hyperparameters()


class Data(LightningDataModule):
    def __init__(self, batch_size: int = 32, data_dir: str = "data") -> None:
        super().__init__()
        self.save_hyperparameters()


class BadName(LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters("lr", "momentum")


class NotAString(LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters(42)


def test_all_init_args_are_saved() -> None:
    """With no arguments every ``__init__`` parameter (defaults and passed values) is recorded."""
    model = AllArgs(lr=0.01, hidden=4)
    assert dict(model.hparams) == {"lr": 0.01, "hidden": 4, "name": "mlp"}
    assert isinstance(model.hparams, AttributeDict)


def test_named_subset_is_saved() -> None:
    """Names passed to save_hyperparameters restrict the record to those arguments."""
    model = NamedSubset(lr=0.3, hidden=2, name="tiny")
    assert dict(model.hparams) == {"lr": 0.3, "name": "tiny"}


def test_ignore_accepts_a_single_string() -> None:
    """``ignore="backbone"`` leaves that argument out and keeps the rest."""
    model = IgnoreOne(torch.nn.Linear(2, 2), lr=0.2)
    assert dict(model.hparams) == {"lr": 0.2}


def test_ignore_accepts_a_list() -> None:
    """``ignore=[...]`` leaves every listed argument out."""
    model = IgnoreMany(torch.nn.Linear(2, 2), torch.nn.MSELoss(), lr=0.2)
    assert dict(model.hparams) == {"lr": 0.2}


def test_single_dict_argument_is_saved_as_is() -> None:
    """A single mapping argument becomes the hyperparameters themselves, not an entry named after it."""
    config = {"lr": 0.05, "layers": [4, 4]}
    model = FromDict(config)
    assert dict(model.hparams) == config
    assert "config" not in model.hparams


def test_subclass_arguments_are_recorded_when_base_saves() -> None:
    """A base ``__init__`` calling save_hyperparameters records its subclasses' arguments too, outermost winning."""
    child = Child(hidden=32)
    assert dict(child.hparams) == {"hidden": 32, "lr": 0.5}
    grandchild = GrandChild(dropout=0.3)
    assert dict(grandchild.hparams) == {"dropout": 0.3, "hidden": 16, "lr": 0.25}


def test_kwargs_are_merged_and_star_args_dropped() -> None:
    """Entries of ``**kwargs`` are saved as their own keys; unnamed ``*args`` are dropped (as in Lightning)."""
    model = WithKwargs(0.1, "positional-extra", momentum=0.9, nesterov=True)
    assert dict(model.hparams) == {"lr": 0.1, "momentum": 0.9, "nesterov": True}


def test_hparams_attribute_access() -> None:
    """Saved hyperparameters read and write as attributes as well as keys."""
    model = AllArgs(lr=0.01)
    assert model.hparams.lr == 0.01
    model.hparams.lr = 0.02
    assert model.hparams["lr"] == 0.02
    del model.hparams.name
    assert "name" not in model.hparams


def test_missing_hparam_attribute_names_the_saved_keys() -> None:
    """Reading an unsaved hyperparameter raises AttributeError that lists the names that were saved."""
    model = AllArgs()
    with pytest.raises(AttributeError, match="momentum") as info:
        _ = model.hparams.momentum
    message = str(info.value)
    for key in ("lr", "hidden", "name"):
        assert key in message


def test_hparams_initial_unaffected_by_later_edits() -> None:
    """Editing ``hparams`` after saving leaves ``hparams_initial`` at the saved values, and editing the copy changes nothing."""
    model = FromDict({"lr": 0.1, "layers": [4, 4]})
    model.hparams.lr = 99.0
    model.hparams["layers"].append(8)
    model.hparams["extra"] = True
    assert dict(model.hparams_initial) == {"lr": 0.1, "layers": [4, 4]}
    model.hparams_initial["lr"] = -1.0
    assert model.hparams_initial.lr == 0.1


def test_hparams_empty_before_saving() -> None:
    """A module that never saved hyperparameters has empty ``hparams`` and ``hparams_initial``."""
    model = LightningModule()
    assert dict(model.hparams) == {}
    assert dict(model.hparams_initial) == {}


def test_datamodule_saves_hyperparameters() -> None:
    """LightningDataModule records its ``__init__`` arguments the same way as LightningModule."""
    data = Data(batch_size=64)
    assert dict(data.hparams) == {"batch_size": 64, "data_dir": "data"}
    assert data.hparams.batch_size == 64
    assert dict(data.hparams_initial) == {"batch_size": 64, "data_dir": "data"}


def test_unknown_argument_name_raises_naming_known_args() -> None:
    """A name that is not an ``__init__`` argument raises ValueError naming it and the known arguments."""
    with pytest.raises(ValueError, match="momentum") as info:
        BadName()
    message = str(info.value)
    assert "BadName" in message
    assert "['hidden', 'lr']" in message


def test_non_string_argument_raises() -> None:
    """An argument that is neither a name nor a single mapping raises ValueError."""
    with pytest.raises(ValueError, match="42"):
        NotAString()
