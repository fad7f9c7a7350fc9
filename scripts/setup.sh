#!/usr/bin/env bash
# Create .venv (if missing) and install emtrack into it, editable, with the dev tools.
# Idempotent: running it again only re-checks the installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch first, pinned: the local CPU build is the one installed (see pyproject.toml).
.venv/bin/pip install torch==2.13.0
.venv/bin/pip install -e ".[dev]"
