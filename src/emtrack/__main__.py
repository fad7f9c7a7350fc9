"""``python -m emtrack``: the same command line as ``emtrack`` (also what torchrun launches)."""

import sys

from emtrack.cli import main

if __name__ == "__main__":
    sys.exit(main())
