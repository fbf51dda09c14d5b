"""seed_everything and isolate_rng over Python's random, NumPy and torch."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import numpy
import pytest
import torch
from fulmen_core import isolate_rng, seed_everything


@pytest.fixture(autouse=True)
def clean_seed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the seed variables, and whatever it sets is undone afterwards."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    yield


def _draws() -> tuple[list[float], float, list[float]]:
    return torch.rand(3).tolist(), random.random(), numpy.random.rand(3).tolist()


def test_returns_seed_and_sets_environment() -> None:
    """seed_everything returns the seed and writes PL_GLOBAL_SEED and PL_SEED_WORKERS."""
    assert seed_everything(123, verbose=False) == 123
    assert os.environ["PL_GLOBAL_SEED"] == "123"
    assert os.environ["PL_SEED_WORKERS"] == "0"
    seed_everything(5, workers=True, verbose=False)
    assert os.environ["PL_SEED_WORKERS"] == "1"


def test_same_seed_gives_same_draws() -> None:
    """The same seed reproduces torch.rand, random.random and numpy.random draws; another seed does not."""
    seed_everything(42, verbose=False)
    first = _draws()
    seed_everything(42, verbose=False)
    assert _draws() == first
    seed_everything(43, verbose=False)
    other = _draws()
    assert other[0] != first[0] and other[1] != first[1] and other[2] != first[2]


def test_seeds_like_the_libraries_themselves() -> None:
    """Seeding matches calling torch.manual_seed, random.seed and numpy.random.seed with the same value."""
    seed_everything(7, verbose=False)
    ours = _draws()
    torch.manual_seed(7)
    random.seed(7)
    numpy.random.seed(7)
    assert _draws() == ours


def test_none_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """seed=None uses PL_GLOBAL_SEED when it is set."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "99")
    assert seed_everything(verbose=False) == 99
    reference = _draws()
    seed_everything(99, verbose=False)
    assert _draws() == reference


def test_none_without_environment_uses_zero() -> None:
    """seed=None with no PL_GLOBAL_SEED uses 0 and records it."""
    assert seed_everything(None, verbose=False) == 0
    assert os.environ["PL_GLOBAL_SEED"] == "0"


def test_non_integer_environment_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PL_GLOBAL_SEED that is not an integer raises ValueError quoting it."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "abc")
    with pytest.raises(ValueError, match="PL_GLOBAL_SEED='abc'"):
        seed_everything(verbose=False)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_out_of_range_warns_and_uses_zero(seed: int) -> None:
    """A seed outside [0, 2**32 - 1] warns and seeds with 0 instead."""
    with pytest.warns(UserWarning, match=f"seed {seed} is outside"):
        assert seed_everything(seed, verbose=False) == 0
    assert os.environ["PL_GLOBAL_SEED"] == "0"
    after = _draws()
    seed_everything(0, verbose=False)
    assert _draws() == after


def test_verbose_prints_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """verbose=True prints "Seed set to N" (Lightning's line); verbose=False prints nothing."""
    seed_everything(11)
    assert capsys.readouterr().out == "Seed set to 11\n"
    seed_everything(11, verbose=False)
    assert capsys.readouterr().out == ""


def test_isolate_rng_restores_every_generator() -> None:
    """Draws inside isolate_rng do not change the torch, Python or NumPy draws that follow it."""
    seed_everything(3, verbose=False)
    with isolate_rng():
        inside = _draws()
        torch.randn(100)
        random.random()
        numpy.random.rand(10)
    after = _draws()
    seed_everything(3, verbose=False)
    assert _draws() == after
    assert inside == after  # inside started from the same state


def test_isolate_rng_restores_after_an_exception() -> None:
    """isolate_rng restores the generators even when its body raises."""
    seed_everything(4, verbose=False)
    with pytest.raises(RuntimeError, match="boom"), isolate_rng():
        _draws()
        raise RuntimeError("boom")
    after = _draws()
    seed_everything(4, verbose=False)
    assert _draws() == after


def test_isolate_rng_leaves_reseeding_inside_contained() -> None:
    """Reseeding inside isolate_rng does not leak out: the outer stream continues where it was."""
    seed_everything(5, verbose=False)
    _draws()
    expected_next = _draws()
    seed_everything(5, verbose=False)
    _draws()
    with isolate_rng():
        seed_everything(1000, verbose=False)
        _draws()
    assert _draws() == expected_next
