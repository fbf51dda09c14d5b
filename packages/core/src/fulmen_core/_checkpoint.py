"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint appears under its final name only once it is complete (temporary file in the same
directory, flushed and fsynced, then ``os.replace``), so a crash while saving leaves the previous
file intact. Reading never unpickles arbitrary objects; a damaged file is reported by name.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fulmen_core._hparams import AttributeDict

#: The checkpoint format version written under Lightning's key, so Lightning reads our files as its own.
LIGHTNING_FORMAT_VERSION = "2.6.0"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, damaged, or holds something that cannot be loaded safely."""


def _allow_lightning_types() -> None:
    # Lightning stores hyperparameters as its own AttributeDict; map it to ours so that its
    # checkpoints load with weights_only=True without importing Lightning.
    torch.serialization.add_safe_globals(
        [
            (AttributeDict, "lightning.fabric.utilities.data.AttributeDict"),
            (AttributeDict, "pytorch_lightning.utilities.parsing.AttributeDict"),
            AttributeDict,
        ]
    )


def save_checkpoint_file(checkpoint: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``checkpoint`` to ``path`` atomically: the file is either the old one or the new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(dict(checkpoint), stream)
            stream.flush()
            os.fsync(stream.fileno())
        # The data is on disk before the rename: a crash (even of the machine) leaves the old file
        # or the complete new one under the name. The directory itself is not fsynced: after a
        # power loss the rename may be lost, which leaves the previous good file, and syncing the
        # directory would cost every save a second disk flush.
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def load_checkpoint_file(
    path: str | os.PathLike[str], map_location: Any = None
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; errors name the file and what is wrong."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(
            f"checkpoint {str(source)!r} does not exist; check the path (or pass ckpt_path='last' / "
            "'best' to use the checkpoint callback's files)"
        )
    _allow_lightning_types()
    try:
        loaded = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {str(source)!r} holds objects that are not plain data and cannot be loaded "
            f"safely ({err}); re-save it with hyperparameters that are numbers, strings, lists or "
            "dicts (use save_hyperparameters(ignore=[...]) for modules and datasets)"
        ) from err
    except Exception as err:  # a truncated archive fails in many ways (EOF, KeyError, zip errors)
        raise CheckpointError(
            f"checkpoint {str(source)!r} is damaged or truncated and cannot be read ({err}); use "
            "an earlier checkpoint"
        ) from err
    if not isinstance(loaded, dict):
        raise CheckpointError(
            f"{str(source)!r} holds a {type(loaded).__qualname__}, not a checkpoint dictionary"
        )
    return loaded


_PLAIN = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Tensor)


def plain_data(value: Any, where: str) -> bool:
    """Whether ``value`` loads under ``weights_only=True`` (numbers, strings, tensors, and lists,
    tuples and dicts of those); warns naming ``where`` when it does not."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain_data(item, f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(value, Mapping):
        return all(
            isinstance(key, (str, int)) and plain_data(item, f"{where}[{key!r}]")
            for key, item in value.items()
        )
    warnings.warn(
        f"{where} is a {type(value).__qualname__}, which a checkpoint cannot store as plain data "
        "(it would not load with weights_only=True); it is left out. Pass "
        "save_hyperparameters(ignore=[...]) with its name to silence this",
        UserWarning,
        stacklevel=3,
    )
    return False


def plain_hyperparameters(hparams: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The entries of ``hparams`` that are plain data, as a plain ``dict``."""
    return {
        key: value for key, value in hparams.items() if plain_data(value, f"{owner} hyperparameter {key!r}")
    }


def constructor_arguments(
    checkpoint: Mapping[str, Any],
    key: str,
    name_key: str,
    hparams_file: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """The keyword arguments that rebuild a module or datamodule saved in ``checkpoint``."""
    saved: dict[str, Any] = dict(checkpoint.get(key) or {})
    if hparams_file is not None:
        try:
            import yaml
        except ImportError as err:
            raise ModuleNotFoundError(
                "hparams_file= needs PyYAML: pip install pyyaml", name="yaml"
            ) from err
        with open(hparams_file, encoding="utf-8") as stream:
            from_file = yaml.safe_load(stream) or {}
        if not isinstance(from_file, dict):
            raise CheckpointError(f"hparams file {os.fspath(hparams_file)!r} does not hold a mapping")
        saved.update(from_file)
    saved.update(overrides)
    name = checkpoint.get(name_key)
    if name and name != "kwargs" and key in checkpoint:
        # saved from a single dict/Namespace argument: pass it back under its parameter name
        return {name: saved}
    return saved
