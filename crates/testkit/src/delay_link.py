# A link with a one-way delay: copies every Ethernet frame that arrives on one interface out
# of the other after DELAY_MS, in both directions. Run inside the namespace that holds both
# interfaces (lp2p_testkit::netns::Netns::delayed_link starts it):
#
#     python3 -c "$(cat delay_link.py)" DEV_A DEV_B DELAY_MS
#
# This kernel has no netem qdisc (and no fq for eBPF departure times), so the delay is done
# in user space. Frames keep their virtio-net header (PACKET_VNET_HDR), so segmentation and
# checksum offloads pass through untouched: a 64 KiB TCP segment is delayed and sent on as
# one frame, and the kernel finishes it on the far side.
#
# Prints "ready" once both interfaces are bound. Exits when its stdin closes (the test that
# started it is gone) or on SIGTERM. A direction holding more than QUEUE_LIMIT frames drops
# new ones, as a router's full queue does.
import collections
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
QUEUE_LIMIT = 10000
# A 64 KiB GSO frame plus its virtio-net header.
FRAME_MAX = 70000


def bound(dev):
    # Protocol 0 until bound: no frame of another interface is queued before bind.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.bind((dev, ETH_P_ALL))
    return s


def main():
    dev_a, dev_b, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delay = delay_ms / 1000.0
    a, b = bound(dev_a), bound(dev_b)
    # Frames read from a socket wait here, with their departure time, for the other one.
    queues = {a: collections.deque(), b: collections.deque()}
    out = {a: b, b: a}
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        for src, queue in queues.items():
            while queue and queue[0][0] <= now:
                frame = queue.popleft()[1]
                try:
                    out[src].send(frame)
                except OSError:
                    pass  # the interface went away or refused the frame: dropped
        due = [queue[0][0] for queue in queues.values() if queue]
        timeout = max(0.0, min(due) - now) if due else None
        readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        now = time.monotonic()
        for src in readable:
            if src == stdin:
                if not sys.stdin.buffer.read1(4096):
                    return
                continue
            while True:
                try:
                    frame = src.recv(FRAME_MAX, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    break
                if len(queues[src]) < QUEUE_LIMIT:
                    queues[src].append((now + delay, frame))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
