"""DDP on two CPU processes (gloo): launched by the Trainer itself and by torchrun, both ranks end with
identical weights equal to one process training on the global batch, sync_dist logs the global mean,
and a failing rank stops the run instead of hanging."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).parent / "ddp_script.py"


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("single")
    result = _run([sys.executable, str(SCRIPT), str(directory), "single"])
    assert result.returncode == 0, result.stderr[-12000:]
    loaded: dict[str, Any] = torch.load(directory / "single-rank0.pt", weights_only=True)
    return loaded


def _check_ranks(directory: Path, mode: str, single: dict[str, Any]) -> None:
    ranks = [torch.load(directory / f"{mode}-rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank, result in enumerate(ranks):
        assert (result["rank"], result["world_size"], result["steps"]) == (rank, 2, single["steps"])
        for ours, reference in zip(result["weights"], single["weights"]):
            torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
        torch.testing.assert_close(result["loss"], single["loss"], rtol=0, atol=1e-5)  # sync_dist: the global mean
        assert result["gathered"].flatten().tolist() == [0.0, 1.0]
    for a, b in zip(ranks[0]["weights"], ranks[1]["weights"]):
        assert torch.equal(a, b)


def test_trainer_launched_ddp_equals_one_process_on_the_global_batch(tmp_path: Path, single: dict[str, Any]) -> None:
    """devices=2, strategy='ddp': the Trainer starts the second process; both ranks match the single-process run."""
    result = _run([sys.executable, str(SCRIPT), str(tmp_path), "launch"])
    assert result.returncode == 0, result.stderr[-12000:]
    _check_ranks(tmp_path, "launch", single)


def test_torchrun_launched_ddp_equals_one_process_on_the_global_batch(tmp_path: Path, single: dict[str, Any]) -> None:
    """Under torchrun --nproc_per_node=2 the environment is detected; both ranks match the single-process run."""
    # --standalone: torchrun picks and binds its own free port (no window for another process to take it).
    result = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                   str(SCRIPT), str(tmp_path), "torchrun"])
    assert result.returncode == 0, result.stderr[-12000:]
    _check_ranks(tmp_path, "torchrun", single)


def test_two_nodes_of_one_process_each_equal_one_process_on_the_global_batch(tmp_path: Path, single: dict[str, Any]) -> None:
    """num_nodes=2 with one device each, as two torchrun launches (--nnodes=2, node_rank 0 and 1) on
    this machine: node and local ranks come from the environment, and both match the single run."""
    port = _free_port()
    launches = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
             "--master_addr=127.0.0.1", f"--master_port={port}", str(SCRIPT), str(tmp_path), "nodes"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for node in (0, 1)
    ]
    for launch in launches:
        _, stderr = launch.communicate(timeout=300)
        assert launch.returncode == 0, stderr[-12000:]
    _check_ranks(tmp_path, "nodes", single)
    for rank in (0, 1):
        result = torch.load(tmp_path / f"nodes-rank{rank}.pt", weights_only=True)
        assert (result["node_rank"], result["local_rank"]) == (rank, 0)


def test_a_failing_rank_stops_the_run_with_an_error(tmp_path: Path) -> None:
    """When rank 1 raises mid-training, the run ends with an error (non-zero exit) instead of hanging."""
    result = _run([sys.executable, str(SCRIPT), str(tmp_path), "launch"], FAIL="1")
    assert result.returncode != 0
    assert "rank 1 fails on purpose" in result.stderr
    assert not (tmp_path / "launch-rank0.pt").exists()
