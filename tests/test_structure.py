"""How the package is put together: imports point one way, and the benchmarks share a protocol.

The style rules (docs: dependencies point one way, no private names across modules) checked on
the source itself, so a change that breaks them fails here rather than in review.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "emtrack"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_private_name_is_imported_from_another_module() -> None:
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("emtrack")):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and node.module != module:
                    offences.append(f"{module}:{node.lineno}: {node.module}.{alias.name}")
    assert offences == []


def test_tracker_reads_a_checkpoint_without_training_code(tmp_path: Path) -> None:
    """``.pt`` weights load and track with no ``emtrack.train`` module imported."""
    from emtrack.model.network import AssociationNet, NoiseModel
    from emtrack.train import TrainConfig, TrainResult
    from emtrack.train.checkpoint import save_checkpoint

    path = tmp_path / "run.pt"
    result = TrainResult(
        AssociationNet((8,)), NoiseModel(), TrainConfig(hidden=(8,)), [], True, 0.5
    )
    save_checkpoint(path, result, None, 0, np.random.default_rng(0))
    probe = f"""
import sys
import numpy as np
from emtrack.track import Tracker, load_model
tracker = Tracker(frame_rate=10, model=load_model({str(path)!r}))
for frame in range(3):
    tracker.update(np.array([[10.0 + frame, 10.0, 50.0 + frame, 110.0, 0.9]]))
print(" ".join(sorted(name for name in sys.modules if name.startswith("emtrack.train"))))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def _empty_reports() -> list[object]:
    from emtrack.bench.accuracy_bench import AccuracyReport
    from emtrack.bench.memory import MemoryReport, StreamConfig, measure_stream
    from emtrack.bench.speed_bench import SpeedReport
    from emtrack.bench.track_bench import BenchReport
    from emtrack.bench.train_bench import TrainBenchConfig, TrainBenchReport

    settings = {"model": "default", "seed": 0, "det_name": "det.txt"}
    return [
        BenchReport((), (), (), (), ()),
        SpeedReport((), (), ()),
        AccuracyReport((), settings, {}),
        MemoryReport((measure_stream(5),), StreamConfig()),
        TrainBenchReport(TrainBenchConfig(), (), (), 1),
    ]


@pytest.mark.parametrize("index", range(5), ids=["track", "speed", "accuracy", "memory", "train"])
def test_every_benchmark_report_is_a_report(index: int, tmp_path: Path) -> None:
    """Each bench report prints a table and writes its JSON through the one protocol."""
    import json

    from emtrack.bench.report import Report, write_json

    report = _empty_reports()[index]
    assert isinstance(report, Report)
    assert isinstance(report.format_table(), str)
    write_json(report, tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    assert set(written) == set(report.to_dict())  # the record, as JSON (no NaN or infinity)
