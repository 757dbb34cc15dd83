#!/usr/bin/env python3
"""Remote Kademlia gets from one asker, for profiling the asking side (decision D77).

    python3 interop/benches/kad_asker.py LP2P_NODE

Starts NODES (default 30) `lp2p-node listen --kad server` processes on 127.0.0.1, each
bootstrapping from up to 3 earlier ones (fixed seed), stores OPS (default 300) records
through them, then starts one more node, the asker, which holds none of the records. The
asker reads every record (`kad-get`), GAP seconds (default 0.005) apart, and the script
prints the runner-timed latency quantiles and the peers queried per get.

PERF=stat wraps the asker in `perf stat` (sendto calls, task-clock and context switches
per get); PERF=1 records a flat `perf record` CPU profile of it, PERF=g one with DWARF
call graphs (PERFOUT names the file, default asker.data). Every process ends with the
script.
"""
import json
import os
import random
import select
import subprocess
import sys
import time

BIN = sys.argv[1]
NODES = int(os.environ.get("NODES", "30"))
OPS = int(os.environ.get("OPS", "300"))
GAP = float(os.environ.get("GAP", "0.005"))
PERF = os.environ.get("PERF")
PERFOUT = os.environ.get("PERFOUT", "asker.data")


class Node:
    def __init__(self, seed, connect):
        args = [BIN, "listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--kad", "server",
                "--key-seed", str(seed), "--timeout", "600"]
        for addr in connect:
            args += ["--connect", addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        _, event = self.until(lambda e: e.get("event") == "listening")
        self.addr = event["addrs"][0]
        self.peer = event["peer_id"]

    def until(self, wanted):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if wanted(event):
                    return time.perf_counter(), event
            select.select([self.fd], [], [])
            self.buf += os.read(self.fd, 65536)

    def op(self, line):
        """Writes a stdin line in one write; the milliseconds to its `kad` event, and it."""
        started = time.perf_counter()
        os.write(self.proc.stdin.fileno(), (line + "\n").encode())
        at, event = self.until(lambda e: e.get("event") == "kad")
        return (at - started) * 1000, event


def main():
    rng = random.Random(7)
    nodes = []
    try:
        for i in range(NODES):
            connect = [nodes[j].addr for j in rng.sample(range(i), min(3, i))]
            nodes.append(Node(100 + i, connect))
        time.sleep(4)
        for k in range(OPS):
            nodes[k % NODES].op(f"kad-put k{k} v{k}")
        asker = Node(999, [n.addr for n in nodes[:3]])
        nodes.append(asker)
        time.sleep(4)
        asker.op(f"kad-find-peer {nodes[NODES - 1].peer}")
        time.sleep(1)
        perf = None
        if PERF == "stat":
            perf = subprocess.Popen(["perf", "stat", "-x,", "-o", "perf-stat.txt", "-e",
                                     "syscalls:sys_enter_sendto,task-clock,context-switches",
                                     "-p", str(asker.proc.pid)], stderr=subprocess.DEVNULL)
        elif PERF:
            graph = ["--call-graph", "dwarf,16384"] if PERF == "g" else []
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "20000", "-e", "cpu-clock"]
                                    + graph + ["-p", str(asker.proc.pid), "-o", PERFOUT],
                                    stderr=subprocess.DEVNULL)
        if perf:
            time.sleep(1)
        latencies, queried = [], []
        for k in range(OPS):
            time.sleep(GAP)
            ms, event = asker.op(f"kad-get k{k}")
            if not event.get("ok"):
                sys.exit(f"kad-get k{k} failed: {event}")
            latencies.append(ms)
            queried.append(event.get("queried") or 0)
        if perf:
            perf.send_signal(2)
            perf.wait()
        if PERF == "stat":
            for line in open("perf-stat.txt"):
                fields = line.split(",")
                if len(fields) > 2 and fields[0].replace(".", "").isdigit():
                    print(f"{fields[2]}: {float(fields[0]) / OPS:.2f} per get")
        latencies.sort()
        queried.sort()
        q = lambda xs, f: xs[int(f * (len(xs) - 1))]
        print(f"{OPS} remote gets, peers queried p50 {q(queried, 0.5)}, ms p10 "
              f"{q(latencies, 0.1):.3f} p50 {q(latencies, 0.5):.3f} p90 {q(latencies, 0.9):.3f} "
              f"p99 {q(latencies, 0.99):.3f}")
    finally:
        for node in nodes:
            node.proc.kill()
            node.proc.wait()


if __name__ == "__main__":
    main()
