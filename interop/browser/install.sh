#!/usr/bin/env bash
# Installs what interop/browser needs: the npm packages pinned in package-lock.json, the
# bundled page (dist/), and Debian's chromium when it is missing (as root, as in CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

npm ci --no-audit --no-fund --loglevel=error
node build.mjs

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing Debian's chromium"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM" >&2
        exit 1
    fi
fi
