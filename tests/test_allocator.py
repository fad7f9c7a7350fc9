"""reuse_freed_memory: large blocks come from the heap (no per-step mmap), checked in a child."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emtrack.train.allocator import reuse_freed_memory

# Prints the bytes glibc holds in mmapped blocks while a 64 MiB tensor is alive.
_CHILD = """
import ctypes, sys
import torch
from emtrack.train.allocator import reuse_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "on":
    assert reuse_freed_memory()
big = torch.ones(16 * 2**20, dtype=torch.float32)
print(libc.mallinfo2().hblkhd)
"""


def _mmapped_bytes(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_large_tensor_comes_from_the_heap_once_switched_on() -> None:
    try:
        default = _mmapped_bytes("off")
    except subprocess.CalledProcessError as error:  # not glibc (no mallinfo2)
        pytest.skip(f"no glibc mallinfo2: {error.stderr.strip()[-200:]}")
    assert default >= 64 * 2**20  # glibc's default: a block this large is its own mmap
    assert _mmapped_bytes("on") < 64 * 2**20


def test_negative_keep_is_refused() -> None:
    with pytest.raises(ValueError, match="keep_bytes"):
        reuse_freed_memory(-1)
