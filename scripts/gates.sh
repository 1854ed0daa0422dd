#!/usr/bin/env bash
# The gates alone, no servers and no test tools: ruff check, ruff format --check, mypy --strict on
# src/, and the import contracts. Usage: scripts/gates.sh (or ./test.sh --gates)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-venv.sh dev
echo "== ruff check";        .venv/bin/ruff check src tests bench
echo "== ruff format";       .venv/bin/ruff format --check src tests bench
echo "== mypy --strict";     .venv/bin/mypy src
echo "== import contracts";  .venv/bin/lint-imports
