#!/usr/bin/env bash
# Installs the Debian packages that the test suite's real servers need (OpenSSH's sshd,
# PostgreSQL, vsftpd) and the browser that the web UI's tests drive (chromium, through
# Playwright; nothing downloads a browser of its own), when they are missing. Safe to run
# again: it does nothing when all are there.
set -euo pipefail

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
[ -x /usr/bin/chromium ] || need+=(chromium)
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  need+=(postgresql)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "usersync tests need these Debian packages: ${need[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi

echo "Installing ${need[*]} (needed by the integration tests)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the package scripts from starting system-wide services: the tests start
# their own servers on loopback high ports.
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ $had_policy -eq 0 ]; then
  rm -f /usr/sbin/policy-rc.d
fi
