"""Pictures and videos of what emtrack does (``emtrack viz ...``), drawn from its outputs.

* :mod:`emtrack.viz.tracks`: tracks over the frames (MP4 / PNG frames) and contact sheets,
  with the errors against the ground truth marked (found by :mod:`emtrack.eval.clear`).
* :mod:`emtrack.viz.training`: loss and association accuracy per epoch.
* :mod:`emtrack.viz.assoc`: the learned assignment (with dustbin) of two frames next to IoU.
* :mod:`emtrack.viz.bench_plot`: benchmark bar charts.
* :mod:`emtrack.viz.synthetic`: the synthetic scene the commands fall back to.

Needs the optional extra ``pip install 'emtrack[viz]'`` (matplotlib, PyAV); the modules import
them inside their functions and raise :class:`MissingExtraError` (an ``ImportError``) naming
the pip command when they are missing. Importing this package imports neither.
"""

from emtrack.viz._common import MAX_PNG_BYTES, MissingExtraError

__all__ = ["MAX_PNG_BYTES", "MissingExtraError"]
