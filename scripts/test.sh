#!/usr/bin/env bash
# Set up .venv, lint, build the documentation site, and run the test suite. Extra arguments go
# to pytest. Exit status: non-zero when set-up, lint, the docs build or any test fails, or when
# pytest collects no tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
.venv/bin/ruff check src tests
# The docs site (mkdocs.yml): offline, warnings are errors; written to build/site (ignored).
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet

status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
fi
exit "$status"
