#!/usr/bin/env bash
# Traces the get-value phase of the Kademlia network bench system-wide and prints, per lp2p
# get, when the asker read its stdin line, wrote its requests, read its first answer and
# printed the result, and how long it was held off its core (decision D77).
#
#   bash interop/benches/kad_trace.sh LP2P_NODE [OUT_PREFIX]
#
# Runs `cargo bench --bench kad_network` with 40 operations of each kind and records
# `sched_switch`, `sched_wakeup` and the socket and pipe system calls with `perf` (root
# needed) from "put done" to "get-value done"; then `kad_trace.py` reads the trace. Tracing
# slows every process down, so read the figures as a timeline, not as latencies.
set -euo pipefail
node=$1
out=${2:-/tmp/kad-trace}
interop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
events=sched:sched_switch,sched:sched_wakeup
for s in sendto write writev; do events=$events,syscalls:sys_enter_$s; done
for s in recvfrom read readv epoll_wait; do events=$events,syscalls:sys_exit_$s; done
(cd "$interop" && LP2P_NODE=$node KAD_BENCH_OPS=40 cargo bench --bench kad_network \
    > "$out.out" 2> "$out.err") &
bench=$!
until grep -q "put done" "$out.out" 2>/dev/null; do sleep 0.05; done
perf record -q -a -e "$events" --exclude-perf -o "$out.data" > /dev/null 2>&1 &
perf=$!
until grep -q "get-value done" "$out.out" 2>/dev/null; do sleep 0.05; done
kill -INT $perf
wait $perf || true
wait $bench
perf script -i "$out.data" -F comm,pid,tid,cpu,time,event,trace > "$out.txt" 2> /dev/null
python3 "$interop/benches/kad_trace.py" "$out.txt"
