"""A floor under the shipped model's headline numbers on real detections.

Two real sequences, tracked with the default settings (the shipped model, ``TrackerConfig()``)
online and offline, scored by TrackEval. Each HOTA must stay above a floor set about 3 points
below the value measured when the floor was set, so a regression of the tracker or of the
shipped model fails the suite, while small changes (rounding, a better fit) do not. Measured
(``track_sequence`` + ``evaluate`` of one sequence; HOTA in percent):

================================  ======  =======
sequence (detections)             online  offline
================================  ======  =======
MOT15 TUD-Campus (Faster R-CNN)   47.91   57.36
YOLOX-MOT17 MOT17-09 (YOLOX)      63.41   64.24
================================  ======  =======

The floors below are those values minus about 3, rounded to half a point. When the tracker
improves, raise them with the new values (the table above says where they came from).

Needs ``../shared/data``: skipped without it, failed under ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emtrack.eval import EvalSequence, evaluate
from emtrack.io import read_mot, read_seqinfo, write_mot
from emtrack.track import track_sequence

#: (sequence folder under ../shared/data, offline) -> HOTA floor (percent).
HOTA_FLOORS: dict[tuple[str, bool], float] = {
    ("MOT15/TUD-Campus", False): 45.0,
    ("MOT15/TUD-Campus", True): 54.5,
    ("YOLOX-MOT17/MOT17-09", False): 60.5,
    ("YOLOX-MOT17/MOT17-09", True): 61.0,
}


def _sequence(shared_data: Path, relative: str) -> Path:
    """The sequence folder; a missing one skips the test (fails it under ``CI=true``)."""
    folder = shared_data / relative
    needed = [folder / "det" / "det.txt", folder / "gt" / "gt.txt", folder / "seqinfo.ini"]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        message = f"real data missing: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.mark.parametrize(
    ("relative", "offline"),
    list(HOTA_FLOORS),
    ids=[f"{name}-{'offline' if offline else 'online'}" for name, offline in HOTA_FLOORS],
)
def test_shipped_model_hota_floor(
    shared_data: Path, relative: str, offline: bool, tmp_path: Path
) -> None:
    folder = _sequence(shared_data, relative)
    seqinfo = read_seqinfo(folder / "seqinfo.ini")
    run = track_sequence(read_mot(folder / "det" / "det.txt"), seqinfo, offline=offline)
    result = tmp_path / f"{folder.name}.txt"
    write_mot(result, run.result)
    scores = evaluate([EvalSequence(folder.name, folder / "gt" / "gt.txt", result, seqinfo)])
    floor = HOTA_FLOORS[relative, offline]
    hota = scores.combined.hota
    assert hota > floor, (
        f"{relative} {'offline' if offline else 'online'}: HOTA {hota:.2f} <= {floor}"
    )
