"""``--threads N``: how many threads a command's numerical libraries may use.

Defaults, measured on the 2-core development machine (README, "Threads"): training runs
fastest on **1** torch thread whenever anything else runs on the machine (2 threads were 3 to
10 times slower with one other busy process, since torch's threads wait for each other at
every small operation), and no slower than 2 when the machine is idle; the tracker's BLAS
calls are kept small enough to run on the calling thread, so its speed does not depend on
the count, and 1 keeps ``--workers`` processes from competing for the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from emtrack.cli.options import positive_int

__all__ = [
    "THREAD_VARIABLES",
    "TRACKING_THREADS",
    "TRAINING_THREADS",
    "add_threads_option",
    "thread_limit",
]

#: Default ``--threads`` of the commands that train (torch).
TRAINING_THREADS = 1
#: Default ``--threads`` of the commands that track (numpy/BLAS; worker processes).
TRACKING_THREADS = 1
#: Environment variables that OpenMP, OpenBLAS and MKL read when they start.
THREAD_VARIABLES: tuple[str, ...] = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def add_threads_option(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default,
        metavar="N",
        help="threads of torch and of the BLAS libraries per process (the measured "
        f"defaults are in the README, 'Threads'; default: {default})",
    )


@contextlib.contextmanager
def thread_limit(count: int, torch: bool = False) -> Iterator[None]:
    """Limit torch and BLAS to ``count`` threads in this process and in the ones it starts.

    The environment variables reach worker processes (started with ``spawn``) and libraries
    loaded later; torch (imported here when ``torch`` is true, or already loaded) is set at
    once. numpy's BLAS, already running in this process, keeps its count: the tracker's BLAS
    calls are too small to use a second thread. Everything is restored on exit, so ``main``
    can be called repeatedly in one process.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    torch_module = None
    if torch or "torch" in sys.modules:
        import torch as torch_module
    saved_torch = torch_module.get_num_threads() if torch_module is not None else None
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    if torch_module is not None:
        torch_module.set_num_threads(count)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if torch_module is not None and saved_torch is not None:
            torch_module.set_num_threads(saved_torch)
