#!/usr/bin/env bash
# Run the whole test suite: lint, format, types, unit tests and the lab end-to-end tests.
# The lab tests need root and Linux network namespaces (they are skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
.venv/bin/ruff check k8sreach checks tests bench
.venv/bin/ruff format --check k8sreach checks tests bench
.venv/bin/mypy --ignore-missing-imports k8sreach checks
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
