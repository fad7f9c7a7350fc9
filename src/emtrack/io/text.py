"""Reading the text of an input file, with clear errors for missing, binary or non-ASCII files."""

from __future__ import annotations

import codecs
from pathlib import Path

from emtrack.errors import EmtrackInputError

__all__ = ["read_ascii_text", "read_text"]


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path`` (BOM dropped), with clear errors for missing or binary files.

    Raises:
        EmtrackInputError: The file is missing, a folder or unreadable, holds a NUL byte or is
            not UTF-8 (the message names the file and, where known, the line).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EmtrackInputError("file not found", path) from None
    except IsADirectoryError:
        raise EmtrackInputError("is a folder, expected a file", path) from None
    except OSError as error:
        raise EmtrackInputError(f"cannot read file: {error.strerror or error}", path) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise EmtrackInputError("binary data (NUL byte) in what should be a text file", path, line)
    # Drop the BOM by hand: "utf-8-sig" reports error offsets without it (wrong byte and line).
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        start = bom + error.start
        line = data.count(b"\n", 0, start) + 1
        raise EmtrackInputError(
            f"not UTF-8 text (byte 0x{data[start]:02x}); is this a binary file?", path, line
        ) from None


def read_ascii_text(path: Path) -> str:
    """:func:`read_text` of a file of numbers: the first non-ASCII character is an error.

    MOTChallenge rows hold ASCII numbers only; without this check ``float()`` would accept
    e.g. Arabic-Indic or full-width digits and ``strip()`` would drop no-break spaces.

    Raises:
        EmtrackInputError: As :func:`read_text`, or a non-ASCII character (its line named).
    """
    text = read_text(path)
    if text.isascii():
        return text
    index = next(i for i, char in enumerate(text) if not char.isascii())
    char = text[index]
    raise EmtrackInputError(
        f"non-ASCII character {char!r} (U+{ord(char):04X}); rows hold ASCII numbers only",
        path,
        text.count("\n", 0, index) + 1,
    )
