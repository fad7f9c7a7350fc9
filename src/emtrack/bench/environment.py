"""What a benchmark ran on: package versions, the machine and the git commit (for its JSON)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["environment_info"]

_VERSIONED_PACKAGES = (
    "emtrack",
    "numpy",
    "scipy",
    "torch",
    "trackers",
    "trackeval",
    "supervision",
    "boxmot",
    "lapx",
)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_info() -> dict[str, Any] | None:
    """Commit of the emtrack checkout this code runs from (``None`` for an installed wheel)."""
    package_dir = Path(__file__).resolve().parent.parent
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if top is None or not package_dir.is_relative_to(Path(top).resolve()):
        return None
    commit = _git(["rev-parse", "HEAD"], package_dir)
    if commit is None:
        return None
    status = _git(["status", "--porcelain"], package_dir)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment_info() -> dict[str, Any]:
    """Versions, machine and git commit, for the benchmark's JSON record."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            **{name: _package_version(name) for name in _VERSIONED_PACKAGES},
        },
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "usable_cpus": len(affinity(0)) if affinity is not None else None,
            "thread_variables": {name: os.environ.get(name) for name in _THREAD_VARIABLES},
        },
        "git": _git_info(),
    }
