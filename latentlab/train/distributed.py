"""Data-parallel helpers over ``torch.distributed`` (gloo on CPU, nccl on GPU), launched by ``torchrun``.

Every random draw of a training iteration (latents, noise, mixing cut-offs, data order) is made for the
whole global batch, identically in every process, and each process keeps its own rows. A run on ``P``
processes therefore trains on exactly the samples a one-process run of the same global batch trains on;
gradients are averaged, so the two agree up to float summation order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` data-parallel processes (``size == 1``: no torch.distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files, logs and shows progress."""
        return self.rank == 0

    def rows(self, global_batch: int, group: int | None = None) -> slice | torch.Tensor:
        """Which rows of a global batch this process keeps.

        Without ``group``: a contiguous block. With ``group`` (the discriminator's minibatch-stddev group
        size): rows chosen so that every group of a one-process run, whose members are strided
        (``i % (N // G)``), lands whole in one process and in the same order, so minibatch statistics match.
        """
        if global_batch % self.size:
            raise ValueError(f"the batch ({global_batch}) must be divisible by the number of processes ({self.size})")
        local = global_batch // self.size
        if self.size == 1:
            return slice(0, global_batch)
        if group is None:
            return slice(self.rank * local, (self.rank + 1) * local)
        g = min(group, global_batch)
        if local % g:
            return slice(self.rank * local, (self.rank + 1) * local)  # groups cannot match; keep blocks
        # Global row j * (N/g) + k is member j of group k; this process takes groups k in its range.
        per = global_batch // g
        ks = torch.arange(self.rank * (local // g), (self.rank + 1) * (local // g))
        return (torch.arange(g)[:, None] * per + ks[None, :]).reshape(-1)

    def all_reduce_mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Average ``t`` over processes, in place (a no-op for one process)."""
        if self.size > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(self.size)
        return t

    def sync_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Average the gradients of ``params`` over processes (missing gradients count as zero)."""
        if self.size == 1 or not params:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.flatten() for p in params])
        self.all_reduce_mean_(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Copy rank 0's values of ``tensors`` to every process."""
        if self.size > 1:
            for t in tensors:
                dist.broadcast(t, src=0)

    def barrier(self) -> None:
        """Wait for every process."""
        if self.size > 1:
            dist.barrier()


def init_world(device: torch.device) -> World:
    """Join the process group that ``torchrun`` describes in the environment (or stand alone).

    Uses nccl for CUDA devices and gloo otherwise. Already-initialised groups are reused.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
