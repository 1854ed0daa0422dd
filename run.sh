#!/usr/bin/env bash
# Set up and run PoundCake on the embedded default: SQLite and a local broker under
# POUNDCAKE_DATA_DIR (default ~/.local/share/poundcake); no servers needed.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh
bin=.venv/bin
"$bin/st2-setup-db"
"$bin/st2ctl" reload --register-all
"$bin/poundcake" db init
"$bin/st2ctl" start
"$bin/st2ctl" status
echo "The engine is running; stop it with: $bin/st2ctl stop"
