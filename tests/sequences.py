"""Tiny MOTChallenge sequences written to a temporary folder, shared by the CLI-level tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emtrack.io import MotTable, write_mot

SEQINFO = "[Sequence]\nname={name}\nframeRate=10\nseqLength={length}\nimWidth=640\nimHeight=480\n"


def write_sequence(folder: Path, name: str = "SEQ", num_frames: int = 10) -> Path:
    """A MOT15-layout sequence of two people walking apart, with seqinfo.ini and gt.

    Row ``r`` (0-based) of the det file is frame ``r // 2 + 1``, so lines ``2 f - 1`` and
    ``2 f`` hold frame ``f``. The detections are the gt boxes shifted by one pixel.

    Returns:
        The det file ``<folder>/<name>/det/det.txt``.
    """
    seq = folder / name
    frames = np.repeat(np.arange(1, num_frames + 1), 2)
    ids = np.tile([1, 2], num_frames)
    x = np.where(ids == 1, 10.0 + 4.0 * frames, 400.0 - 5.0 * frames)
    y = np.where(ids == 1, 100.0, 200.0)
    boxes = np.stack([x, y, x + 30.0, y + 70.0], axis=1)
    write_mot(seq / "gt" / "gt.txt", MotTable.from_arrays(frames, boxes, ids=ids))
    detections = MotTable.from_arrays(frames, boxes + 1.0, scores=np.full(len(frames), 0.9))
    write_mot(seq / "det" / "det.txt", detections)
    (seq / "seqinfo.ini").write_text(SEQINFO.format(name=name, length=num_frames))
    return seq / "det" / "det.txt"
