"""torchrun / DistributedDataParallel plumbing: who am I, one process group, small collectives.

``torchrun --nproc_per_node=N`` starts N processes and tells each its
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment. Without those
variables everything here degrades to a single process (rank 0 of 1) and the
collectives are no-ops, so the training loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and the progress bar."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise ValueError(f"${name} must be an integer; got {value!r}") from error


def dist_info_from_env() -> DistInfo:
    """The ``DistInfo`` torchrun put in the environment (rank 0 of 1 without torchrun)."""
    info = DistInfo(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), _env_int("WORLD_SIZE", 1))
    if info.world_size < 1 or not 0 <= info.rank < info.world_size:
        raise ValueError(f"inconsistent torchrun environment: RANK={info.rank}, WORLD_SIZE={info.world_size}")
    return info


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def device_for_rank(info: DistInfo, device: torch.device) -> torch.device:
    """Each rank drives its own GPU (``cuda:LOCAL_RANK``); CPU ranks share the CPU."""
    if device.type == "cuda" and info.enabled:
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={info.local_rank} but only {torch.cuda.device_count()} GPU(s) are visible: "
                "start torchrun with --nproc_per_node at most the number of GPUs"
            )
        return torch.device("cuda", info.local_rank)
    return device


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when run under torchrun (once); return this process's ``DistInfo``."""
    info = dist_info_from_env()
    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device_for_rank(info, device))
        dist.init_process_group(backend=backend_for(device), rank=info.rank, world_size=info.world_size)
    return info


def shutdown() -> None:
    """Leave the process group (so the process exits without warnings)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``values`` summed over all ranks (``values`` itself with one process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_gather_objects(obj, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, …]`` on every rank (``[obj]`` with one process)."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def parameters_fingerprint(model: torch.nn.Module) -> list[float]:
    """A few numbers that differ when parameters differ: sum and sum of squares in float64."""
    with torch.no_grad():
        total = sum(p.detach().double().sum().item() for p in model.parameters())
        squares = sum(p.detach().double().pow(2).sum().item() for p in model.parameters())
    return [total, squares]
