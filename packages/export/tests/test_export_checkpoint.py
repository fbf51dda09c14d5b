"""Tests of rebuilding a module from a Lightning-format checkpoint and finding classes by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fulmen_export import import_module_class, load_module_from_checkpoint


class Net(torch.nn.Module):
    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x)
        return out


class Opaque:
    """Not plain data: torch.load(weights_only=True) refuses to unpickle it."""


def _save(path: Path, content: object) -> Path:
    torch.save(content, path)
    return path


def test_load_module_from_checkpoint_builds_with_hyperparameters_and_loads_weights(
    tmp_path: Path,
) -> None:
    """The class is built from hyper_parameters and gets exactly the checkpoint's weights."""
    trained = Net(hidden=7)
    ckpt = _save(
        tmp_path / "a.ckpt",
        {"state_dict": trained.state_dict(), "hyper_parameters": {"hidden": 7}, "epoch": 3},
    )
    loaded = load_module_from_checkpoint(ckpt, Net)
    assert isinstance(loaded, Net) and loaded.layer.out_features == 7
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_load_module_from_checkpoint_without_hyperparameters_uses_defaults(tmp_path: Path) -> None:
    """A checkpoint with no hyper_parameters builds the class with its default arguments."""
    ckpt = _save(tmp_path / "b.ckpt", {"state_dict": Net().state_dict()})
    assert load_module_from_checkpoint(ckpt, Net).layer.out_features == 4


def test_load_module_from_checkpoint_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    """A missing file, no state_dict, unsafe objects, wrong arguments or weights are explained."""
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt does not exist"):
        load_module_from_checkpoint(tmp_path / "missing.ckpt", Net)
    bare = _save(tmp_path / "bare.ckpt", Net().state_dict())
    with pytest.raises(
        ValueError, match=r"bare.ckpt is not a Lightning-format checkpoint.*'state_dict'"
    ):
        load_module_from_checkpoint(bare, Net)
    unsafe = _save(
        tmp_path / "unsafe.ckpt", {"state_dict": {}, "hyper_parameters": {"x": Opaque()}}
    )
    with pytest.raises(
        ValueError,
        match=r"weights_only=True\) refuses to load \(an instance of .*Opaque\).*ignore=\[",
    ):
        load_module_from_checkpoint(unsafe, Net)
    wrong_args = _save(tmp_path / "args.ckpt", {"state_dict": {}, "hyper_parameters": {"width": 3}})
    with pytest.raises(
        TypeError, match=r"could not build Net from the hyper_parameters .*\['width'\]"
    ):
        load_module_from_checkpoint(wrong_args, Net)
    wrong_weights = _save(
        tmp_path / "w.ckpt", {"state_dict": Net(hidden=2).state_dict(), "hyper_parameters": {}}
    )
    with pytest.raises(ValueError, match=r"the weights in .*w\.ckpt do not fit Net"):
        load_module_from_checkpoint(wrong_weights, Net)


def test_import_module_class_finds_a_module_class_by_spec() -> None:
    """'package.module:ClassName' resolves to the class, including dotted names after the colon."""
    assert import_module_class("torch.nn:Linear") is torch.nn.Linear
    assert import_module_class("torch:nn.Linear") is torch.nn.Linear


def test_import_module_class_errors_say_what_is_wrong() -> None:
    """A malformed spec, a missing module or attribute, or a non-module class gets a message."""
    with pytest.raises(ValueError, match=r"write it as 'package\.module:ClassName'"):
        import_module_class("torch.nn.Linear")
    with pytest.raises(ValueError, match="cannot import 'no_such_package_fulmen'"):
        import_module_class("no_such_package_fulmen:Model")
    with pytest.raises(ValueError, match=r"'torch\.nn' has no attribute 'Nope'"):
        import_module_class("torch.nn:Nope")
    with pytest.raises(TypeError, match=r"not a torch\.nn\.Module subclass"):
        import_module_class("torch:Tensor")
