"""Running the same training under ``torchrun --nproc-per-node N`` with DistributedDataParallel.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; when WORLD_SIZE > 1 we join the process group
(gloo on CPU, nccl on CUDA, one GPU per local rank). Every rank builds the same datasets;
`shard_sampler` gives each rank its own disjoint share of every epoch (torch's
DistributedSampler, reseeded per epoch), gradients are averaged by DDP, and only rank 0
writes files. Without torchrun everything here degrades to a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files or reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; ``cuda`` without a GPU is a ValueError."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU")
        return torch.device("cuda", local_rank)
    if preference != "cpu":
        raise ValueError(f"unknown device {preference!r}; choose auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join torchrun's process group if there is one; otherwise a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, device)


def shutdown(context: DistContext) -> None:
    """Leave the process group (a no-op for a single process)."""
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    """Wait for every rank (a no-op for a single process)."""
    if context.distributed:
        dist.barrier()


def gather_objects(context: DistContext, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def shard_sampler(length: int, context: DistContext, *, seed: int, shuffle: bool
                  ) -> DistributedSampler[int]:
    """This rank's share of ``range(length)``; call ``set_epoch`` before each epoch.

    Shares have equal sizes (the sampler repeats a few indices when `length` does not divide),
    so every rank runs the same number of steps, which DDP requires.
    """
    return DistributedSampler(range(length), num_replicas=context.world_size,  # type: ignore[arg-type]
                              rank=context.rank, shuffle=shuffle, seed=seed, drop_last=False)
