#!/usr/bin/env bash
# Installs gear_sonic with its test extra and runs the CPU test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
python -m pytest -q tests "$@"
