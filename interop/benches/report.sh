#!/usr/bin/env bash
# Runs the interop benches (lp2p against rust-libp2p 0.57, same machine, same run) and
# writes docs/benchmarks.md from their JSON lines (interop/benches/report.py renders it).
#
#   bash interop/benches/report.sh [OUTPUT]        # OUTPUT defaults to docs/benchmarks.md
#
# The runs, one after another (18 minutes on the 2-core machine, 2026-12-04):
#   loopback    whole_stack over TCP, QUIC and WebSocket on 127.0.0.1 (its defaults: 5
#               rounds, 1 GiB each way, 1,000 idle connections, 200-connection conn-benches)
#   noise-ring  whole_stack over TCP with an lp2p-node built with `--features noise-ring`
#   rtt30       whole_stack through the emulated path: 30 ms RTT, 100 Mbit/s
#   rtt100      the same at 100 ms RTT
#   gossip      the gossipsub networks (both scenarios, 20 s each)
#   kad         the Kademlia networks (50 + 50 nodes, 200 operations of each kind), both
#               with 10 requests in flight per lookup (lp2p's alpha; issue 14's goals)
#   kad-defaults the same with rust-libp2p at its own default of 3 (informational, D77)
#   relay       circuit relay v2 through each implementation's relay (5 rounds, 256 MiB
#               each way, 100-circuit conn-benches)
# Each run's whole output is kept in the run directory (printed at the end).
#
# BENCH_SMOKE=1 runs every bench for a few seconds on debug builds instead, to check that the
# benches and this report still work (CI does this; no timing is judged). LP2P_NODE must then
# name a debug lp2p-node, and OUTPUT defaults to a file in the run directory.
#
# Uses cargo's CARGO_TARGET_DIR as given (interop/ is its own workspace); keep the machine
# otherwise idle during a full run: the figures are medians, not miracles.
set -euo pipefail

interop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=$(cd "$interop/.." && pwd)
smoke=${BENCH_SMOKE:-0}
run=${BENCH_RUN_DIR:-$(mktemp -d -t lp2p-bench-XXXXXX)}
mkdir -p "$run"
if [ "$smoke" = 1 ]; then
    out=${1:-$run/benchmarks.md}
    : "${LP2P_NODE:?BENCH_SMOKE=1 needs LP2P_NODE (a debug lp2p-node)}"
else
    out=${1:-$root/docs/benchmarks.md}
fi
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commands=()

# bench RUN NAME [VAR=VALUE...]: one bench run, its output in $run/RUN.log.
bench() {
    local name=$1 target=$2
    shift 2
    local cmd
    if [ "$smoke" = 1 ]; then
        # A debug build of the bench (the test profile): cargo test runs a harness-less bench's
        # main with the arguments after --, and the benches only run when given --bench.
        cmd="cargo test --bench $target -- --bench"
    else
        cmd="cargo bench --bench $target"
    fi
    commands+=("cd interop && $* $cmd")
    echo "=== $name: $* $cmd" >&2
    (cd "$interop" && env "$@" $cmd) 2>&1 | tee "$run/$name.log" >&2
}

if [ "$smoke" = 1 ]; then
    node=$LP2P_NODE
    bench loopback whole_stack LP2P_NODE="$node" WHOLE_STACK_ROUNDS=1 WHOLE_STACK_PERF_MIB=4 \
        WHOLE_STACK_HOLD=20 WHOLE_STACK_CONNS=5
    bench rtt30 whole_stack LP2P_NODE="$node" WHOLE_STACK_ROUNDS=1 WHOLE_STACK_PERF_MIB=2 \
        WHOLE_STACK_HOLD=0 WHOLE_STACK_CONNS=3 WHOLE_STACK_RTT_MS=30 WHOLE_STACK_MBIT=100 \
        WHOLE_STACK_TRANSPORTS=tcp,quic
    bench gossip gossip LP2P_NODE="$node" GOSSIP_BENCH_SECONDS=2 GOSSIP_BENCH_SCENARIOS=small
    bench kad kad_network LP2P_NODE="$node" KAD_BENCH_NODES=6 KAD_BENCH_OPS=3 KAD_BENCH_SETTLE=2
    bench relay relay LP2P_NODE="$node" RELAY_ROUNDS=1 RELAY_PERF_MIB=1 RELAY_CIRCUITS=3
else
    # Both lp2p-node builds up front, copied out of the target directory, so the second build
    # does not replace the first and no bench run waits on a build.
    build_node() { # build_node DEST [cargo build args...]
        local dest=$1
        shift
        (cd "$root" && cargo build --release -p lp2p-node "$@" --message-format=json-render-diagnostics) |
            python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "lp2p-node" and m.get("executable"):
        print(m["executable"])' | tail -n 1 | xargs -I{} cp {} "$dest"
        test -x "$dest"
    }
    build_node "$run/lp2p-node"
    build_node "$run/lp2p-node-noise-ring" --features noise-ring
    # rust-libp2p-node's release build, before any timing starts.
    (cd "$interop" && cargo bench --no-run --bench whole_stack --bench gossip --bench kad_network \
        --bench relay)
    bench loopback whole_stack LP2P_NODE="$run/lp2p-node"
    bench noise-ring whole_stack LP2P_NODE="$run/lp2p-node-noise-ring" WHOLE_STACK_TRANSPORTS=tcp \
        WHOLE_STACK_HOLD=0 WHOLE_STACK_LABEL=noise-ring
    # 64 MiB take about 5.4 s at 100 Mbit/s: long enough that the window's growth over the
    # first round trips is part of the figure but does not dominate it. 20 connections of a
    # few round trips each keep the 100 ms run's conn-benches near 10 s.
    for rtt in 30 100; do
        bench "rtt$rtt" whole_stack LP2P_NODE="$run/lp2p-node" WHOLE_STACK_ROUNDS=3 \
            WHOLE_STACK_PERF_MIB=64 WHOLE_STACK_HOLD=0 WHOLE_STACK_CONNS=20 \
            WHOLE_STACK_RTT_MS=$rtt WHOLE_STACK_MBIT=100
    done
    bench gossip gossip LP2P_NODE="$run/lp2p-node"
    bench kad kad_network LP2P_NODE="$run/lp2p-node"
    bench kad-defaults kad_network LP2P_NODE="$run/lp2p-node" KAD_BENCH_RUST_PARALLELISM=default
    bench relay relay LP2P_NODE="$run/lp2p-node"
fi

python3 - "$run/meta.json" "$smoke" "$started" "$load_before" "$root" "${commands[@]}" <<'EOF'
import json, os, platform, subprocess, sys, time
path, smoke, started, load_before, root, *commands = sys.argv[1:]
def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, cwd=root).stdout.strip()
    except OSError:
        return "n/a"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "n/a")
mem_kib = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
meta = {
    "mode": "smoke" if smoke == "1" else "full",
    "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(started))),
    "commit": sh("git", "rev-parse", "--short=12", "HEAD") + (" (with uncommitted changes)" if sh("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md") else ""),
    "cpu": cpu,
    "cores": os.cpu_count(),
    "memory": f"{mem_kib / 2**20:.1f} GiB",
    "kernel": platform.release(),
    "rustc": sh("rustc", "--version"),
    "load_before": load_before,
    "load_after": " ".join(open("/proc/loadavg").read().split()[:3]),
    "minutes": f"{(time.time() - int(started)) / 60:.0f}",
    "commands": ["bash interop/benches/report.sh"] + commands,
}
json.dump(meta, open(path, "w"), indent=1)
EOF
python3 "$interop/benches/report.py" "$run" > "$out"
echo "wrote $out (run logs in $run)"
