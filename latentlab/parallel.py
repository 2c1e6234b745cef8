"""Work over the processes of a ``torchrun`` job (gloo on CPU, nccl on GPU): training, and every sharded job.

Two ways of splitting work live here.

* **Training** (data parallel): every random draw of an iteration (latents, noise, mixing cut-offs, data
  order) is made for the whole global batch, identically in every process, and each process keeps its own
  rows (:meth:`World.rows`). A run on ``P`` processes therefore trains on exactly the samples a one-process
  run of the same global batch trains on; gradients are averaged, so the two agree up to float summation order.
* **Sharded jobs** (projection, tuning, metrics, direction fitting): the job is a list of tasks (a chunk of
  images, a batch of samples), each made only from its own seeded draws. :func:`map_tasks` gives task ``k``
  to process ``k % P``; after every round of ``P`` tasks the processes exchange what they made, so every
  process ends with all the results in task order, and a failure anywhere stops every process at the end of
  that round. A task computes exactly what it computes in one process, so the result is bit-identical to a
  one-process run with the same batches and threads.

:func:`init_world` joins the group ``torchrun`` describes (a one-process :class:`World` without it);
:meth:`World.agree` refuses processes started with different arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


class ShardFailed(RuntimeError):
    """A process of a sharded job failed; its rank, task and error are in the message. Raised in every process
    (``every_process``), so they can leave the job together."""

    every_process = True


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
        """Average the gradients of ``params`` over processes.

        A gradient missing in some processes counts as zero there; one missing in every process stays missing,
        as in one process (an optimizer then leaves that parameter alone, momentum and all).
        """
        if self.size == 1 or not params:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
        dist.all_reduce(has, op=dist.ReduceOp.SUM)
        params = [p for p, n in zip(params, has.tolist(), strict=True) if n > 0]
        if not params:
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

    def bar_disable(self, progress: bool) -> bool | None:
        """tqdm's ``disable`` for a job's one bar: off unless ``progress`` and rank 0; None = on when stderr is a
        terminal (quiet logs under a scheduler), as :func:`latentlab.utils.bar_disable`."""
        return None if progress and self.is_main else True

    def owns(self, task: int) -> bool:
        """Whether task ``task`` of a sharded job is this process's (``task % size == rank``)."""
        return task % self.size == self.rank

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order, on every process (``[obj]`` for one process)."""
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 only, its result given to every process (which wait for it). An error of ``fn`` is
        raised on every process, marked ``every_process`` so that they leave the job together."""
        if self.size == 1:
            return fn()
        outcome: tuple[Any, BaseException | None] = (None, None)
        if self.is_main:
            try:
                outcome = (fn(), None)
            except Exception as e:  # noqa: BLE001 - raised on every process below
                outcome = (None, e)
        value, error = self.gather(outcome)[0]
        if error is not None:
            error.every_process = True
            raise error
        return value

    def agree(self, what: str, values: Mapping[str, Any]) -> None:
        """Refuse to go on unless every process was given the same ``values`` (compared by ``repr``).

        Raises:
            InvalidInput: on every process, naming the first differing value of each rank that differs.
        """
        if self.size == 1:
            return
        from .validate import InvalidInput

        mine = {str(k): repr(v) for k, v in values.items()}
        every = self.gather(mine)
        ref = every[0]
        diffs = []
        for r, d in enumerate(every[1:], start=1):
            keys = sorted(k for k in set(ref) | set(d) if ref.get(k) != d.get(k))
            if keys:
                k = keys[0]
                diffs.append(f"rank {r} has {k}={d.get(k, '(none)')!s:.80} where rank 0 has "
                             f"{ref.get(k, '(none)')!s:.80}")  # fmt: skip
        if diffs:
            error = InvalidInput(f"{what}: the {self.size} processes were started with different arguments ("
                                 f"{'; '.join(diffs)}); start every process with the same command")  # fmt: skip
            error.every_process = True  # raised alike everywhere: the processes can leave the job together
            raise error

    def device(self, device: torch.device) -> torch.device:
        """The device this process works on: ``cuda`` without an index becomes ``cuda:<local rank>``, or with more
        processes on a machine than GPUs, ``cuda:<local rank mod GPUs>`` (processes share the GPUs)."""
        if device.type == "cuda" and device.index is None and self.size > 1:
            count = torch.cuda.device_count()
            return torch.device("cuda", self.local_rank % count if count else self.local_rank)
        return device


def chunked(n: int, size: int) -> list[list[int]]:
    """``range(n)`` cut into consecutive chunks of ``size`` (the last one shorter): a job's tasks of images."""
    return [list(range(lo, min(lo + size, n))) for lo in range(0, n, size)]


def map_tasks(
    world: World,
    num_tasks: int,
    fn: Callable[[int], T],
    on_round: Callable[[dict[int, T], list[int]], None] | None = None,
    describe: Callable[[int], str] | None = None,
) -> list[T]:
    """``[fn(0), ..., fn(num_tasks - 1)]`` on every process, task ``k`` computed by process ``k % world.size``.

    The tasks run in rounds of ``world.size``; after each round the processes exchange the round's results
    (``fn`` must return something picklable) and ``on_round(done, fresh)`` is called on every process with all
    results so far, by task, and the tasks this round finished (rank 0 rewrites a summary or moves the progress
    bar there; only a process that owns a file should write it).

    ``describe(k)`` names task ``k``'s inputs in a failure's message (e.g. its image files).

    Raises:
        ShardFailed: on every process when ``fn`` raised in one (on the failing one chained to its error),
            naming the rank, the task, ``describe(task)`` and the error. Every process stops after the round
            in which the failure happened, once ``on_round`` has seen the round's finished results. With one
            process ``fn``'s error propagates at once, unchanged.
    """
    if num_tasks < 0:
        raise ValueError(f"num_tasks must be >= 0, got {num_tasks}")
    done: dict[int, T] = {}
    for first in range(0, num_tasks, world.size):
        k = first + world.rank
        if world.size == 1:
            done[k] = fn(k)
            if on_round is not None:
                on_round(done, [k])
            continue
        mine: tuple[int, Any] | None = None
        failure: tuple[int, str] | None = None
        error: BaseException | None = None
        if k < num_tasks:
            try:
                mine = (k, fn(k))
            except Exception as e:  # noqa: BLE001 - reported to every process, then raised as ShardFailed
                what = f" ({describe(k)})" if describe is not None else ""
                failure, error = (k, f"{what}: {type(e).__name__}: {e}"), e
        failures, fresh = [], []
        for rank, (result, failed) in enumerate(world.gather((mine, failure))):
            if result is not None:
                done[result[0]] = result[1]
                fresh.append(result[0])
            if failed is not None:
                failures.append(f"rank {rank}, task {failed[0]}{failed[1]}")
        if on_round is not None:
            on_round(done, fresh)
        if failures:
            raise ShardFailed(f"the job stopped: {'; '.join(failures)}; every finished output is kept") from error
    return [done[k] for k in range(num_tasks)]


def init_world(device: torch.device) -> World:
    """Join the process group that ``torchrun`` describes in the environment (or stand alone).

    Uses nccl for CUDA devices, one process per GPU, and gloo otherwise, also where a machine runs more
    processes than it has GPUs (they share them: several small-model jobs per GPU; nccl refuses two processes
    on one GPU). Already-initialised groups are reused.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world = World(rank=int(os.environ.get("RANK", "0")), size=size, local_rank=local_rank)
    backend = "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(world.device(device))
        if int(os.environ.get("LOCAL_WORLD_SIZE", str(size))) <= torch.cuda.device_count():
            backend = "nccl"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank)

