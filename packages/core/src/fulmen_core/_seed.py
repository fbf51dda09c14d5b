"""Seeding every random number generator a training run draws from."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import torch

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int | None = None, workers: bool = False, verbose: bool = True) -> int:
    """Seed Python's ``random``, NumPy (when installed) and torch (CPU and every device) with ``seed``.

    With ``seed=None`` the ``PL_GLOBAL_SEED`` environment variable is used, else 0. The seed is also
    written to ``PL_GLOBAL_SEED`` (and ``workers`` to ``PL_SEED_WORKERS``) so that processes started
    later, such as distributed ranks, seed the same way. Returns the seed used.
    """
    if seed is None:
        from_env = os.environ.get("PL_GLOBAL_SEED")
        if from_env is None:
            seed = 0
        else:
            try:
                seed = int(from_env)
            except ValueError as err:
                raise ValueError(
                    f"PL_GLOBAL_SEED={from_env!r} is not an integer; unset it or give a number"
                ) from err
    if not isinstance(seed, int):
        seed = int(seed)
    if not 0 <= seed <= _MAX_SEED:
        warnings.warn(f"seed {seed} is outside [0, {_MAX_SEED}]; using 0 instead", stacklevel=2)
        seed = 0
    if verbose:
        print(f"Seed set to {seed}")
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = str(int(workers))
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


@contextlib.contextmanager
def isolate_rng(include_cuda: bool = True) -> Iterator[None]:
    """Restore the global RNG states (Python, NumPy when loaded, torch, CUDA when initialised) on exit.

    Work done inside (a sanity check, a learning-rate search) then leaves the random stream of the
    run exactly as it was.
    """
    python_state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    torch_state = torch.get_rng_state()
    cuda_states = (
        torch.cuda.get_rng_state_all()
        if include_cuda and torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # unannotated in torch
        else None
    )
    try:
        yield
    finally:
        random.setstate(python_state)
        if numpy is not None and numpy_state is not None:
            numpy.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def collect_rng_states() -> dict[str, Any]:
    """The global RNG states (torch CPU, CUDA when initialised, Python, NumPy when loaded) as plain
    data that a checkpoint can store and ``torch.load(weights_only=True)`` can read."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        kind, keys, position, has_gauss, cached = numpy.random.get_state()
        states["numpy"] = (str(kind), torch.from_numpy(keys.astype("int64")), int(position), int(has_gauss), float(cached))
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]  # unannotated in torch
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`collect_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    python = states.get("python")
    if python is not None:
        version, internal, gauss = python
        random.setstate((version, tuple(internal), gauss))
    saved_numpy = states.get("numpy")
    if saved_numpy is not None:
        import numpy  # it was loaded when the state was collected

        kind, keys, position, has_gauss, cached = saved_numpy
        numpy.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
