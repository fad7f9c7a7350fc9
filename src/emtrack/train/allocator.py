"""Keep freed memory in the process, so training steps stop page-faulting their activations.

PyTorch on CPU allocates every tensor with the C library's ``malloc`` (it has no caching
allocator there). glibc serves blocks above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and hands them back to the kernel on ``free``, so the large activations of the
association network (``(B, T-1, N, N, 32)`` floats: 46 MB at 16 clips of 10 frames, N = 50)
arrive as new zero-filled pages, page-faulted one by one, on every training step. PyTorch's
CPU tuning guide recommends another allocator (jemalloc, tcmalloc) via ``LD_PRELOAD``;
:func:`reuse_freed_memory` gets the same effect from glibc itself, in the running process:
large blocks come from the heap and freed ones stay there for the next step.

Measured on the development VM (one-off A/B): the structured training step of ``emtrack bench
train`` at k = 50 goes from 44–50 to 71 clips/s; the shipped training command, whose activations
stay under 32 MiB, is as fast as without (and gives the same weights bit for bit).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

_log = logging.getLogger(__name__)

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: Free memory at the top of the heap that is kept rather than returned to the kernel.
DEFAULT_KEEP_BYTES = 1 << 30


def reuse_freed_memory(keep_bytes: int = DEFAULT_KEEP_BYTES) -> bool:
    """Serve large blocks from the heap and keep up to ``keep_bytes`` of freed memory.

    Process-wide and lasting: meant for processes that train (``emtrack train``, ``emtrack
    bench train`` call it); the tracker's small numpy arrays do not need it. The process then
    holds on to up to ``keep_bytes`` of memory it no longer uses, and blocks freed inside the
    heap are reused rather than returned (a training step allocates the same sizes every time).

    Args:
        keep_bytes: the heap's trim threshold, in bytes (>= 0).

    Returns:
        True when it took effect (Linux with glibc); False elsewhere (nothing changed).
    """
    if keep_bytes < 0:
        raise ValueError(f"keep_bytes must be >= 0, got {keep_bytes}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    keep = min(keep_bytes, 2**31 - 1)
    done = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, keep) == 1
    _log.debug("reuse_freed_memory(keep_bytes=%d): %s", keep, "on" if done else "refused")
    return done
