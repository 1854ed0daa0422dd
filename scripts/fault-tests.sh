#!/usr/bin/env bash
# Run every fault-injection test in tests/faults, the long ones too (docs/reliability.md).
# POUNDCAKE_FAULT_MINUTES sets the length of the mixed-restarts test (default 10), and
# POUNDCAKE_FAULT_SEED replays one of its runs. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-venv.sh dev
scripts/start-services.sh
scripts/install-test-tools.sh
POUNDCAKE_LONG_FAULTS=1 POUNDCAKE_REQUIRE_INTEGRATION=1 \
  .venv/bin/pytest -p no:xdist -rA --durations=0 "${@:-tests/faults}"
