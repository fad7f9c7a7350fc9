"""``pip install .`` without extras: tracking, evaluation, I/O and ``emtrack demo`` need no torch.

Builds a fresh virtual environment, installs this checkout into it with its dependencies (from
the configured package index, as a user would), checks that torch is absent, and runs
``emtrack track``, ``emtrack eval`` and ``emtrack demo`` there; ``emtrack train`` and a ``.pt``
model must stop with one line that names the extra to install.

Slow (a minute or two, mostly pip): it runs when ``CI=true`` or ``EMTRACK_TEST_LIGHT_INSTALL=1``
(``.ci/run`` sets it) and is skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sequences import write_sequence

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CI") != "true" and os.environ.get("EMTRACK_TEST_LIGHT_INSTALL") != "1",
        reason="builds a virtual environment; set EMTRACK_TEST_LIGHT_INSTALL=1 (or CI=true)",
    ),
]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The installed package must be the one imported, never a checkout on PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/`` of a venv with ``pip install .`` (no extras) of a copy of this checkout."""
    root = tmp_path_factory.mktemp("light")
    source = root / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], root)
    assert made.returncode == 0, made.stderr
    installed = _run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], root)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv / "bin"


def test_light_install_has_no_torch(light_venv: Path) -> None:
    probe = _run(
        [
            str(light_venv / "python"),
            "-c",
            "import importlib.util, sys; import emtrack.track, emtrack.eval, emtrack.io, "
            "emtrack.cli; sys.exit(0 if importlib.util.find_spec('torch') is None else 1)",
        ],
        light_venv,
    )
    assert probe.returncode == 0, "torch was installed by 'pip install .'" + probe.stderr


def test_light_install_tracks_evaluates_and_demos(light_venv: Path, tmp_path: Path) -> None:
    det = write_sequence(tmp_path / "seqs", "SEQ", num_frames=12)
    emtrack = str(light_venv / "emtrack")
    tracked = _run([emtrack, "track", "--det", str(det), "--out", "out/SEQ.txt"], tmp_path)
    assert tracked.returncode == 0, tracked.stderr
    assert (tmp_path / "out" / "SEQ.txt").read_text().count("\n") > 0
    folder = _run([emtrack, "track", "--det", "seqs", "--out", "all/", "--offline"], tmp_path)
    assert folder.returncode == 0, folder.stderr
    assert (tmp_path / "all" / "SEQ.txt").is_file()
    scored = _run([emtrack, "eval", "--gt", "seqs", "--results", "out/"], tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert "HOTA" in scored.stdout and "SEQ" in scored.stdout
    demo = _run([emtrack, "demo", "--frames", "40"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "emtrack" in demo.stdout and "HOTA" in demo.stdout


def test_light_install_names_the_missing_extra(light_venv: Path, tmp_path: Path) -> None:
    emtrack = str(light_venv / "emtrack")
    helped = _run([emtrack, "train", "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "--init" in helped.stdout
    trained = _run([emtrack, "train", "--synthetic", "1", "--out", "runs/x.pt"], tmp_path)
    assert trained.returncode == 1
    assert trained.stderr.strip().splitlines() == [
        "emtrack: error: emtrack train needs PyTorch, which is not installed: pip install "
        "'emtrack[train]' (or 'emtrack[dev]' for everything)"
    ]
    assert not (tmp_path / "runs").exists()
    det = write_sequence(tmp_path / "seqs")
    (tmp_path / "model.pt").write_bytes(b"not read without torch")
    tracked = _run(
        [emtrack, "track", "--det", str(det), "--out", "o.txt", "--model", "model.pt"], tmp_path
    )
    assert tracked.returncode == 1
    assert "emtrack track needs PyTorch" in tracked.stderr and "emtrack[train]" in tracked.stderr
    assert "Traceback" not in tracked.stderr and not (tmp_path / "o.txt").exists()
