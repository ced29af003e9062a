"""torchrun / DistributedDataParallel support shared by both exercises.

Started with `torchrun --nproc_per_node N script.py ...`, every process trains on its slice of each
global batch (same flags as a single process: `--batch_size` is the global batch), gradients are
averaged by DDP, and only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from utils.errors import UserError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes in the environment (a no-op for one process).
    Returns the rank info and the device this rank uses (cuda:<local_rank> on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shard(batch: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (all ranks draw the same global batch)."""
    if not info.enabled:
        return batch
    if batch.shape[0] % info.world_size:
        raise UserError(f"--batch_size {batch.shape[0]} is not divisible by the {info.world_size} processes: "
                        f"choose a multiple of {info.world_size} (a text's size rule may set the batch: pass --batch_size)")
    per = batch.shape[0] // info.world_size
    return batch[info.rank * per:(info.rank + 1) * per]


def max_over_ranks(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """The largest of each value over all ranks, on every rank (one small all-reduce)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def synced_clock(elapsed: float, stop: bool, info: DistInfo, device: torch.device) -> tuple[float, bool]:
    """(the slowest rank's elapsed training time, whether any rank wants to stop), the same on every
    rank. A schedule or a time budget that read each rank's own clock would give the ranks different
    learning rates, and the replicas of DistributedDataParallel would drift apart."""
    elapsed, flag = max_over_ranks([elapsed, 1.0 if stop else 0.0], info, device)
    return elapsed, flag > 0


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here (e.g. while rank 0 prepares data the others will read)."""
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
