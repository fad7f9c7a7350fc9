"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` + DDP, under torchrun.

``torchrun --nproc_per_node=N -m emtrack train ...`` starts N copies of the trainer with the
environment variables ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set. When ``WORLD_SIZE > 1``, :func:`setup` joins the process group (gloo on the
CPU, nccl on CUDA) and every rank then:

* samples the **same** global batch with the same seeded generator (all ranks hold identical
  random states, so nothing about the data has to be communicated),
* keeps its contiguous slice of the clips (:meth:`DistributedContext.shard`),
* weights its loss by ``world_size * count_rank / count_total`` (counts of the detections the
  loss is normalised by), so that DDP's *average* of the ranks' gradients equals the gradient of
  the full batch on one process — the result is one process's up to floating-point reduction
  order.

Only rank 0 writes checkpoints, prints and evaluates. Without torchrun (no ``WORLD_SIZE`` or
``WORLD_SIZE=1``) nothing here touches ``torch.distributed``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from emtrack.errors import EmtrackInputError
from emtrack.model.loss import ClipBatch

__all__ = ["DistributedContext", "env_rank", "setup"]

logger = logging.getLogger(__name__)


def _env_int(name: str, default: int) -> int:
    """An integer environment variable set by the launcher (clear error when it is not one)."""
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise EmtrackInputError(
            f"environment variable {name}={text!r} is not an integer (set by torchrun)"
        ) from None
    if value < 0:
        raise EmtrackInputError(f"environment variable {name}={value} must be >= 0")
    return value


def env_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun or with one process)."""
    return _env_int("RANK", 0) if _env_int("WORLD_SIZE", 1) > 1 else 0


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run (one process: the defaults).

    Attributes:
        rank: global rank, 0 … world_size-1 (rank 0 writes and prints).
        world_size: number of processes.
        local_rank: rank on this machine (its GPU index on CUDA).
        owns_group: :func:`setup` created the process group, so :meth:`close` destroys it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard_slice(self, batch_size: int) -> slice:
        """This rank's contiguous clips of a global batch (sizes differ by at most one)."""
        base, extra = divmod(batch_size, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def shard(self, batch: ClipBatch) -> ClipBatch:
        """This rank's clips of ``batch`` (the padded width N is kept, as one process has it)."""
        if not self.enabled:
            return batch
        return batch.clips(self.shard_slice(batch.mask.shape[0]))

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when distributed."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        on_cuda = next(module.parameters()).device.type == "cuda"
        return DistributedDataParallel(module, device_ids=[self.local_rank] if on_cuda else None)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over all ranks (``values`` itself with one process)."""
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group if :func:`setup` created it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def setup(device: str) -> DistributedContext:
    """Join the torchrun process group when ``WORLD_SIZE > 1``; otherwise a one-process context.

    The backend is nccl for a CUDA ``device`` (each process then uses ``cuda:LOCAL_RANK``) and
    gloo otherwise. A process group the caller already initialised is used as it is.

    Args:
        device: the training device of the config (``cpu``, ``cuda``).

    Raises:
        EmtrackInputError: malformed launcher variables, or ``cuda:N`` with several processes.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext()
    import torch.distributed as dist

    if not dist.is_available():
        raise EmtrackInputError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if rank >= world_size:
        raise EmtrackInputError(f"RANK={rank} is not below WORLD_SIZE={world_size}")
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        if torch.device(device).index is not None:
            raise EmtrackInputError(
                f"--device {device}: with several processes give plain 'cuda' "
                "(each process uses the GPU of its LOCAL_RANK)"
            )
        torch.cuda.set_device(local_rank)
    owns = False
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        dist.init_process_group("nccl" if on_cuda else "gloo")
        owns = True
    logger.info(
        "rank %d of %d (local rank %d) joined the process group", rank, world_size, local_rank
    )
    return DistributedContext(rank, world_size, local_rank, owns)
