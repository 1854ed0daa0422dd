#!/usr/bin/env bash
# Set up and run PoundCake on the embedded default: SQLite and local brokers under
# POUNDCAKE_DATA_DIR (default ~/.local/share/poundcake); no servers needed.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh
bin=.venv/bin
"$bin/st2-setup-db"
"$bin/st2ctl" reload --register-all
"$bin/poundcake" db init
"$bin/st2ctl" start
"$bin/poundcake" engine-key
cabs=$("$bin/poundcake" cabs dir)
if [ -z "$(ls -A "$cabs" 2>/dev/null)" ]; then
  mkdir -p "$cabs" && cp deploy/cabs/*.yaml "$cabs/"
  echo "Copied the example CAB(s) from deploy/cabs into $cabs"
fi
"$bin/poundcake" cabs apply
"$bin/poundcake" start
"$bin/st2ctl" status
"$bin/poundcake" status
token=$("$bin/poundcake" webhook-token)
port=${POUNDCAKE_PORT:-8080}
cat <<MSG
PoundCake is running: the engine (API 127.0.0.1:9101, auth 9100, stream 9102) and
poundcake-api on 127.0.0.1:$port with its worker and beat.
Send an example alert and watch it remediated:
  curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \\
       --data @deploy/examples/alertmanager-webhook.json http://127.0.0.1:$port/api/v1/webhook
  $bin/poundcake alerts list
  $bin/poundcake requests show <request_id from the answer>
The web UI is at http://127.0.0.1:$port/ once you create a login (also for the st2 CLI):
  $bin/st2-setup-auth --user st2admin --password-stdin
Stop everything with: $bin/poundcake stop && $bin/st2ctl stop
MSG
