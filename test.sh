#!/usr/bin/env bash
# Set up and run every gate and the whole test suite against real MariaDB, Redis and RabbitMQ.
# Extra arguments go to pytest (for example: ./test.sh tests/unit -k config).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh dev
scripts/start-services.sh
scripts/install-test-tools.sh
echo "== ruff check";        .venv/bin/ruff check src tests bench
echo "== ruff format";       .venv/bin/ruff format --check src tests bench
echo "== mypy --strict";     .venv/bin/mypy src
echo "== import contracts";  .venv/bin/lint-imports
echo "== pytest"
# Test files run in parallel, each on one worker (tests/conftest.py schedules them).
POUNDCAKE_REQUIRE_INTEGRATION=1 .venv/bin/pytest -n "${POUNDCAKE_TEST_WORKERS:-2}" "${@:-tests}"
