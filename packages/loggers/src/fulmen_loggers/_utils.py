"""Helpers the loggers share: parameter shaping, directories, versions, exit flushing, extras."""

from __future__ import annotations

import atexit
import importlib.util
import inspect
import json
import os
import sys
import threading
import warnings
import weakref
from argparse import Namespace
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import Any, Protocol

from fulmen_core import MisconfigurationException
from torch import Tensor

#: What a ``log_hyperparams`` call accepts: a mapping, an ``argparse.Namespace``, or ``None``.
Params = Mapping[str, Any] | Namespace | None

LOGGER_JOIN_CHAR = "-"


_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def is_global_zero() -> bool:
    """Whether this process is rank 0, read from the launcher's environment as Lightning does.

    Only rank 0 writes logs: the writing methods of every logger here return at once on other ranks
    (``RANK``, else ``LOCAL_RANK``, ``SLURM_PROCID``, ``JSM_NAMESPACE_RANK``; none set means rank 0).
    """
    for variable in _RANK_VARIABLES:
        value = os.environ.get(variable)
        if value is not None:
            try:
                return int(value) == 0
            except ValueError:
                continue
    return True


def require_extra(module: str, extra: str, logger: str) -> None:
    """Raise ``ModuleNotFoundError`` naming the pip line when ``module`` is not installed.

    ``importlib.util.find_spec`` looks the module up without importing it, so a logger can fail at
    construction, before any training, without paying for the import.
    """
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"{logger} needs the `{module}` package, which is not installed. "
            f"Install it with: pip install fulmen-loggers[{extra}]",
            name=module,
        )


def convert_params(params: Params) -> dict[str, Any]:
    """Hyperparameters as a plain ``dict`` (a ``Namespace`` becomes its ``vars``, ``None`` empty)."""
    if params is None:
        return {}
    if isinstance(params, Namespace):
        return dict(vars(params))
    return dict(params)


def add_prefix(metrics: Mapping[str, Any], prefix: str) -> Mapping[str, Any]:
    """``{"loss": v}`` becomes ``{"<prefix>-loss": v}``; an empty prefix leaves keys alone."""
    if not prefix:
        return metrics
    return {f"{prefix}{LOGGER_JOIN_CHAR}{key}": value for key, value in metrics.items()}


def flatten_dict(params: Mapping[Any, Any], delimiter: str = "/", parent_key: str = "") -> dict[str, Any]:
    """Nested mappings, dataclasses and namespaces become ``"outer/inner"`` keys.

    A list whose items are all mappings is flattened with the item's index as a key level
    (``{"l": [{"a": 1}]}`` gives ``{"l/0/a": 1}``); any other list stays a value.
    """
    result: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{parent_key}{delimiter}{key}" if parent_key else str(key)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, MutableMapping):
            result.update(flatten_dict(value, delimiter, name))
        elif isinstance(value, list) and all(isinstance(item, MutableMapping) for item in value):
            for index, item in enumerate(value):
                result.update(flatten_dict(item, delimiter, f"{name}{delimiter}{index}"))
        else:
            result[name] = value
    return result


def sanitize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Keep ``bool``/``int``/``float``/``str``/scalar ``Tensor`` values; write anything else as ``str``.

    numpy scalars become Python numbers first; numpy is only consulted when it is already imported.
    """
    np_scalars = _numpy_scalar_types()
    result: dict[str, Any] = {}
    for key, value in params.items():
        if np_scalars and isinstance(value, np_scalars):
            scalar: Any = value  # a numpy scalar; numpy is not a dependency, so it is not typed here
            value = scalar.item()
        if type(value) not in (bool, int, float, str, Tensor):
            value = str(value)
        elif isinstance(value, Tensor) and value.ndim > 1:
            value = str(value)
        result[key] = value
    return result


def _numpy_scalar_types() -> tuple[type, ...]:
    """numpy's bool, integer and floating scalar types, or ``()`` when numpy was never imported."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return ()
    return (numpy.bool_, numpy.integer, numpy.floating)


def sanitize_callable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Classes become their name; a callable is called and its result kept, or its name if that fails."""

    def sanitize(value: Any) -> Any:
        if inspect.isclass(value):
            return value.__name__
        if callable(value):
            try:
                result = value()
            except Exception:  # any failure of a user's callable means "log its name instead"
                return getattr(value, "__name__", None)
            return value.__name__ if callable(result) else result
        return value

    return {key: sanitize(value) for key, value in params.items()}


def convert_json_serializable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Values ``json.dumps`` cannot encode are written as ``str(value)``."""

    def encodable(value: Any) -> bool:
        if value is None or isinstance(value, (bool, int, float, str, list, dict)):
            return True
        try:
            json.dumps(value)
        except (TypeError, OverflowError):
            return False
        return True

    return {key: value if encodable(value) else str(value) for key, value in params.items()}


def _plain(value: Any) -> Any:
    """Dict subclasses (``AttributeDict``) as plain dicts, so YAML has no Python type tags for them."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def save_hparams_yaml(path: str, hparams: Mapping[str, Any]) -> None:
    """Write ``hparams`` to ``path`` as YAML the way Lightning's ``hparams.yaml`` is written.

    Keys sorted, block style; an ``Enum`` is written by its name; a value YAML cannot represent is
    skipped with a warning.
    """
    import yaml  # imported here: most runs never write YAML, and importing it costs ~50 ms

    allowed: dict[str, Any] = {}
    for key, value in _plain(dict(hparams)).items():
        if isinstance(value, Enum):
            value = value.name
        try:
            yaml.dump(value)
        except (TypeError, ValueError):
            warnings.warn(
                f"Skipping hyperparameter {key!r} in {path}: a {type(value).__name__} cannot be written "
                "as YAML. Log a plain value (number, string, list, dict) instead.",
                stacklevel=3,
            )
        else:
            allowed[key] = value
    with open(path, "w", newline="") as handle:
        yaml.dump(allowed, handle)


def check_writable_dir(path: str, logger: str) -> None:
    """Fail now, with the fix, when ``path`` could not be created or written (nothing is created).

    Walks up to the nearest existing ancestor: it must be a directory this process may write into.
    """
    if "://" in path:
        raise MisconfigurationException(
            f"{logger} got save_dir={path!r}, a URL; fulmen's file loggers write to local directories "
            "only. Pass a local path (and sync it to remote storage after training)."
        )
    current = os.path.abspath(os.path.expanduser(path))
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if not os.path.isdir(current):
        raise MisconfigurationException(
            f"{logger} cannot use save_dir={path!r}: {current!r} exists and is not a directory, so the "
            "log directory cannot be created under it. Pass a save_dir in a directory you can write to."
        )
    if not os.access(current, os.W_OK | os.X_OK):
        raise MisconfigurationException(
            f"{logger} cannot write to save_dir={path!r}: the directory {current!r} is not writable by "
            "this process. Pass a save_dir you can write to, or fix that directory's permissions."
        )


def make_dirs(path: str, logger: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` whose failure names the directory and the fix."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise MisconfigurationException(
            f"{logger} could not create its log directory {path!r}: {err.strerror or err}. "
            "Pass a save_dir you can write to, or fix that directory's permissions."
        ) from err


def next_version(versions_root: str) -> int:
    """One more than the largest ``N`` of the ``version_N`` directories in ``versions_root``, else 0."""
    try:
        entries = os.listdir(versions_root)
    except OSError:
        return 0
    found = [
        int(entry.split("_")[1])
        for entry in entries
        if entry.startswith("version_")
        and entry.split("_")[1].isdigit()
        and os.path.isdir(os.path.join(versions_root, entry))
    ]
    return max(found) + 1 if found else 0


class _FlushesAtExit(Protocol):
    def _flush_at_exit(self) -> None: ...


_at_exit: weakref.WeakSet[_FlushesAtExit] = weakref.WeakSet()
_at_exit_lock = threading.Lock()
_at_exit_registered = False


def flush_at_exit(logger: _FlushesAtExit) -> None:
    """Have ``logger._flush_at_exit()`` run when the interpreter exits, if the logger still lives.

    This is what keeps the metrics of a run that crashed (an uncaught exception, ``sys.exit``) on
    disk. A process killed by a signal it does not handle, or by ``os._exit``, runs no exit hooks.
    """
    global _at_exit_registered
    with _at_exit_lock:
        _at_exit.add(logger)
        if not _at_exit_registered:
            atexit.register(_flush_all)
            _at_exit_registered = True


def _flush_all() -> None:
    for logger in list(_at_exit):
        try:
            logger._flush_at_exit()
        except Exception as err:  # one broken logger must not stop the others from flushing
            warnings.warn(f"{type(logger).__name__} could not flush at exit: {err}", stacklevel=1)


class VersionedRun:
    """The ``save_dir/name/version_N`` folder layout shared by the file-based loggers.

    Subclasses set ``_save_dir``, ``_name`` and ``_version`` (``None``: the next free number, fixed
    on first read).
    """

    _save_dir: str
    _name: str
    _version: int | str | None

    @property
    def name(self) -> str:
        """The experiment name (``""`` when the versions sit directly in ``save_dir``)."""
        return self._name

    @property
    def version(self) -> int | str:
        """The run's version: as given, or the next free ``version_N`` number, fixed on first read."""
        if self._version is None:
            self._version = next_version(self.root_dir)
        return self._version

    @property
    def save_dir(self) -> str:
        """The directory given as ``save_dir``."""
        return self._save_dir

    @property
    def root_dir(self) -> str:
        """``save_dir/name``: the parent of every version folder of this experiment."""
        return os.path.join(self.save_dir, self.name)

    @property
    def version_dir(self) -> str:
        """``save_dir/name/version_N`` (or ``save_dir/name/<version>`` for a string version)."""
        version = self.version
        return os.path.join(self.root_dir, version if isinstance(version, str) else f"version_{version}")
