"""Rebuilding a module from a Lightning-format checkpoint, and finding its class by name."""

from __future__ import annotations

import importlib
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from fulmen_export._verify import first_line

_M = TypeVar("_M", bound=torch.nn.Module)


def import_module_class(spec: str) -> type[torch.nn.Module]:
    """The ``torch.nn.Module`` subclass named by ``"package.module:ClassName"``.

    The part after the colon may be dotted (``"package.module:Outer.Inner"``).
    """
    module_name, colon, qualname = spec.partition(":")
    if not colon or not module_name or not qualname:
        raise ValueError(f"{spec!r} does not name a class; write it as 'package.module:ClassName'")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(
            f"cannot import {module_name!r} (from {spec!r}): {first_line(err)}; install the "
            "package that defines the class, or run from the directory that holds it"
        ) from err
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError as err:
            raise ValueError(
                f"{module_name!r} has no attribute {qualname!r} (from {spec!r}); check the "
                "class name"
            ) from err
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise TypeError(
            f"{spec!r} is {found!r}, not a torch.nn.Module subclass; name the LightningModule "
            "class the checkpoint was trained with"
        )
    return found


def load_module_from_checkpoint(
    checkpoint_path: str | os.PathLike[str], module_class: type[_M], *, strict: bool = True
) -> _M:
    """Build ``module_class(**hyper_parameters)`` and load the checkpoint's ``state_dict`` into it.

    The checkpoint is a Lightning-format dict with ``"state_dict"`` and, optionally,
    ``"hyper_parameters"`` (the constructor's keyword arguments, as ``save_hyperparameters`` records
    them). It is read with ``torch.load(..., map_location="cpu", weights_only=True)``, which refuses
    to run code stored in the file. The module is returned on the CPU, in training mode as built.
    """
    path = Path(checkpoint_path)
    name = module_class.__name__
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the path of a .ckpt file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"checkpoint {path} holds objects that torch.load(weights_only=True) refuses to load "
            f"({_refused(err)}); keep hyper_parameters to plain data (numbers, strings, lists, "
            "dicts) and exclude objects with save_hyperparameters(ignore=[...])"
        ) from err
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        keys = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ValueError(
            f"{path} is not a Lightning-format checkpoint: it has no 'state_dict' entry (found "
            f"{keys}); save one with the Trainer, or torch.save({{'state_dict': "
            "model.state_dict(), 'hyper_parameters': {...}}, path)"
        )
    hparams = checkpoint.get("hyper_parameters") or {}
    if not isinstance(hparams, Mapping):
        raise ValueError(
            f"the 'hyper_parameters' of {path} are a {type(hparams).__name__}, not a mapping of "
            f"{name}'s constructor arguments"
        )
    try:
        module = module_class(**hparams)
    except TypeError as err:
        raise TypeError(
            f"could not build {name} from the hyper_parameters in {path} "
            f"({sorted(hparams)}): {err}; the checkpoint must hold {name}'s constructor arguments "
            "(call self.save_hyperparameters() in __init__), and the class must be the one it was "
            "trained with"
        ) from err
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=strict)
    except RuntimeError as err:
        raise ValueError(
            f"the weights in {path} do not fit {name}: {err}\nName the class the checkpoint was "
            "trained with (with the same hyper_parameters)"
        ) from err
    return module


def _refused(err: pickle.UnpicklingError) -> str:
    # torch's message is a page of advice; the class it refused is the part worth repeating.
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f"an instance of {match.group(1)}" if match else first_line(err)
