#!/usr/bin/env bash
# Makes the Python venv py-libp2p-node runs in: py-libp2p 0.8.1 and its pinned dependencies
# (requirements.txt) from PyPI. Idempotent: the venv lives under $LP2P_CACHE, keyed by the
# hash of requirements.txt, and is reused while that file is unchanged; interop/py/.venv
# links to it. Needs CPython 3.10+ (CI has 3.11) with the venv module, and pip's access to PyPI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

LP2P_CACHE=${LP2P_CACHE:-$HOME/.cache/lp2p}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' ||
    { echo "py-libp2p 0.8 needs Python 3.10 or newer; $PYTHON is older" >&2; exit 1; }

hash=$(sha256sum requirements.txt | cut -c1-16)
venv=$LP2P_CACHE/py-libp2p-venv-$hash
if [ -x "$venv/bin/python" ] && [ -f "$venv/.lp2p-complete" ]; then
    echo "py-libp2p-node: venv up to date ($venv)"
else
    echo "py-libp2p-node: creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        --cache-dir "$LP2P_CACHE/pip" -r requirements.txt
    touch "$venv/.lp2p-complete"
fi
ln -sfn "$venv" .venv
# A smoke check: the program starts and rejects a bad command with exit 2.
set +e
./py-libp2p-node --no-such-command >/dev/null
status=$?
set -e
[ "$status" -eq 2 ] || { echo "py-libp2p-node does not start (exit $status)" >&2; exit 1; }
echo "py-libp2p-node: ready ($("$venv/bin/python" -c 'import importlib.metadata as m; print("py-libp2p", m.version("libp2p"))'))"
