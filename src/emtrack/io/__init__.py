"""MOTChallenge files: reading and writing detections, ground truth, results and seqinfo.ini.

The only place where boxes are converted between the files' ``x, y, w, h`` and the package's
``boxes_xyxy`` ``[x1, y1, x2, y2]``.
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

__all__ = [
    "MotTable",
    "SeqInfo",
    "SequencePaths",
    "atomic_write",
    "find_sequences",
    "read_mot",
    "read_seqinfo",
    "write_json",
    "write_mot",
]
