"""Checkpoint files: atomic under SIGKILL, safe to load, and clear about damage."""

from __future__ import annotations

import datetime
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from fulmen_core import CheckpointError, load_checkpoint_file, save_checkpoint_file

_WRITER = textwrap.dedent(
    """
    import sys, torch
    from fulmen_core import save_checkpoint_file
    path = sys.argv[1]
    generation = 0
    while True:
        generation += 1
        # large enough that a kill often lands mid-write
        save_checkpoint_file({"generation": generation, "weights": torch.full((300_000,), float(generation))}, path)
        print(generation, flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_during_saves_never_leaves_a_partial_checkpoint(tmp_path: Path) -> None:
    """Killing a process that saves over and over, at random moments, always leaves a complete previous checkpoint."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "model.ckpt"
    rng = random.Random(0)
    last_seen = 0
    for _ in range(8):
        process = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        first = process.stdout.readline()  # at least one save completed in this process
        assert first.strip()
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        checkpoint = load_checkpoint_file(path)
        generation = checkpoint["generation"]
        assert generation >= 1
        assert torch.equal(checkpoint["weights"], torch.full((300_000,), float(generation)))
        last_seen = generation
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("writer.py", "model.ckpt")]
        for name in leftovers:  # a killed writer may leave its temporary file, never a final one
            assert name.startswith(".model.ckpt.") and name.endswith(".tmp")
    assert last_seen >= 1


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    """An exception while serialising leaves the old checkpoint untouched and no temporary file."""
    path = tmp_path / "model.ckpt"
    save_checkpoint_file({"generation": 1}, path)

    class Unpicklable:
        def __reduce__(self) -> str:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint_file({"generation": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint_file(path)["generation"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_truncated_and_foreign_files_are_named_in_the_error(tmp_path: Path) -> None:
    """A truncated checkpoint, a non-checkpoint file and a missing path each get an error naming the file."""
    path = tmp_path / "model.ckpt"
    save_checkpoint_file({"weights": torch.ones(1000)}, path)
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.ckpt.*damaged or truncated"):
        load_checkpoint_file(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        load_checkpoint_file(text)
    with pytest.raises(CheckpointError, match="missing.ckpt.*does not exist"):
        load_checkpoint_file(tmp_path / "missing.ckpt")


def test_unsafe_objects_are_refused_not_executed(tmp_path: Path) -> None:
    """A checkpoint holding an arbitrary pickled object is refused by weights_only loading, naming the fix."""
    path = tmp_path / "unsafe.ckpt"
    torch.save({"payload": datetime.date(2020, 1, 1)}, path)  # an arbitrary class: not plain data
    with pytest.raises(CheckpointError, match="not plain data"):
        load_checkpoint_file(path)
