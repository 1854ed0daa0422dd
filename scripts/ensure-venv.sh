#!/usr/bin/env bash
# Create .venv (Python 3.11 to 3.13) and install PoundCake into it; reinstall only when
# pyproject.toml changed. Usage: scripts/ensure-venv.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
extra=${1:-}
python=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))'; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "error: PoundCake needs Python 3.11, 3.12 or 3.13 (python3.11 recommended)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $python"
  "$python" -m venv .venv
fi
target=".${extra:+[$extra]}"
stamp=".venv/.installed${extra:+-$extra}"
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Installing PoundCake ($target) into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
  echo "$wanted" > "$stamp"
fi
