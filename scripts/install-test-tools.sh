#!/usr/bin/env bash
# Install the Debian tools the integration tests need besides the database servers, if missing:
# OpenSSH's server (the remote-shell runner tests start their own sshd on a loopback port).
# Safe to run again; needs root to install.
set -euo pipefail

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
