"""``FSDPStrategy``: parameters, gradients and optimizer state sharded over the processes, with torch's
``fully_shard`` (FSDP2).

Processes are started and joined as for ``DDPStrategy``. The module is sharded in place before the
optimizers are created (they then hold the shards). Checkpoints come in two forms:

- ``state_dict_type="full"`` (default): the whole model and optimizer state gathered on global zero
  and written as one ordinary checkpoint file, which any run (one process, DDP, FSDP) can resume
  and ``torch.load(weights_only=True)`` reads. Optimizer state is stored in torch's usual
  index-keyed form, not by parameter name, so that it loads into a plain optimizer too.
- ``state_dict_type="sharded"``: a directory holding each process's shards
  (``torch.distributed.checkpoint``) and ``meta.pt`` with everything else; every process writes its
  part. It is written under a temporary name and renamed once complete, so a crash while saving
  leaves the previous checkpoint whole. Resuming needs the same strategy (any number of processes:
  the shards are redistributed on load).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import torch
from fulmen_core import Accelerator, CheckpointError, MisconfigurationException, load_checkpoint_file, save_checkpoint_file

from fulmen_accelerators._ddp import DDPStrategy

_META = "meta.pt"
_SHARDED_MARK = "fulmen_sharded_checkpoint"
_STATE_DICT_TYPES = ("full", "sharded")
WrapPolicy = type[torch.nn.Module] | Iterable[type[torch.nn.Module]] | Callable[[torch.nn.Module], bool]


class _StepThroughRoot(torch.nn.Module):
    """Runs the step (``step``'s forward) *as the sharded root's forward*, so that FSDP's forward
    hooks gather the root's parameters and its backward hooks reduce the gradients, whichever
    submodules the step uses."""

    def __init__(self, step: torch.nn.Module, root: torch.nn.Module) -> None:
        super().__init__()
        self.step = step
        # Kept out of the submodule registry: the root is already ``step``'s child.
        self._root: tuple[torch.nn.Module] = (root,)

    def forward(self, *args: Any) -> Any:
        root = self._root[0]

        def step(*inner: Any) -> Any:
            # Calls of ``self(...)`` inside the step must reach the module's own forward again.
            del root.forward
            return self.step(*inner)

        root.forward = step  # redirected for this one call
        try:
            return root(*args)
        finally:
            root.__dict__.pop("forward", None)


class FSDPStrategy(DDPStrategy):
    """Fully sharded data parallel training on ``torch.distributed`` (gloo on CPU, nccl on CUDA).

    ``auto_wrap_policy``: the submodules sharded as their own units (a class, a set of classes, or a
    predicate), so that only one unit's parameters are gathered at a time; the root is always sharded.
    ``reshard_after_forward`` frees gathered parameters after each unit's forward (less memory,
    one more gather in backward). ``cpu_offload`` keeps the shards in CPU memory between uses.
    """

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        num_processes: int | None = None,
        num_nodes: int = 1,
        *,
        auto_wrap_policy: WrapPolicy | None = None,
        reshard_after_forward: bool = True,
        cpu_offload: bool = False,
        state_dict_type: str = "full",
        **kwargs: Any,
    ) -> None:
        if state_dict_type not in _STATE_DICT_TYPES:
            raise MisconfigurationException(
                f"FSDPStrategy(state_dict_type={state_dict_type!r}) is not known; use one of {list(_STATE_DICT_TYPES)}"
            )
        super().__init__(accelerator, num_processes, num_nodes, **kwargs)
        self.auto_wrap_policy = auto_wrap_policy
        self.reshard_after_forward = reshard_after_forward
        self.cpu_offload = cpu_offload
        self.state_dict_type = state_dict_type

    # ------------------------------------------------------------------ the module

    def _wraps(self, module: torch.nn.Module) -> bool:
        policy = self.auto_wrap_policy
        if policy is None:
            return False
        if isinstance(policy, type):  # one class
            return isinstance(module, policy)
        if callable(policy):  # a predicate
            return bool(policy(module))
        return isinstance(module, tuple(policy))

    def setup_module(self, module: torch.nn.Module) -> None:
        """Shard the units ``auto_wrap_policy`` picks (innermost first), then the root, in place."""
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, OffloadPolicy, fully_shard

        if isinstance(module, FSDPModule):
            return  # sharded by an earlier stage of this run
        mesh = init_device_mesh(self.accelerator.autocast_device_type, (self._world_size,))
        offload = CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy()
        units = [sub for sub in module.modules() if sub is not module and self._wraps(sub)]
        for unit in reversed(units):  # children before their parents
            fully_shard(unit, mesh=mesh, reshard_after_forward=self.reshard_after_forward, offload_policy=offload)
        fully_shard(module, mesh=mesh, reshard_after_forward=self.reshard_after_forward, offload_policy=offload)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` (whose forward runs one of the steps) called through the sharded root."""
        from torch.distributed.fsdp import FSDPModule

        roots = [sub for sub in module.modules() if isinstance(sub, FSDPModule)]
        if not roots:
            raise MisconfigurationException(
                "FSDPStrategy.wrap got a module that holds no sharded module; setup_module runs first"
            )
        return _StepThroughRoot(module, roots[0])

    # ------------------------------------------------------------------ state

    def _options(self) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        full = self.state_dict_type == "full"
        return StateDictOptions(full_state_dict=full, cpu_offload=full)

    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        """Full state on global zero (empty elsewhere), or this process's shards."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return dict(get_model_state_dict(module, options=self._options()))

    def optimizer_state_dict(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = dict(get_optimizer_state_dict(module, optimizer, options=self._options()))
        if self.state_dict_type == "full" and state:
            return _indexed(state, _parameter_names(module, optimizer))
        return state

    def load_optimizer_state_dict(
        self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
            set_optimizer_state_dict,
        )

        if _SHARDED_MARK in state:
            where = state[_SHARDED_MARK]
            target = dict(get_optimizer_state_dict(module, optimizer))
            holder = {"optimizer_states": {where["key"]: target}}
            _dcp_load(holder, where["path"])
            set_optimizer_state_dict(module, optimizer, holder["optimizer_states"][where["key"]])
            return
        # A full state (ours, or from a run without FSDP), keyed by index: by name for torch's API.
        named = _named(state, _parameter_names(module, optimizer))
        set_optimizer_state_dict(module, optimizer, named, options=StateDictOptions(full_state_dict=True))

    # ------------------------------------------------------------------ files

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str) -> None:
        if self.state_dict_type == "full":
            if self._global_rank == 0:
                save_checkpoint_file(checkpoint, path)
            return
        from torch.distributed.checkpoint.state_dict_saver import save

        rest = dict(checkpoint)
        shards = {
            "state_dict": rest.pop("state_dict"),
            "optimizer_states": {str(i): s for i, s in enumerate(rest.pop("optimizer_states", []))},
        }
        rest[_SHARDED_MARK] = {"optimizers": len(shards["optimizer_states"])}
        # One temporary name for all processes, renamed into place when every part is written.
        token = self.broadcast(uuid.uuid4().hex)
        staging = f"{path}.{token}.tmp"
        try:
            save(shards, checkpoint_id=staging)
            if self._global_rank == 0:
                save_checkpoint_file(rest, os.path.join(staging, _META))
            self.barrier("sharded checkpoint written")
            if self._global_rank == 0:
                _replace_directory(staging, path)
        except BaseException:
            if self._global_rank == 0 and os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
            raise

    def load_checkpoint(self, path: str, module: torch.nn.Module) -> dict[str, Any]:
        """A checkpoint file as usual; a sharded directory with the model's shards read into
        ``module``'s own tensors (whole, before sharding) and the optimizers' left for later."""
        if not os.path.isdir(path):
            return load_checkpoint_file(path)
        meta_path = os.path.join(path, _META)
        if not os.path.isfile(meta_path):
            raise CheckpointError(
                f"checkpoint directory {path!r} has no {_META}: it is not a complete sharded checkpoint"
            )
        checkpoint = load_checkpoint_file(meta_path)
        mark = checkpoint.pop(_SHARDED_MARK, {})
        holder = {"state_dict": module.state_dict()}
        _dcp_load(holder, path)
        checkpoint["state_dict"] = holder["state_dict"]
        if "optimizers" in mark:
            checkpoint["optimizer_states"] = [
                {_SHARDED_MARK: {"path": path, "key": str(i)}} for i in range(int(mark["optimizers"]))
            ]
        return checkpoint


def _dcp_load(holder: dict[str, Any], path: str) -> None:
    """Read the shards at ``path`` into the tensors of ``holder``, in place."""
    from torch.distributed.checkpoint.state_dict_loader import load

    try:
        load(holder, checkpoint_id=path)
    except Exception as error:  # DCP raises several types; all mean the directory does not fit
        raise CheckpointError(
            f"sharded checkpoint {path!r} could not be read into this model: {error}; is it a "
            "checkpoint of another model, or damaged?"
        ) from error


def _replace_directory(staging: str, path: str) -> None:
    # The old checkpoint is moved aside before the new one takes its name, and removed only after.
    old = None
    if os.path.lexists(path):
        old = f"{path}.{uuid.uuid4().hex}.old"
        os.replace(path, old)
    os.replace(staging, path)
    if old is not None:
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old)
        else:
            os.remove(old)


def _parameter_names(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """The names of each param group's parameters, in the optimizer's order."""
    names = {id(parameter): name for name, parameter in module.named_parameters()}
    try:
        return [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]
    except KeyError as error:
        raise MisconfigurationException(
            "FSDPStrategy: the optimizer holds a parameter that is not the module's; create the "
            "optimizers in configure_optimizers from self.parameters()"
        ) from error


def _indexed(state: dict[str, Any], names: list[list[str]]) -> dict[str, Any]:
    """torch's usual optimizer state (parameters by index) from one keyed by parameter name."""
    by_name = state.get("state", {})
    result: dict[str, Any] = {"state": {}, "param_groups": []}
    index = 0
    for group, group_names in zip(state["param_groups"], names):
        ids = []
        for name in group_names:
            if name in by_name:
                result["state"][index] = by_name[name]
            ids.append(index)
            index += 1
        result["param_groups"].append({**group, "params": ids})
    return result


def _named(state: dict[str, Any], names: list[list[str]]) -> dict[str, Any]:
    """The inverse of ``_indexed``, for ``set_optimizer_state_dict``."""
    groups = state.get("param_groups", [])
    if len(groups) != len(names) or any(len(g["params"]) != len(n) for g, n in zip(groups, names)):
        raise CheckpointError(
            "the checkpoint's optimizer state does not fit this optimizer (different parameter "
            "groups); was it saved by another configure_optimizers?"
        )
    by_index = state.get("state", {})
    result: dict[str, Any] = {"state": {}, "param_groups": []}
    for group, group_names in zip(groups, names):
        for position, name in zip(group["params"], group_names):
            if position in by_index:
                result["state"][name] = by_index[position]
        result["param_groups"].append({**group, "params": list(group_names)})
    return result
