#!/usr/bin/env python3
"""Renders docs/benchmarks.md from the logs `report.sh` collected.

Usage: report.py RUN_DIR > benchmarks.md

RUN_DIR holds one log per bench run (`<run>.log`, the bench's whole stdout; only its JSON
lines are read) and `meta.json`, written by report.sh: the machine, the commit, the load
averages, the commands. Every figure in the output comes from those files; nothing is
typed in by hand. Goals are issue 18's (and issue 14's for Kademlia).
"""

import json
import math
import sys
from pathlib import Path

# Run names report.sh uses, in the order of the document.
LOOPBACK = "loopback"
RING = "noise-ring"
RTT_RUNS = ["rtt30", "rtt100"]
GOSSIP = "gossip"
KAD = "kad"
KAD_DEFAULTS = "kad-defaults"
RELAY = "relay"

TRANSPORT_NAMES = {
    "tcp": "TCP + noise + yamux",
    "quic": "QUIC v1",
    "ws": "WebSocket `/ws` + noise + yamux",
}

WHOLE_STACK_LABELS = {
    "upload_throughput": "upload throughput, MiB/s",
    "download_throughput": "download throughput, MiB/s",
    "upload_receiver_cpu_per_gib": "receiver CPU per GiB, upload (listener), s",
    "download_receiver_cpu_per_gib": "receiver CPU per GiB, download (client), s",
    "listener_rss_per_idle_connection": "listener RSS per idle connection, KiB",
    "connections_per_second": "new connections per second (dial, upgrade, ping, close)",
    "first_ping_p50": "time to first ping, p50, ms",
}

GOSSIP_LABELS = {
    "latency_p50_ms": ("delivery latency p50, ms", "lower"),
    "latency_p99_ms": ("delivery latency p99, ms", "lower"),
    "rss_peak_mib": ("peak RSS per node (VmHWM), median, MiB", "lower"),
    "rss_final_mib": ("final RSS per node (VmRSS), median, MiB", "lower"),
    "cpu_s": ("CPU per node over the timed window, median, s", "lower"),
    "delivered": ("messages delivered", "higher"),
    "expected": ("messages expected (published x (nodes - 1))", None),
    "delivered_min_node": ("fewest messages delivered at one node", "higher"),
    "lost": ("messages that reached no node", "lower"),
    "duplicates": ("duplicate message events", "lower"),
    "publish_rate": ("publishing rate achieved, msg/s", "higher"),
}

RELAY_LABELS = {
    "upload_throughput": "upload throughput through the relay, MiB/s",
    "download_throughput": "download throughput through the relay, MiB/s",
    "relay_cpu_per_gib": "relay CPU per GiB relayed, s",
    "circuits_per_second": "new relayed connections per second (circuit, upgrade, echo, close)",
    "first_echo_p50": "time to first echo through the relay, p50, ms",
}

# Gossip measures that count events: printed without decimals.
GOSSIP_COUNTS = {"delivered", "expected", "delivered_min_node", "lost", "duplicates"}


def read_lines(path):
    """The bench's JSON lines in `path`; [] if the run did not happen."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith('{"bench"'):
            rows.append(json.loads(line))
    return rows


def num(value, decimals=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{decimals}f}"


def advantage(row):
    """How many times better lp2p is (above 1: lp2p better), or None."""
    lp2p, rust = row.get("lp2p"), row.get("rust")
    if lp2p is None or rust is None or lp2p == 0 or rust == 0:
        return None
    return lp2p / rust if row.get("better") == "higher" else rust / lp2p


def times(value):
    return "n/a" if value is None else f"{value:.2f}x"


class Goals:
    """Goal rows: (measure, goal, figure, met)."""

    def __init__(self, judged):
        self.rows = []
        self.judged = judged

    def add(self, what, goal, figure, met):
        if not self.judged:
            mark = "not judged (smoke run)"
        else:
            mark = "n/a" if met is None else ("**met**" if met else "not met")
        self.rows.append((what, goal, figure, mark))


def in_flight(row):
    """How many requests each side of a kad_network run kept in flight per lookup."""
    rust = row.get("rust_parallelism", "n/a")
    lp2p = row.get("lp2p_alpha", "n/a")
    rust_text = f"{rust} (its default)" if row.get("rust_default") else str(rust)
    return f"lp2p {lp2p} / rust-libp2p {rust_text} requests in flight"


def find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    return None


def whole_stack_tables(out, rows, title_suffix=""):
    transports = []
    for row in rows:
        if row["transport"] not in transports:
            transports.append(row["transport"])
    for transport in transports:
        out.append(f"#### {TRANSPORT_NAMES[transport]}{title_suffix}\n")
        out.append("| measure | lp2p | rust-libp2p | lp2p better by |")
        out.append("|---|---:|---:|---:|")
        for row in rows:
            if row["transport"] != transport:
                continue
            if row.get("lp2p") is None and row.get("rust") is None:
                continue
            label = WHOLE_STACK_LABELS.get(row["measure"], row["measure"])
            out.append(
                f"| {label} | {num(row['lp2p'])} | {num(row['rust'])} | {times(advantage(row))} |"
            )
        out.append("")


def run_params(rows):
    if not rows:
        return ""
    r = rows[0]
    parts = [f"{r['rounds']} interleaved rounds", f"perf {r['perf_mib']} MiB each way"]
    if r.get("hold"):
        parts.append(f"{r['hold']} idle connections held")
    parts.append(f"{r.get('conns', 200)} connections per conn-bench")
    return ", ".join(parts)


def main():
    run = Path(sys.argv[1])
    meta = json.loads((run / "meta.json").read_text())
    loop = read_lines(run / f"{LOOPBACK}.log")
    ring = read_lines(run / f"{RING}.log")
    rtts = {name: read_lines(run / f"{name}.log") for name in RTT_RUNS}
    gossip = read_lines(run / f"{GOSSIP}.log")
    kad = read_lines(run / f"{KAD}.log")
    kad_defaults = read_lines(run / f"{KAD_DEFAULTS}.log")
    relay = read_lines(run / f"{RELAY}.log")
    # A run that left a log but no figures broke somewhere: say so rather than print a
    # report without it.
    for log in sorted(run.glob("*.log")):
        if not read_lines(log):
            sys.exit(f"report.py: {log} has no JSON lines; see the log for what failed")

    out = []
    out.append("# Benchmarks: lp2p against rust-libp2p 0.57, same machine, same run\n")
    out.append(
        "Generated by `bash interop/benches/report.sh` (" + meta["mode"] + " mode); do not edit by "
        "hand, rerun the command. Every figure is the median over interleaved rounds in which "
        "lp2p-node and rust-libp2p-node (rust-libp2p 0.57 from crates.io, the interop peer "
        "program) alternate, so machine noise hits both alike. \"lp2p better by\" is above 1 "
        "when lp2p is faster or uses less.\n"
    )
    if meta["mode"] != "full":
        out.append(
            "**Smoke run**: debug builds and a few seconds per bench, to check that the benches "
            "and this report work. The figures mean nothing.\n"
        )

    out.append("## Machine and run\n")
    out.append("| | |")
    out.append("|---|---|")
    for key, label in [
        ("date", "date (UTC)"),
        ("commit", "lp2p commit"),
        ("cpu", "CPU"),
        ("cores", "cores"),
        ("memory", "memory"),
        ("kernel", "kernel"),
        ("rustc", "rustc"),
        ("load_before", "load average before"),
        ("load_after", "load average after"),
        ("minutes", "run took, minutes"),
    ]:
        out.append(f"| {label} | {meta.get(key, 'n/a')} |")
    out.append("")

    # Goals first: the summary a reader wants.
    goals = Goals(judged=meta["mode"] == "full")
    tcp = lambda rows, m: find(rows, transport="tcp", measure=m)  # noqa: E731
    for m in ["upload_throughput", "download_throughput"]:
        row = tcp(ring, m)
        if row:
            adv = advantage(row)
            goals.add(
                f"TCP {m.split('_')[0]} throughput, lp2p with `noise-ring`",
                ">= 2x rust-libp2p",
                f"{num(row['lp2p'])} vs {num(row['rust'])} MiB/s, {times(adv)}",
                adv is not None and adv >= 2.0,
            )
    for m, direction in [
        ("upload_receiver_cpu_per_gib", "upload"),
        ("download_receiver_cpu_per_gib", "download"),
    ]:
        row = tcp(loop, m)
        if row:
            goals.add(
                f"TCP receiver CPU per GiB, {direction}",
                "<= 0.9 s",
                f"{num(row['lp2p'])} s (rust-libp2p {num(row['rust'])} s)",
                row["lp2p"] is not None and row["lp2p"] <= 0.9,
            )
    row = tcp(loop, "connections_per_second")
    if row:
        adv = advantage(row)
        goals.add(
            "TCP new connections per second",
            ">= 700/s and >= 1.6x",
            f"{num(row['lp2p'], 0)} vs {num(row['rust'], 0)}, {times(adv)}",
            row["lp2p"] >= 700 and adv is not None and adv >= 1.6,
        )
    row = tcp(loop, "first_ping_p50")
    if row:
        # Both halves of the goal, as for the connection rate: the table asks for
        # 1.0 ms and for half of rust-libp2p's time.
        goals.add(
            "TCP time to first ping, p50",
            "<= 1.0 ms and <= 0.5x",
            f"{num(row['lp2p'])} vs {num(row['rust'])} ms, "
            f"{num(row['lp2p'] / row['rust'])}x",
            row["lp2p"] <= 1.0 and row["lp2p"] <= 0.5 * row["rust"],
        )
    row = tcp(loop, "listener_rss_per_idle_connection")
    if row and row.get("lp2p") is not None:
        goals.add(
            "TCP listener RSS per idle connection",
            "<= 16 KiB",
            f"{num(row['lp2p'], 1)} vs {num(row['rust'], 1)} KiB",
            row["lp2p"] <= 16,
        )
    # Issue 12's goals for QUIC: throughput against rust-libp2p's QUIC and against lp2p's
    # own TCP + noise + yamux, and a first ping below lp2p's TCP one ("since QUIC saves a
    # round trip"), on loopback and on each emulated path.
    quic = lambda rows, m: find(rows, transport="quic", measure=m)  # noqa: E731
    for m in ["upload_throughput", "download_throughput"]:
        q, t = quic(loop, m), tcp(loop, m)
        if q and t and q["lp2p"] is not None and t["lp2p"]:
            adv = advantage(q)
            of_tcp = q["lp2p"] / t["lp2p"]
            goals.add(
                f"QUIC {m.split('_')[0]} throughput (issue 12)",
                ">= 1.5x rust-libp2p's QUIC and >= 70 % of lp2p's TCP",
                f"{num(q['lp2p'])} vs {num(q['rust'])} MiB/s, {times(adv)}; "
                f"{of_tcp * 100:.0f} % of lp2p's TCP ({num(t['lp2p'])})",
                adv is not None and adv >= 1.5 and of_tcp >= 0.7,
            )
    for name, rows in [("loopback", loop)] + [
        (f"{r[0]['rtt_ms']} ms RTT", r) for r in rtts.values() if r
    ]:
        q, t = quic(rows, "first_ping_p50"), tcp(rows, "first_ping_p50")
        if q and t and q["lp2p"] is not None and t["lp2p"] is not None:
            goals.add(
                f"QUIC time to first ping, p50, {name} (issue 12)",
                "< lp2p's TCP",
                f"lp2p QUIC {num(q['lp2p'])} vs lp2p TCP {num(t['lp2p'])} ms "
                f"(rust-libp2p QUIC {num(q['rust'])})",
                q["lp2p"] < t["lp2p"],
            )
    for name, rows in rtts.items():
        for t in ["tcp", "quic"]:
            for m in ["upload_throughput", "download_throughput"]:
                row = find(rows, transport=t, measure=m)
                if row:
                    adv = advantage(row)
                    # Through a bottleneck both stacks may fill the link: medians 0.1 %
                    # apart are a tie, not a miss, so 1 % is allowed (the figures show it).
                    goals.add(
                        f"{t.upper()} {m.split('_')[0]} at {row['rtt_ms']} ms RTT, "
                        f"{row['mbit']} Mbit/s",
                        ">= rust-libp2p (within 1 %)",
                        f"{num(row['lp2p'])} vs {num(row['rust'])} MiB/s, {times(adv)}",
                        adv is not None and adv >= 0.99,
                    )
    for scenario, checks in [
        ("large", [("rss_peak_mib", "<= rust-libp2p", 1.0), ("latency_p99_ms", "<= 0.5x", 0.5)]),
        (
            "small",
            [
                ("latency_p50_ms", "<= 0.5x", 0.5),
                ("latency_p99_ms", "<= 0.5x", 0.5),
                ("cpu_s", "<= 0.5x", 0.5),
            ],
        ),
    ]:
        for m, goal, limit in checks:
            row = find(gossip, scenario=scenario, measure=m)
            if row:
                ratio = row["ratio"]
                goals.add(
                    f"gossipsub {scenario}: {GOSSIP_LABELS[m][0]}",
                    goal,
                    f"{num(row['lp2p'])} vs {num(row['rust'])}, {num(ratio)}x",
                    ratio is not None and ratio <= limit,
                )
    for op in ["find-peer", "get-value"]:
        for m in ["p50_ms", "p99_ms"]:
            row = find(kad, operation=op, measure=m)
            if row:
                goals.add(
                    f"Kademlia {op} latency {m[:3]} (issue 14; {in_flight(row)})",
                    "<= 0.5x",
                    f"{num(row['lp2p'])} vs {num(row['rust'])} ms, {num(row['ratio'])}x",
                    row["ratio"] is not None and row["ratio"] <= 0.5,
                )
    for m in ["p50_ms", "p99_ms"]:
        row = find(kad_defaults, operation="get-value", measure=m)
        if row:
            goals.add(
                f"Kademlia get-value latency {m[:3]} ({in_flight(row)}; information, D77)",
                "none",
                f"{num(row['lp2p'])} vs {num(row['rust'])} ms, {num(row['ratio'])}x",
                None,
            )
    out.append("## Goals\n")
    out.append(
        "Ratios in the figure column are lp2p / rust-libp2p unless marked \"better by\" "
        "(`Nx` after a throughput or rate is how many times lp2p's figure is rust-libp2p's).\n"
    )
    out.append("| measure | goal | lp2p vs rust-libp2p | |")
    out.append("|---|---|---|---|")
    for what, goal, figure, mark in goals.rows:
        out.append(f"| {what} | {goal} | {figure} | {mark} |")
    out.append("")
    out.append(
        "For the goals of issue 18 that are not met, "
        "[performance-floors.md](performance-floors.md) says what a profile shows bounds "
        "them and how much of the cost is lp2p's own. QUIC's first ping on loopback "
        "(issue 12): there is no round trip for QUIC to save, and TLS 1.3 signs and checks a "
        "handshake signature on each side of every connection, which lp2p's noise skips on "
        "a repeat connection to a peer it remembers (decision D74 in "
        "[decisions.md](decisions.md) measures it; D41, D60 and D61 the rest).\n"
    )

    out.append("## Whole stack on loopback\n")
    out.append(
        "`interop/benches/whole_stack.rs`: each implementation's node serves itself on "
        f"127.0.0.1; {run_params(loop)}. Its module docs say how each row is measured.\n"
    )
    whole_stack_tables(out, loop)
    if ring:
        out.append("### lp2p with the `noise-ring` feature\n")
        out.append(
            "The same bench against an lp2p-node built with `--features noise-ring` (ring's "
            f"ChaCha20-Poly1305 in noise; the default build uses RustCrypto's); {run_params(ring)}.\n"
        )
        whole_stack_tables(out, ring, ", lp2p built with `noise-ring`")
    for name, rows in rtts.items():
        if not rows:
            continue
        r = rows[0]
        out.append(f"## Whole stack at {r['rtt_ms']} ms RTT, {r['mbit']} Mbit/s\n")
        out.append(
            "Through the bench's emulated path (`interop/benches/whole_stack/delay.rs`): "
            f"{r['rtt_ms']} ms added to every round trip and a {r['mbit']} Mbit/s bottleneck "
            "in each direction with a queue of one bandwidth-delay product; "
            f"{run_params(rows)}. Throughput here shows how fast each stack's flow control "
            "opens to the path's capacity (the perf figure includes the connection setup).\n"
        )
        whole_stack_tables(out, rows)

    if gossip:
        out.append("## Gossipsub networks\n")
        out.append(
            "`interop/benches/gossip.rs`: a network of lp2p-node and one of rust-libp2p-node "
            "(libp2p-gossipsub 0.50), same graph and identities, publishing in alternating "
            "slices. Latency, memory and CPU: \"lp2p better by\" above 1 when lp2p's is lower. "
            "Read the latencies next to the delivery counts: they are of delivered messages only.\n"
        )
        scenarios = []
        for row in gossip:
            if row["scenario"] not in scenarios:
                scenarios.append(row["scenario"])
        for scenario in scenarios:
            first = find(gossip, scenario=scenario)
            out.append(
                f"#### {scenario}: {first['nodes']} nodes, {first['rate']} msg/s of "
                f"{first['bytes']:,} bytes, {first['seconds']} s per implementation\n"
            )
            out.append("| measure | lp2p | rust-libp2p | lp2p better by |")
            out.append("|---|---:|---:|---:|")
            for row in gossip:
                if row["scenario"] != scenario:
                    continue
                label, better = GOSSIP_LABELS.get(row["measure"], (row["measure"], None))
                decimals = 0 if row["measure"] in GOSSIP_COUNTS else 2
                adv = advantage(dict(row, better=better)) if better else None
                out.append(
                    f"| {label} | {num(row['lp2p'], decimals)} | {num(row['rust'], decimals)} "
                    f"| {times(adv)} |"
                )
            out.append("")

    if kad:
        first = kad[0]
        out.append("## Kademlia networks\n")
        out.append(
            f"`interop/benches/kad_network.rs`: {first['nodes']} lp2p-node against "
            f"{first['nodes']} rust-libp2p-node (libp2p-kad 0.49) server-mode listeners, "
            f"{first['ops']} operations of each kind per network, each started 5 ms after the answer to the one "
            "before, latency timed by the runner; a get-value ends at the first valid record in both. "
            "Ratio lp2p / rust-libp2p (below 1: lp2p faster). The first table is issue 14's "
            f"comparison: both keep the same number of requests in flight per lookup, lp2p's alpha "
            f"of {first.get('lp2p_alpha', 'n/a')}. A second table, when there is one, runs "
            "rust-libp2p at libp2p-kad's own default, so it sends fewer requests per lookup than "
            "lp2p; it is there for readers who compare defaults (D77).\n"
        )
        for rows in [kad, kad_defaults]:
            if not rows:
                continue
            out.append(f"With {in_flight(rows[0])}:\n")
            out.append("| operation | measure | lp2p, ms | rust-libp2p, ms | lp2p / rust | failed lp2p / rust |")
            out.append("|---|---|---:|---:|---:|---:|")
            for row in rows:
                out.append(
                    f"| {row['operation']} | {row['measure'][:3]} | {num(row['lp2p'])} | "
                    f"{num(row['rust'])} | {num(row['ratio'])} | "
                    f"{row['failed_lp2p']} / {row['failed_rust']} |"
                )
            out.append("")

    if relay:
        first = relay[0]
        out.append("## Circuit relay v2\n")
        out.append(
            "`interop/benches/relay.rs`: per implementation a relay (`listen --relay-service`, "
            "circuit data and duration limits lifted), a listener reserving a slot on it and "
            "clients dialing its `/p2p-circuit` address, all of the same implementation "
            "(rust-libp2p: libp2p-relay 0.22, its rate limiters off), TCP + noise + yamux to "
            f"the relay and inside the circuit on 127.0.0.1; {first['rounds']} interleaved "
            f"rounds, perf {first['perf_mib']} MiB each way, {first['circuits']} circuits per "
            "conn-bench. Its module docs say how each row is measured.\n"
        )
        out.append("| measure | lp2p | rust-libp2p | lp2p better by |")
        out.append("|---|---:|---:|---:|")
        for row in relay:
            label = RELAY_LABELS.get(row["measure"], row["measure"])
            out.append(
                f"| {label} | {num(row['lp2p'])} | {num(row['rust'])} | {times(advantage(row))} |"
            )
        out.append("")

    out.append("## Commands\n")
    for command in meta.get("commands", []):
        out.append(f"- `{command}`")
    out.append("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
