#!/usr/bin/env bash
# Install the Debian tools the integration tests need besides the database servers, if missing:
# OpenSSH's server (the remote-shell runner tests start their own sshd on a loopback port),
# Prometheus's Alertmanager, Chromium, nginx, wrk for the benchmarks, and the official st2 CLI
# in .venv-st2. Safe to run again; needs root to install Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive

install_if_missing() {
  local path=$1 package=$2
  if command -v "$path" >/dev/null 2>&1; then
    return 0
  fi
  echo "Installing $package"
  if [ -z "${apt_updated:-}" ]; then
    apt-get update
    apt_updated=1
  fi
  apt-get install -y --no-install-recommends "$package"
}

install_if_missing /usr/sbin/sshd openssh-server
install_if_missing ssh-keygen openssh-client
# A real Alertmanager for the end-to-end intake tests (each test runs its own on loopback).
install_if_missing /usr/bin/prometheus-alertmanager prometheus-alertmanager
# Debian's Chromium for the web UI's browser tests (Playwright drives it; no browser download).
install_if_missing /usr/bin/chromium chromium
# Debian's nginx for the HTTPS test of deploy/nginx/ (tests/e2e/test_nginx_tls.py). The test runs
# its own master (`nginx -p <dir> -c <conf>`, in the foreground, on loopback ports) and never
# uses the system service; stop that with `systemctl disable --now nginx` if you do not want it.
install_if_missing /usr/sbin/nginx nginx
# ping for the network pack's ping action and its tests.
install_if_missing ping iputils-ping
# wrk, the HTTP load generator of bench/intake.py (benchmarks only; no test needs it).
install_if_missing wrk wrk

# The official StackStorm CLI, in a venv of its own (it pins its dependencies exactly and must
# never share the project's environment): the engine API tests drive it.
if [ ! -x .venv-st2/bin/st2 ]; then
  python=python3.11
  command -v "$python" >/dev/null 2>&1 || python=python3
  echo "Installing st2client 3.9.0 into .venv-st2"
  "$python" -m venv .venv-st2
  .venv-st2/bin/python -m pip install --quiet --disable-pip-version-check st2client==3.9.0
fi
