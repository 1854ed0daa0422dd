#!/usr/bin/env bash
# Set up and run PoundCake on the embedded default: SQLite and local brokers under
# POUNDCAKE_DATA_DIR (default ~/.local/share/poundcake); no servers needed.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh
.venv/bin/st2-setup-db
.venv/bin/poundcake db init
.venv/bin/poundcake db current
