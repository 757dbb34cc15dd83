#!/usr/bin/env bash
# Installs what interop/browser needs on a fresh Debian machine: the npm packages pinned in
# package-lock.json (`npm ci`, skipped while node_modules matches the lock file; npm's download
# cache under $LP2P_CACHE/npm), the bundled page (dist/), and Debian's chromium when it is
# missing (as root, or through passwordless sudo). Needs Node 20+ with npm.
#
# Chromium comes without its Recommends (upower, udev, printer and notification tools, mesa):
# headless with --disable-gpu needs none of them, and they triple the install time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

LP2P_CACHE=${LP2P_CACHE:-$HOME/.cache/lp2p}
node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error(`js-libp2p 3 needs Node 20 or newer, this is ${process.version}`); process.exit(1) }'

hash=$(sha256sum package-lock.json | cut -c1-16)
stamp=node_modules/.lp2p-lock-hash
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "interop/browser: node_modules up to date"
else
    npm ci --no-audit --no-fund --loglevel=error --cache "$LP2P_CACHE/npm"
    echo "$hash" > "$stamp"
fi
node build.mjs

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "chromium is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM" >&2
        exit 1
    fi
    echo "installing Debian's chromium"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "interop/browser: ready ($("$chromium" --version 2>/dev/null || echo "$chromium"))"
