#!/usr/bin/env python3
"""Reads the `perf script` text `kad_trace.sh` writes; one line per lp2p get-value.

Columns, in microseconds from the runner's write of the stdin line: the asker's read of the
line (`stdin`), its first request written (`send1`), requests written before the result
(`sends<out`, of all it wrote in the window), its first answer read (`recv1`), the result
written to stdout (`out`), the runner's read of it (`end`), and the time the asker's
executor thread spent runnable but off its core (`held off`, from `sched_switch` with
`prev_state=R` to its next switch in). A lookup's request is 92 bytes on the wire, an answer
with a record over 500.
"""
import re
import sys

LINE = re.compile(r"\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)")
SWITCH = re.compile(r"prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=.*? next_pid=(\d+)")
LP2P_THREADS = ("async-std/runti", "async-io")
REQUEST_LEN = "len: 0x0000005c"


def events(path):
    for line in open(path):
        m = LINE.match(line)
        if m:
            comm, pid, tid, _cpu, t, name, rest = m.groups()
            yield float(t), comm, int(pid), int(tid), name.split(":")[-1], rest


def is_runner(comm):
    return comm.startswith("kad_network")


def main():
    ev = list(events(sys.argv[1]))
    lp2p = {p for _, c, p, _, _, _ in ev if c in LP2P_THREADS}
    print("  stdin  send1 sends<out  recv1    out    end  held off")
    for i, (t0, comm, _, _, name, rest) in enumerate(ev):
        # The runner writes each line in one write to the node's stdin (not to its stderr).
        if not (is_runner(comm) and name == "sys_enter_write" and "fd: 0x00000002" not in rest):
            continue
        # The node that reads the line next (within 10 ms) is the asker.
        asker = None
        for t, c, p, _, n, _ in ev[i + 1:]:
            if t - t0 > 0.01:
                break
            if n == "sys_exit_read" and not is_runner(c) and p:
                asker = p
                break
        if asker not in lp2p:
            continue
        stdin = send1 = recv1 = out = end = None
        sends = []
        off, held = {}, 0.0
        for t, c, p, tid, n, r in ev[i + 1:]:
            us = (t - t0) * 1e6
            if us > 20000:
                break
            if p == asker:
                if n == "sys_exit_read" and stdin is None and not r.startswith("0xffff"):
                    stdin = us
                if n == "sys_enter_sendto" and REQUEST_LEN in r:
                    sends.append(us)
                if (n == "sys_exit_recvfrom" and recv1 is None and not r.startswith("0xffff")
                        and int(r, 16) > 500):
                    recv1 = us
                if n == "sys_enter_write" and "fd: 0x00000001" in r and out is None:
                    out = us
            if n == "sched_switch":
                m = SWITCH.search(r)
                if m:
                    prev, state, nxt = int(m.group(1)), m.group(2), int(m.group(3))
                    if p == asker and c == "async-std/runti" and state.startswith("R"):
                        off[prev] = t
                    if nxt in off:
                        held += t - off.pop(nxt)
            if is_runner(c) and n == "sys_exit_read" and p:
                end = us
                break
        fmt = lambda x: "%6.0f" % x if x is not None else "     -"
        before = sum(1 for s in sends if out is not None and s < out)
        print(f" {fmt(stdin)} {fmt(sends[0] if sends else None)}     {before:2d}/{len(sends):2d} "
              f"{fmt(recv1)} {fmt(out)} {fmt(end)}    {held * 1e6:6.0f}")


if __name__ == "__main__":
    main()
