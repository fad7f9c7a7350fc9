"""emtrack: self-supervised multi-object tracking with a learned association network.

``emtrack.Tracker`` is imported lazily so that ``import emtrack`` stays light (no torch).
"""

from __future__ import annotations

from typing import Any

from emtrack.errors import EmtrackInputError, EmtrackInputWarning

__version__ = "0.2.0"
__all__ = ["EmtrackInputError", "EmtrackInputWarning", "Tracker", "TrackerConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Tracker", "TrackerConfig"):
        from emtrack.track import tracker

        return getattr(tracker, name)
    raise AttributeError(f"module 'emtrack' has no attribute {name!r}")
