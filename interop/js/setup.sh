#!/usr/bin/env bash
# Installs js-libp2p-node's dependencies exactly as package-lock.json pins them (js-libp2p
# 3.3.11 and friends) into interop/js/node_modules with `npm ci`. Idempotent: skipped while
# node_modules matches the lock file; npm's download cache lives under $LP2P_CACHE/npm.
# Needs Node 20+ and npm with access to the npm registry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

LP2P_CACHE=${LP2P_CACHE:-$HOME/.cache/lp2p}
node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error(`js-libp2p 3 needs Node 20 or newer, this is ${process.version}`); process.exit(1) }'

hash=$(sha256sum package-lock.json | cut -c1-16)
stamp=node_modules/.lp2p-lock-hash
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "js-libp2p-node: node_modules up to date"
else
    npm ci --no-audit --no-fund --loglevel=error --cache "$LP2P_CACHE/npm"
    echo "$hash" > "$stamp"
fi
# A smoke check: the program starts and rejects a bad command with exit 2.
set +e
node bin/js-libp2p-node.js --no-such-command >/dev/null
status=$?
set -e
[ "$status" -eq 2 ] || { echo "js-libp2p-node does not start (exit $status)" >&2; exit 1; }
echo "js-libp2p-node: ready (libp2p $(node -p 'require("./node_modules/libp2p/package.json").version'))"
