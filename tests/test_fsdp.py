"""FSDP (torch's fully_shard) on two CPU processes (gloo): the Trainer's own launch and torchrun both end
with the weights of one process training on the global batch; full checkpoints are ordinary files that a
one-process run resumes; sharded checkpoints are directories that an FSDP run resumes exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).parent / "fsdp_script.py"


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    # --standalone: torchrun picks and binds its own free port.
    return _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                 str(SCRIPT), *args])


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = torch.load(path, weights_only=True)
    return loaded


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("single")
    result = _run([sys.executable, str(SCRIPT), str(directory), "single"])
    assert result.returncode == 0, result.stderr[-12000:]
    return directory, _load(directory / "single-full-rank0.pt")


def _check_ranks(directory: Path, stem: str, reference: dict[str, Any]) -> None:
    ranks = [_load(directory / f"{stem}-rank{r}.pt") for r in (0, 1)]
    for rank, result in enumerate(ranks):
        assert (result["rank"], result["world_size"], result["strategy"]) == (rank, 2, "FSDPStrategy")
        assert result["steps"] == reference["steps"]
        for ours, expected in zip(result["weights"], reference["weights"]):
            torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
        for key in ("loss", "val_loss"):  # sync_dist: the global means
            torch.testing.assert_close(result[key], reference[key], rtol=0, atol=1e-5)


def test_trainer_launched_fsdp_matches_one_process_and_writes_portable_checkpoints(
    tmp_path: Path, single: tuple[Path, dict[str, Any]]
) -> None:
    """strategy='fsdp', devices=2: both ranks end as the one-process run, and each full checkpoint has the
    same keys and values as the one-process run's, so a run without FSDP resumes it to the same end."""
    single_dir, reference = single
    result = _run([sys.executable, str(SCRIPT), str(tmp_path), "launch"])
    assert result.returncode == 0, result.stderr[-12000:]
    _check_ranks(tmp_path, "launch-full", reference)

    ours = _load(tmp_path / "launch-ckpt" / "epoch=0-step=4.ckpt")
    theirs = _load(single_dir / "single-ckpt" / "epoch=0-step=4.ckpt")
    assert ours.keys() == theirs.keys()
    assert ours["state_dict"].keys() == theirs["state_dict"].keys()
    for key, value in theirs["state_dict"].items():
        torch.testing.assert_close(ours["state_dict"][key], value, rtol=0, atol=1e-6)
    assert ours["optimizer_states"][0]["param_groups"] == theirs["optimizer_states"][0]["param_groups"]
    for index, state in theirs["optimizer_states"][0]["state"].items():
        torch.testing.assert_close(ours["optimizer_states"][0]["state"][index]["exp_avg"], state["exp_avg"], rtol=0, atol=1e-6)

    (tmp_path / "resumed").mkdir()
    resumed = _run([sys.executable, str(SCRIPT), str(tmp_path / "resumed"), "single", "full",
                    str(tmp_path / "launch-ckpt" / "epoch=0-step=4.ckpt")])
    assert resumed.returncode == 0, resumed.stderr[-12000:]
    # It began at epoch 1 (no epoch-0 checkpoint of its own) and, with Adam's moments restored, ends equal.
    assert sorted(p.name for p in (tmp_path / "resumed" / "single-ckpt").iterdir()) == ["epoch=1-step=8.ckpt", "epoch=2-step=12.ckpt"]
    after = _load(tmp_path / "resumed" / "single-full-rank0.pt")
    for ours_weight, expected in zip(after["weights"], reference["weights"]):
        torch.testing.assert_close(ours_weight, expected, rtol=0, atol=1e-5)


def test_torchrun_fsdp_sharded_checkpoints_resume_exactly(tmp_path: Path, single: tuple[Path, dict[str, Any]]) -> None:
    """Under torchrun with state_dict_type='sharded', checkpoints are directories of shards plus a
    weights_only-loadable meta.pt, and resuming from the first epoch's ends with the same weights."""
    _, reference = single
    first = tmp_path / "first"
    first.mkdir()
    result = _torchrun(str(first), "torchrun", "sharded")
    assert result.returncode == 0, result.stderr[-12000:]
    _check_ranks(first, "torchrun-sharded", reference)
    checkpoint = first / "torchrun-ckpt" / "epoch=0-step=4.ckpt"
    assert checkpoint.is_dir() and sorted(p.name for p in checkpoint.iterdir() if p.suffix == ".distcp")
    meta = _load(checkpoint / "meta.pt")
    assert meta["epoch"] == 0 and meta["global_step"] == 4 and "state_dict" not in meta
    assert not list((first / "torchrun-ckpt").glob("*.tmp"))  # no staging directory left behind

    second = tmp_path / "second"
    second.mkdir()
    result = _torchrun(str(second), "torchrun", "sharded", str(checkpoint))
    assert result.returncode == 0, result.stderr[-12000:]
    assert sorted(p.name for p in (second / "torchrun-ckpt").iterdir()) == ["epoch=1-step=8.ckpt", "epoch=2-step=12.ckpt"]
    _check_ranks(second, "torchrun-sharded", reference)
