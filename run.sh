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
echo "The engine is running (API on 127.0.0.1:9101, auth on 9100, stream on 9102)."
echo "Create a login for the st2 CLI: $bin/st2-setup-auth --user st2admin --password-stdin"
echo "Stop it with: $bin/st2ctl stop"
