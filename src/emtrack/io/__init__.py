"""MOTChallenge files: reading and writing detections, ground truth, results and seqinfo.ini.

The only place where boxes are converted between the files' ``x, y, w, h`` and the package's
``boxes_xyxy`` ``[x1, y1, x2, y2]``. Det files come in several dialects (separators, header
lines, 6 to 10+ columns; :mod:`emtrack.io.dialect`); frame timestamps files give the times of
the frames a detector saw (:mod:`emtrack.io.timestamps`).
"""

from emtrack.io.atomic import atomic_write, write_json
from emtrack.io.mot import (
    MotTable,
    SeqInfo,
    SequencePaths,
    find_sequences,
    read_mot,
    read_seqinfo,
    write_mot,
)
from emtrack.io.timestamps import Timestamps, read_timestamps

__all__ = [
    "MotTable",
    "SeqInfo",
    "SequencePaths",
    "Timestamps",
    "atomic_write",
    "find_sequences",
    "read_mot",
    "read_seqinfo",
    "read_timestamps",
    "write_json",
    "write_mot",
]
