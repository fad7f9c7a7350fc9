"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real MOTChallenge data lives next to the repository, never inside it (see its README).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path to the real MOT15/17/20 data in ``../shared/data``.

    Skips the test when the folder is absent, except under ``CI=true``, where a missing folder
    fails the test (CI must run the real-data tests).
    """
    if not SHARED_DATA.is_dir():
        message = f"real MOTChallenge data not found at {SHARED_DATA}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: extra torch threads only add overhead (and spin when the machine is busy)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
