#!/usr/bin/env bash
# Set up and run every gate and the whole test suite against real MariaDB, Redis and RabbitMQ.
#   ./test.sh                    gates, then every test (servers started, test tools installed)
#   ./test.sh --gates            the gates alone (scripts/gates.sh): no servers, no tools
#   ./test.sh --unit [ARGS...]   tests/unit alone: no servers, no tools, no gates
#   ./test.sh PATHS [ARGS...]    gates, then those tests; paths all under tests/unit run as --unit
set -euo pipefail
cd "$(dirname "$0")"

unit_only() {
  local seen=0 argument
  for argument in "$@"; do
    case "$argument" in
      tests/unit | tests/unit/*) seen=1 ;;
      tests/* | */*) return 1 ;;
    esac
  done
  [ "$seen" = 1 ]
}

case "${1:-}" in
  --gates) exec scripts/gates.sh ;;
  --unit) shift; scripts/ensure-venv.sh dev; exec .venv/bin/pytest tests/unit "$@" ;;
esac
if [ "$#" -gt 0 ] && unit_only "$@"; then
  scripts/ensure-venv.sh dev
  exec .venv/bin/pytest "$@"
fi

scripts/start-services.sh
scripts/install-test-tools.sh
scripts/gates.sh
echo "== pytest"
# Test files run in parallel, each on one worker (tests/conftest.py schedules them).
POUNDCAKE_REQUIRE_INTEGRATION=1 .venv/bin/pytest -n "${POUNDCAKE_TEST_WORKERS:-3}" "${@:-tests}"
