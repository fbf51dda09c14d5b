"""``DDPStrategy``: one process per device, gradients averaged by DistributedDataParallel.

Processes come from torchrun (or TorchElastic, or SLURM with MASTER_ADDR/MASTER_PORT set), detected
from the environment, or from the strategy itself: for ``devices=N`` without such an environment the
first process starts N-1 copies of the running script, as Lightning does. If a process dies, the
others stop with an error instead of waiting forever in a collective.
"""

from __future__ import annotations

import atexit
import datetime
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from fulmen_core import Accelerator, MisconfigurationException

_T = TypeVar("_T")
_REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment_ranks() -> tuple[int, int, int, int] | None:
    """(global rank, local rank, world size, node rank) from torchrun/TorchElastic or SLURM."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        rank = int(env["RANK"])
        return rank, int(env.get("LOCAL_RANK", rank)), int(env["WORLD_SIZE"]), int(env.get("GROUP_RANK", env.get("NODE_RANK", 0)))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1 and "MASTER_ADDR" in env:
        return int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)), int(env["SLURM_NTASKS"]), int(env.get("SLURM_NODEID", 0))
    return None


def _exit_with_parent(parent: int) -> None:
    # A process started by DDPStrategy ends when the process that started it is gone.
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


class DDPStrategy:
    """Distributed data parallel training on ``torch.distributed`` (gloo on CPU, nccl on CUDA: the
    accelerator says which). Satisfies fulmen-core's ``Strategy`` Protocol."""

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        num_processes: int | None = None,
        num_nodes: int = 1,
        find_unused_parameters: bool = False,
        timeout: datetime.timedelta = datetime.timedelta(minutes=30),
    ) -> None:
        self._accelerator = accelerator
        self.find_unused_parameters = find_unused_parameters
        self.timeout = timeout
        self._children: list[subprocess.Popen[bytes]] = []
        self.num_processes = 1
        self.num_nodes = num_nodes
        self._global_rank, self._local_rank, self._node_rank, self._world_size = 0, 0, 0, 1
        if num_processes is not None:
            self.connect(accelerator, num_processes, num_nodes)

    def connect(self, accelerator: Accelerator | None, num_processes: int, num_nodes: int) -> None:
        """Give the strategy its accelerator and process counts. The Trainer calls this for a strategy
        built without them (``Trainer(strategy=DDPStrategy(find_unused_parameters=True), devices=2)``)."""
        if num_processes < 1 or num_nodes < 1:
            raise MisconfigurationException(
                f"{type(self).__name__} needs at least one process per node and one node, got "
                f"{num_processes} x {num_nodes}"
            )
        if accelerator is not None:
            self._accelerator = accelerator
        self.num_processes = num_processes
        self.num_nodes = num_nodes
        found = _environment_ranks()
        if found is not None:
            self._global_rank, self._local_rank, self._world_size, self._node_rank = found
        else:
            self._global_rank, self._local_rank, self._node_rank = 0, 0, 0
            self._world_size = num_processes * num_nodes

    @property
    def connected(self) -> bool:
        """Whether the strategy knows its accelerator (given here or by the Trainer)."""
        return self._accelerator is not None

    @property
    def accelerator(self) -> Accelerator:
        if self._accelerator is None:
            raise MisconfigurationException(
                f"{type(self).__name__} was built without an accelerator; pass it to "
                f"Trainer(strategy=...), which supplies one, or build it with accelerator=..."
            )
        return self._accelerator

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def global_rank(self) -> int:
        return self._global_rank

    @property
    def local_rank(self) -> int:
        return self._local_rank

    @property
    def node_rank(self) -> int:
        return self._node_rank

    # ------------------------------------------------------------------ processes

    def setup_environment(self) -> None:
        """Start the other local processes if nobody else did, then join the process group."""
        if dist.is_available() and dist.is_initialized():
            return
        if _environment_ranks() is None:
            if self.num_nodes > 1:
                raise MisconfigurationException(
                    f"num_nodes={self.num_nodes} needs a launcher that starts the processes on every node "
                    "(torchrun, SLURM); fulmen only starts processes on this machine"
                )
            self._launch_local_processes()
        parent = os.environ.get("FULMEN_PARENT_PID")
        if parent is not None and self._global_rank != 0:
            threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group(
            backend=self.accelerator.distributed_backend,
            rank=self._global_rank,
            world_size=self._world_size,
            timeout=self.timeout,
        )
        atexit.register(self._shutdown)

    def _launch_local_processes(self) -> None:
        port = str(_free_port())
        base = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": str(self._world_size),
            "NODE_RANK": "0",
            "FULMEN_PARENT_PID": str(os.getpid()),
        }
        command = [sys.executable, *sys.argv] if sys.argv and sys.argv[0] not in ("", "-c") else None
        if command is None:
            raise MisconfigurationException(
                "strategy='ddp' with several devices re-runs the script once per extra process, but this "
                "code does not come from a script file (python -c or an interactive session); put it in a "
                "file, or launch with torchrun"
            )
        for rank in range(1, self._world_size):
            env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            self._children.append(subprocess.Popen(command, env=env))
        os.environ.update({k: base[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK")})
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0"})
        threading.Thread(target=self._watch_children, daemon=True).start()

    def _watch_children(self) -> None:
        # A child that fails would leave this process waiting in a collective: stop it with an error.
        while True:
            for child in self._children:
                code = child.poll()
                if code not in (None, 0):
                    sys.stderr.write(
                        f"fulmen: DDP process {child.args!r} (pid {child.pid}) exited with status {code}; "
                        "stopping the run\n"
                    )
                    sys.stderr.flush()
                    for other in self._children:
                        if other.poll() is None:
                            other.kill()
                    os._exit(1)
            if all(child.poll() is not None for child in self._children):
                return
            time.sleep(0.2)

    def _shutdown(self) -> None:
        for child in self._children:
            try:
                child.wait(timeout=self.timeout.total_seconds())
            except subprocess.TimeoutExpired:
                child.kill()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------------ training

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged in backward)."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, find_unused_parameters=self.find_unused_parameters)

    # ------------------------------------------------------------------ collectives

    def reduce(self, tensor: torch.Tensor, op: str = "mean") -> torch.Tensor:
        if op not in _REDUCE_OPS:
            raise MisconfigurationException(f"cannot reduce with {op!r}; use one of {sorted(_REDUCE_OPS)}")
        result = tensor.detach().clone()
        dist.all_reduce(result, op=_REDUCE_OPS[op])
        if op == "mean":
            result = result / self._world_size
        return result

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        gathered = [torch.empty_like(tensor) for _ in range(self._world_size)]
        dist.all_gather(gathered, tensor.contiguous())
        return torch.stack(gathered)

    def barrier(self, name: str | None = None) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def broadcast(self, obj: _T, src: int = 0) -> _T:
        holder: list[Any] = [obj]
        dist.broadcast_object_list(holder, src=src)
        result: _T = holder[0]
        return result

    def teardown(self) -> None:
        """The process group stays up for later stages; it is left at interpreter exit."""

    def abort(self) -> None:
        """Kill the processes this one started: they would wait for it in the next collective."""
        for child in self._children:
            if child.poll() is None:
                child.kill()
        self._children = []

    def __repr__(self) -> str:
        backend = self._accelerator.distributed_backend if self._accelerator is not None else None
        return f"{type(self).__name__}(world_size={self._world_size}, backend={backend!r})"
