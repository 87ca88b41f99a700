#!/usr/bin/env bash
# Prints a Python 3.11+ interpreter that can create virtual environments, installing
# Debian's python3-venv first when the interpreter lacks ensurepip (a fresh Debian has none).
set -euo pipefail

for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    py=$(command -v "$candidate")
    break
  fi
done
if [ -z "${py:-}" ]; then
  echo "usersync needs Python 3.11 or newer; install it with: apt-get install -y python3" >&2
  exit 1
fi

if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  version=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if [ "$(id -u)" -ne 0 ]; then
    echo "Python's venv module is missing; install it with: sudo apt-get install -y python${version}-venv" >&2
    exit 1
  fi
  echo "Installing python${version}-venv..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${version}-venv" >/dev/null
fi
echo "$py"
