#!/usr/bin/env bash
# Rebuilds snapshot.tar.xz from a clone of https://github.com/rustsec/advisory-db (the CI
# machines cannot reach GitHub, so .ci/run checks advisories against this vendored copy).
#
#   .ci/advisory-db/update.sh /path/to/advisory-db   # a clone or bare mirror, at the commit wanted
#
# Then commit snapshot.tar.xz and SNAPSHOT together.
set -euo pipefail
src=${1:?usage: update.sh PATH-TO-ADVISORY-DB-CLONE}
here=$(cd "$(dirname "$0")" && pwd)
commit=$(git -C "$src" rev-parse HEAD)
date=$(git -C "$src" show -s --format=%cI HEAD)
git -C "$src" archive --format=tar HEAD crates rust LICENSE.txt LICENSES README.md \
    | xz -9 > "$here/snapshot.tar.xz"
printf 'commit=%s\ndate=%s\n' "$commit" "$date" > "$here/SNAPSHOT"
echo "snapshot of $commit ($date): $(du -h "$here/snapshot.tar.xz" | cut -f1)"
