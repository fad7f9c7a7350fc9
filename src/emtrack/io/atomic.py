"""Atomic file writes: readers see the old file or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "write_json"]

_ALLOWED_MODES = frozenset({"w", "wt", "wb"})


def _default_file_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give a new file (0o666 minus umask)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Portable fallback: os.umask can only be read by setting it, so restore it at once.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Flush the directory entry so the rename itself survives a crash (POSIX only, best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Write a file atomically: to a temporary file in the same folder, then rename over ``path``.

    The temporary file is flushed and fsynced before ``os.replace``, so after a crash ``path``
    holds either its old content or the complete new content. If the body of the ``with`` block
    raises, the temporary file is removed, ``path`` is left untouched and the exception propagates.
    The new file keeps the permission bits of the file it replaces (or, for a new file, the usual
    ``0o666`` minus the umask). The parent folder must exist.

    Args:
        path: Destination file.
        mode: ``"w"`` (text, UTF-8, ``"\\n"`` line endings), ``"wt"`` (same) or ``"wb"`` (binary).

    Yields:
        The open temporary file; write to it as you would to ``open(path, mode)``.

    Raises:
        ValueError: ``mode`` is not one of ``"w"``, ``"wt"``, ``"wb"``.
        OSError: The folder does not exist or is not writable.

    Example:
        >>> import pathlib, tempfile
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as f:
        ...     _ = f.write("hello\\n")
        >>> target.read_text()
        'hello\\n'
    """
    if mode not in _ALLOWED_MODES:
        raise ValueError(f"atomic_write mode must be one of {sorted(_ALLOWED_MODES)}, got {mode!r}")
    target = Path(path)
    directory = target.parent
    binary = "b" in mode
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed explicitly below
        mode=mode,
        dir=directory,
        prefix=f".{target.name}.",
        suffix=".tmp",
        delete=False,
        encoding=None if binary else "utf-8",
        newline=None if binary else "\n",
    )
    tmp_path = Path(tmp.name)
    try:
        yield tmp
        tmp.flush()
        os.fsync(tmp.fileno())
        tmp.close()
        try:
            file_mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            file_mode = _default_file_mode()
        os.chmod(tmp_path, file_mode)
        os.replace(tmp_path, target)
    except BaseException:
        tmp.close()
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    _fsync_directory(directory)


def write_json(path: str | PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically; the parent folder is created.

    NaN and infinities are refused (``ValueError``): they are not JSON.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
