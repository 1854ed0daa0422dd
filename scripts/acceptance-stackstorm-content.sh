#!/usr/bin/env bash
# Acceptance check against StackStorm's own content, deployed as a user would deploy it.
#
# Needs the fetched repositories (not run in CI): StackStorm's at $ST2_MIRROR and, for each name
# in $EXCHANGE_PACKS, StackStorm-Exchange/stackstorm-<name> at $MIRRORS/StackStorm-Exchange+stackstorm-<name>/repo.
# Needs MariaDB (root, no password, 127.0.0.1), RabbitMQ (guest/guest, rabbitmqctl), .venv and
# .venv-st2 (scripts/ensure-venv.sh dev, scripts/install-test-tools.sh), and for the remote
# linux actions Debian's openssh-server. Pack virtualenvs and Exchange packs install from PyPI.
#
# It makes its own database and vhost, an st2.conf, copies contrib/{linux,examples,hello_st2,
# chatops} to a scratch packs_base_paths, runs st2ctl reload --register-all and st2ctl start,
# then drives the official st2 CLI and prints a summary. --keep leaves everything running.
set -uo pipefail

cd "$(dirname "$0")/.."
REPOSITORY=$PWD
MIRRORS=${MIRRORS:-/work/.mirror}
ST2_MIRROR=${ST2_MIRROR:-$MIRRORS/StackStorm+st2/repo}
EXCHANGE_PACKS=${EXCHANGE_PACKS:-jira github aws kubernetes ansible}
WORKDIR=${WORKDIR:-/tmp/poundcake-acceptance}
NAME=${ACCEPTANCE_NAME:-pc_acceptance}
PORT_BASE=${PORT_BASE:-9500}
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

ST2CTL="$REPOSITORY/.venv/bin/st2ctl"
PY="$REPOSITORY/.venv/bin/python"
export PATH="$REPOSITORY/.venv-st2/bin:$PATH"
SUMMARY="$WORKDIR/summary.txt"

die() { echo "error: $*" >&2; exit 1; }
[ -d "$ST2_MIRROR" ] || die "StackStorm's repository is not at $ST2_MIRROR (set ST2_MIRROR)"
[ -x "$ST2CTL" ] || die ".venv is missing: run scripts/ensure-venv.sh dev"
command -v st2 >/dev/null || die ".venv-st2 is missing: run scripts/install-test-tools.sh"

note() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
sql() { mysql -uroot -h127.0.0.1 -N -B "$NAME" -e "$1"; }

cleanup() {
  if [ "$KEEP" = 1 ]; then
    echo "Left running (--keep): ST2_CONFIG_PATH=$WORKDIR/st2.conf $ST2CTL stop"
    return
  fi
  ST2_CONFIG_PATH="$WORKDIR/st2.conf" "$ST2CTL" stop >/dev/null 2>&1
  [ -f "$WORKDIR/sshd.pid" ] && kill "$(cat "$WORKDIR/sshd.pid")" 2>/dev/null
  mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $NAME; DROP DATABASE IF EXISTS ${NAME}_core"
  rabbitmqctl -q delete_vhost "$NAME" >/dev/null 2>&1
}

# --- deploy -----------------------------------------------------------------------------------
if [ -f "$WORKDIR/st2.conf" ]; then ST2_CONFIG_PATH="$WORKDIR/st2.conf" "$ST2CTL" stop >/dev/null 2>&1; fi
rm -rf "$WORKDIR" && mkdir -p "$WORKDIR/packs" "$WORKDIR/system" "$WORKDIR/git" "$WORKDIR/data"
: >"$SUMMARY"
trap cleanup EXIT
for pack in linux examples hello_st2 chatops; do
  git -C "$ST2_MIRROR" archive HEAD "contrib/$pack" 2>/dev/null | tar -x -C "$WORKDIR/packs" --strip-components=1
done
git -C "$ST2_MIRROR" archive HEAD contrib/core 2>/dev/null | tar -x -C "$WORKDIR/system" --strip-components=1

mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $NAME; CREATE DATABASE $NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" || die "MariaDB"
rabbitmqctl -q delete_vhost "$NAME" >/dev/null 2>&1
rabbitmqctl -q add_vhost "$NAME" && rabbitmqctl -q set_permissions -p "$NAME" guest '.*' '.*' '.*' || die "RabbitMQ"

write_conf() { # database, extra [content] lines
  cat <<EOF
[database]
backend = mysql
host = 127.0.0.1
port = 3306
username = root
db_name = $1

[messaging]
url = amqp://guest:guest@127.0.0.1:5672/$NAME

[api]
port = $((PORT_BASE + 1))
[auth]
port = $PORT_BASE
[stream]
port = $((PORT_BASE + 2))

[system]
data_dir = $WORKDIR/data

[content]
packs_base_paths = $WORKDIR/packs
$2

[packs]
enable_common_libs = True

[workflow_engine]
refuse_at_registration = False
EOF
}
write_conf "$NAME" "" >"$WORKDIR/st2.conf"
export ST2_CONFIG_PATH="$WORKDIR/st2.conf"
"$REPOSITORY/.venv/bin/st2-setup-db" --config-file "$ST2_CONFIG_PATH" >/dev/null || die "st2-setup-db"
"$ST2CTL" reload --register-all >"$WORKDIR/register.log" 2>&1 || die "st2ctl reload: $(tail -5 "$WORKDIR/register.log")"
"$REPOSITORY/.venv/bin/st2-setup-auth" --config-file "$ST2_CONFIG_PATH" --user st2admin --password 'Ch@ngeMe' >/dev/null
"$ST2CTL" start >"$WORKDIR/start.log" 2>&1 || die "st2ctl start: $(cat "$WORKDIR/start.log")"

export ST2_BASE_URL="http://127.0.0.1:$((PORT_BASE + 1))" ST2_API_URL="http://127.0.0.1:$((PORT_BASE + 1))/v1"
export ST2_AUTH_URL="http://127.0.0.1:$PORT_BASE" ST2_STREAM_URL="http://127.0.0.1:$((PORT_BASE + 2))/v1"
export ST2_CLI_SKIP_CONFIG=1 HOME="$WORKDIR/home"
mkdir -p "$HOME"
for _ in $(seq 30); do ST2_AUTH_TOKEN=$(st2 auth st2admin -p 'Ch@ngeMe' -t 2>/dev/null) && break; sleep 1; done
export ST2_AUTH_TOKEN
[ -n "$ST2_AUTH_TOKEN" ] || die "could not log in"

# --- helpers ----------------------------------------------------------------------------------
# run_action LABEL st2-run-arguments...: run through the CLI, print status and a short reason.
run_action() {
  local label=$1; shift
  local started id
  started=$(timeout 60 st2 run "$@" -a -j 2>&1)
  # st2 run -a prints the execution (and a hint naming its id); a refusal prints an error.
  id=$(printf '%s' "$started" | grep -oE 'execution tail [0-9a-f]{24}' | grep -oE '[0-9a-f]{24}' | head -1)
  if [ -z "$id" ]; then
    note "$(printf '  %-60s refused: %s' "$label" "$(printf '%s' "$started" | grep -v '^$' | tail -1 | cut -c1-110)")"
    return
  fi
  for _ in $(seq 300); do
    st2 execution get "$id" -j >"$WORKDIR/execution.json" 2>/dev/null
    # A workflow's JSON is followed by its tasks' list: read the first document only.
    "$PY" -c 'import json, sys; doc = json.JSONDecoder().raw_decode(open(sys.argv[1]).read())[0]; sys.exit(doc["status"] not in ("succeeded", "failed", "timeout", "canceled", "abandoned"))' "$WORKDIR/execution.json" 2>/dev/null && break
    sleep 1
  done
  "$PY" -c '
import json, sys
label, doc = sys.argv[1], json.JSONDecoder().raw_decode(open(sys.argv[2]).read())[0]
result = doc.get("result") or {}
if isinstance(result, dict) and len(result) == 1 and isinstance(next(iter(result.values())), dict):
    result = next(iter(result.values()))  # one host of a remote action
reason = ""
if doc["status"] != "succeeded" and isinstance(result, dict):
    text = str(result.get("error") or result.get("stderr") or result.get("result") or "")
    lines = text.strip().splitlines()
    reason = lines[-1][:110] if lines else ""
status = doc["status"]
print(f"  {label:<60} {status:<10} {reason}")' "$label" "$WORKDIR/execution.json" | tee -a "$SUMMARY"
}

sensor_line() {
  st2 sensor get "$1" -j 2>/dev/null | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
lines = (doc.get("last_error") or "").strip().splitlines()
error = lines[-1][:90] if lines and doc.get("status") != "running" else ""
ref, status, spawns = doc["ref"], doc.get("status") or "-", doc.get("spawn_count")
print(f"  {ref:<40} {status:<9} spawns={spawns} {error}")' | tee -a "$SUMMARY"
}

count_files() { # pack dir, kind: metadata files of that kind
  "$PY" -c '
import sys
from pathlib import Path
import yaml
keys = ("runner_type", "trigger", "class_name", "action_ref")
count = 0
for path in sorted(Path(sys.argv[1], sys.argv[2]).glob("*.yaml")):
    document = yaml.safe_load(path.read_text())
    count += isinstance(document, dict) and any(document.get(key) for key in keys)
print(count)' "$1" "$2"
}

registered() { # pack
  local pack=$1 dir=$2
  note "  $(printf '%-12s' "$pack") actions $(sql "select count(*) from action_db where pack='$pack'")/$(count_files "$dir" actions)" \
    " rules $(sql "select count(*) from rule_db where pack='$pack'")/$(count_files "$dir" rules)" \
    " sensors $(sql "select count(*) from sensor_type_db where pack='$pack'")/$(count_files "$dir" sensors)" \
    " aliases $(sql "select count(*) from action_alias_db where pack='$pack'")/$(count_files "$dir" aliases)"
}

# --- StackStorm's contrib packs -----------------------------------------------------------------
note "StackStorm $(git -C "$ST2_MIRROR" log -1 --format='%h %cs') contrib packs, registered/metadata files:"
for pack in linux examples hello_st2 chatops; do registered "$pack" "$WORKDIR/packs/$pack"; done
grep -i "warning\|error" "$WORKDIR/register.log" | cut -c1-160 | sed 's/^/    /' | tee -a "$SUMMARY"

note "" "packs.setup_virtualenv:"
run_action "packs.setup_virtualenv packs=examples,hello_st2" packs.setup_virtualenv packs=examples,hello_st2

note "" "Our core pack against contrib/core's actions:"
theirs=$(ls "$WORKDIR/system/core/actions"/*.yaml | xargs -n1 basename | sed 's/\.yaml$//' | sort)
ours=$(sql "select name from action_db where pack='core' order by name")
missing=$(comm -23 <(echo "$theirs") <(echo "$ours") | tr '\n' ' ')
note "  contrib/core actions: $(echo "$theirs" | wc -l); ours: $(echo "$ours" | wc -l); missing here: ${missing:-none}"
run_action "core.inject_trigger trigger_name=examples.event" core.inject_trigger trigger_name=examples.event 'payload={"from":"acceptance"}'
run_action "core.uuid uuid_type=uuid1" core.uuid uuid_type=uuid1
run_action "core.announcement" core.announcement 'message={"text":"acceptance"}'

note "" "Python actions:"
run_action "hello_st2.greet" hello_st2.greet greeting=Hello
run_action "linux.dig hostname=localhost" linux.dig hostname=localhost
run_action "linux.wait_for_ssh (nothing listens)" linux.wait_for_ssh hostname=127.0.0.1 port=1 retries=1 sleep_delay=1
for spec in "isprime value=7" 'json_string_to_object json_str={"a":1}' "yaml_string_to_object yaml_str=[1,2]" \
  object_return print_config python-mock-core-remote "python-mock-create-vm vm_name=vm1 ip=10.0.0.1" \
  python_runner_print_python_environment python_runner_print_python_version python_runner_print_to_stdout_and_stderr \
  "forloop_increase_index_and_check_condition index=1 pagesize=2 input=[1,2,3]" "forloop_parse_github_repos content=<html></html>" \
  "forloop_push_github_repos data_to_push={}"; do
  # shellcheck disable=SC2086
  run_action "examples.$spec" examples.$spec
done
echo '{"fixture": true}' >"$WORKDIR/fixture.json"
run_action "examples.python_runner_load_and_print_fixture" examples.python_runner_load_and_print_fixture "file_path=$WORKDIR/fixture.json"

note "" "Remote shell actions of linux:"
remote=()
if command -v sshd >/dev/null || [ -x /usr/sbin/sshd ]; then
  mkdir -p "$WORKDIR/sshd"
  "$PY" - "$WORKDIR/sshd" >"$WORKDIR/sshd.log" 2>&1 <<'EOF' &
import json, signal, sys, time
from pathlib import Path
sys.path.insert(0, ".")
# SIGTERM ends the block below, which stops the sshd.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
from tests.integration.support.sshd import running_sshd
with running_sshd(Path(sys.argv[1])) as server:
    Path(sys.argv[1], "info.json").write_text(json.dumps({"port": server.port, "user": server.username, "key": str(server.private_key_path)}))
    time.sleep(3600)
EOF
  echo $! >"$WORKDIR/sshd.pid"
  for _ in $(seq 20); do [ -f "$WORKDIR/sshd/info.json" ] && break; sleep 0.5; done
fi
if [ -f "$WORKDIR/sshd/info.json" ]; then
  read -r port user key < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["port"], d["user"], d["key"])' "$WORKDIR/sshd/info.json")
  remote=(hosts=127.0.0.1 "port=$port" "username=$user" "private_key=$key")
  note "  (a local sshd on port $port)"
else
  remote=(hosts=127.0.0.1)
  note "  (no sshd: each should fail naming the connection)"
fi
for spec in check_loadavg "check_processes search=name criteria=sshd" netstat "netstat_grep pids=1" lsof "lsof_pids pids=1" vmstat \
  "file_touch file=$WORKDIR/touched" "rm target=$WORKDIR/touched" "traceroute host=127.0.0.1" "diag_loadavg"; do
  # shellcheck disable=SC2086
  if [ "$spec" = diag_loadavg ]; then run_action "linux.$spec" linux.$spec hostname=127.0.0.1
  else run_action "linux.$spec" linux.$spec "${remote[@]}"; fi
done

note "" "Sensors (st2 sensor get) after 15 s:"
sleep 15
for sensor in $(sql "select ref from sensor_type_db where pack in ('linux','examples','hello_st2') order by ref"); do sensor_line "$sensor"; done

note "" "Rules firing:"
touch /tmp/st2_test && sleep 2 && echo "acceptance $(date +%s)" >>/tmp/st2_test
curl -s -o /dev/null -X POST -H "X-Auth-Token: $ST2_AUTH_TOKEN" -H 'Content-Type: application/json' \
  "$ST2_API_URL/webhooks/sample" -d '{"name": "st2"}'
sleep 10
note "  linux.file_watch.line instances: $(sql 'select count(*) from trigger_instance_db t join trigger_db g on g.ref = t.`trigger` where g.type = "linux.file_watch.line"')" \
  " webhook 'sample' instances: $(sql 'select count(*) from trigger_instance_db t join trigger_db g on g.ref = t.`trigger` where g.type = "core.st2.webhook"')"
note "  rule enforcements (count, rule, execution status):"
sql "select f.rule_ref, coalesce(e.status, f.status) from rule_enforcement_db f left join execution_db e on e.id = f.execution_id" |
  sort | uniq -c | sed 's/^/   /' | tee -a "$SUMMARY"

# --- Exchange packs ---------------------------------------------------------------------------
note "" "Exchange packs (st2 pack install file://<bare clone>):"
declare -A probe=([jira]="jira.get_issue issue_key=PC-1" [github]="github.get_user user=octocat"
  [aws]="aws.ec2_describe_regions" [kubernetes]="kubernetes.listNamespace" [ansible]="ansible.command hosts=localhost args=uptime")
for name in $EXCHANGE_PACKS; do
  mirror="$MIRRORS/StackStorm-Exchange+stackstorm-$name/repo"
  if [ ! -d "$mirror" ]; then note "  $name: not fetched ($mirror)"; continue; fi
  git clone -q --bare "$mirror" "$WORKDIR/git/stackstorm-$name.git"
  timeout 1200 st2 pack install "file://$WORKDIR/git/stackstorm-$name.git" >"$WORKDIR/install-$name.log" 2>&1
  if [ "$(sql "select count(*) from pack_db where ref='$name'")" = 0 ]; then
    reason=$(st2 execution list --action packs.install -n 1 -j 2>/dev/null | "$PY" -c '
import json, subprocess, sys
doc = json.load(sys.stdin)[0]
detail = json.loads(subprocess.run(["st2", "execution", "get", doc["id"], "-j"], capture_output=True, text=True).stdout)
text = str((detail.get("result") or {}).get("stderr") or detail.get("result"))
lines = [l for l in text.splitlines() if "Failed building wheel" in l] or [l for l in text.splitlines() if "rror" in l]
print(lines[0].strip()[:140] if lines else doc["status"])')
    note "  $name: install failed: $reason"
    continue
  fi
  registered "$name" "$WORKDIR/packs/$name"
  # shellcheck disable=SC2086
  [ -n "${probe[$name]:-}" ] && run_action "${probe[$name]}" ${probe[$name]}
done
sleep 10
for sensor in $(sql "select ref from sensor_type_db where pack not in ('linux','examples','hello_st2') order by ref"); do sensor_line "$sensor"; done

# --- contrib/core as the system pack ------------------------------------------------------------
note "" "contrib/core as the system pack ([content] system_packs_base_path):"
mkdir -p "$WORKDIR/system-packs"
cp -r "$WORKDIR/system/core" "$WORKDIR/system-packs/core"
for pack in "$REPOSITORY"/packs/*; do [ "$(basename "$pack")" = core ] || ln -s "$pack" "$WORKDIR/system-packs/"; done
mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS ${NAME}_core; CREATE DATABASE ${NAME}_core"
write_conf "${NAME}_core" "system_packs_base_path = $WORKDIR/system-packs" >"$WORKDIR/st2-core.conf"
"$REPOSITORY/.venv/bin/st2-setup-db" --config-file "$WORKDIR/st2-core.conf" >/dev/null
ST2_CONFIG_PATH="$WORKDIR/st2-core.conf" "$ST2CTL" reload --register-all >"$WORKDIR/register-core.log" 2>&1
note "  core actions registered: $(mysql -uroot -h127.0.0.1 -N -B "${NAME}_core" -e "select count(*) from action_db where pack='core'")/$(count_files "$WORKDIR/system/core" actions)"

note "" "Services: $(ST2_CONFIG_PATH="$WORKDIR/st2.conf" "$ST2CTL" status 2>&1 | grep -c 'PID') running"
echo
echo "Summary written to $SUMMARY"
