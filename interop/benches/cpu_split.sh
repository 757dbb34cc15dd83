#!/usr/bin/env bash
# Where a bulk transfer's CPU goes, per side: one lp2p-node perf exchange over TCP + noise +
# yamux on 127.0.0.1, sampled machine-wide with `perf record`, each side's samples split into
# the AEAD (ChaCha20-Poly1305: RustCrypto in the default build, ring with `noise-ring`), the
# kernel (socket calls, loopback delivery, scheduling), memcpy/memmove, and the rest (lp2p's
# framing, yamux, the runtime). The kernel and the AEAD are the floor of what lp2p can cost
# per byte; the other two are what is left to remove. docs/performance-floors.md reads the
# issue-18 goals against this split.
#
#   bash interop/benches/cpu_split.sh LP2P_NODE [up|down] [BYTES]
#
# up: the dialer sends, the listener receives (the whole-stack bench's upload); down: the
# reverse. BYTES defaults to 2 GiB. Needs `perf` (Debian: linux-perf) and root, or
# kernel.perf_event_paranoid <= -1. Keep the machine otherwise idle: samples of other
# processes are left out, but they still take CPU from the two sides.
set -euo pipefail

node=${1:?usage: cpu_split.sh LP2P_NODE [up|down] [BYTES]}
direction=${2:-up}
bytes=${3:-2147483648}
command -v perf > /dev/null || { echo "cpu_split.sh: perf is not installed" >&2; exit 1; }
work=$(mktemp -d -t lp2p-cpu-split-XXXXXX)
listener=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The listener's stdin stays open (a closed stdin ends `listen`) until it is killed.
mkfifo "$work/stdin"
"$node" listen --addr /ip4/127.0.0.1/tcp/0 --bare < "$work/stdin" > "$work/listen.out" 2> /dev/null &
listener=$!
exec 3> "$work/stdin"
for _ in $(seq 200); do
    grep -q listening "$work/listen.out" 2> /dev/null && break
    sleep 0.05
done
addr=$(head -n 1 "$work/listen.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["addrs"][0])')

case $direction in
    up) args=(--upload-bytes "$bytes" --download-bytes 0) ;;
    down) args=(--upload-bytes 0 --download-bytes "$bytes") ;;
    *) echo "cpu_split.sh: direction is up or down, not $direction" >&2; exit 1 ;;
esac
perf record -a -F 10000 -o "$work/perf.data" -- "$node" perf --addr "$addr" --bare "${args[@]}" \
    > "$work/perf.out" 2> /dev/null
# The listener's threads, to tell its samples from the dialer's.
ls "/proc/$listener/task" > "$work/listener-threads"
perf report -i "$work/perf.data" --no-children --sort pid,dso,sym --stdio -g none 2> /dev/null |
    grep '%' > "$work/report.txt" || true

python3 - "$work/report.txt" "$work/perf.out" "$direction" "$bytes" "$work/listener-threads" << 'PY'
import collections, json, re, sys

report, perf_out, direction, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
listener_threads = set(open(sys.argv[5]).read().split())
event = json.loads(open(perf_out).read().strip().splitlines()[-1])
seconds = event["seconds"]

def category(kind, dso, symbol):
    s = symbol.lower()
    if kind == "k":
        return "kernel"
    if any(k in s for k in ("chacha", "poly1305", "ring_core", "_mm256", "xor_in2out", "proc_par_blocks")):
        return "AEAD"
    if "memmove" in s or "memcpy" in s:
        return "memcpy"
    return "rest (lp2p, runtime, libc)"

line = re.compile(r"\s*([\d.]+)%\s+(\d+):(\S+)\s+(\S+)\s+\[(.)\]\s+(.*)")
split = collections.defaultdict(collections.Counter)
total = collections.Counter()
for text in open(report):
    m = line.match(text)
    if not m:
        continue
    share, thread, comm, dso, kind, symbol = m.groups()
    # lp2p-node's threads: async-std's executor and async-io's reactor helper.
    if not comm.startswith(("async-std", "async-io", "lp2p-node")):
        continue
    split[thread][category(kind, dso, symbol)] += float(share)
    total[thread] += float(share)

# Per side (all of its threads), as a share of that side's own samples.
sides = {"listener": collections.Counter(), "dialer": collections.Counter()}
for thread, counts in split.items():
    sides["listener" if thread in listener_threads else "dialer"].update(counts)
receiver = "listener" if direction == "up" else "dialer"
print(f"{direction}: {size / 2**20 / seconds:,.0f} MiB/s ({size / 2**30:g} GiB in {seconds:.2f} s)")
print("side                share of all samples     AEAD   kernel   memcpy     rest")
for side, counts in sides.items():
    t = sum(counts.values())
    if t == 0:
        continue
    role = "receiver" if side == receiver else "sender"
    cells = [counts["AEAD"], counts["kernel"], counts["memcpy"], counts["rest (lp2p, runtime, libc)"]]
    print(f"{side + ' (' + role + ')':<20} {t:>5.1f}%              "
          + " ".join(f"{100 * v / t:>7.1f}%" for v in cells))
print("(all samples of both CPUs: a side that is busy the whole time has about 50%)")
PY
