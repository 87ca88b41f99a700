#!/usr/bin/env bash
# Installs the web UI's third-party assets (htmx, Pico CSS, Swagger UI) from the npm registry, exactly
# as pinned in package-lock.json (`npm ci` checks each package against its sha512 integrity
# hash there), and copies the files the pages load into src/usersync/web/static/vendor/.
# That folder is not committed: this script makes it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "usersync's web assets are installed with npm, which is missing." >&2
    echo "Install it with: sudo apt-get install -y npm" >&2
    exit 1
  fi
  echo "Installing npm (to fetch the web UI's htmx and Pico CSS)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

vendor=src/usersync/web/static/vendor
rm -rf "$vendor"
mkdir -p "$vendor"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$vendor/htmx.LICENSE"
cp node_modules/@picocss/pico/css/pico.min.css "$vendor/pico.min.css"
cp node_modules/@picocss/pico/LICENSE.md "$vendor/pico.LICENSE.md"
# Swagger UI for /docs, served from here so that the REST API's page works offline.
mkdir -p "$vendor/swagger-ui"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
  node_modules/swagger-ui-dist/favicon-32x32.png node_modules/swagger-ui-dist/LICENSE \
  "$vendor/swagger-ui/"
