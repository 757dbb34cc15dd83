"""py-libp2p-node: the lp2p-node command-line contract (NODE-CLI.md) implemented with
py-libp2p 0.8, so the interop matrix can pair lp2p-node with py-libp2p process against
process.

Supported: listen, dial and perf with --security noise|plaintext, --muxer yamux|mplex
[--only], --key-seed, --timeout, --bare, and the same JSON-line events. Served: identify
(and push) and ping (py-libp2p's host defaults), gossipsub (/meshsub/1.2.0, 1.1.0, 1.0.0) on
every --topic, /echo/1.0.0 and /perf/1.0.0.

Run it through ./py-libp2p-node (the venv made by setup.sh).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

import multiaddr
import trio

from libp2p import new_host
from libp2p.abc import INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import PingService
from libp2p.identity.identify.identify import ID as IDENTIFY
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import (
    PROTOCOL_ID,
    PROTOCOL_ID_V11,
    PROTOCOL_ID_V12,
    GossipSub,
)
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service
from libp2p.utils.varint import read_length_prefixed_protobuf

ECHO = TProtocol("/echo/1.0.0")
PERF = TProtocol("/perf/1.0.0")
# Bytes per perf read and write: large enough that the muxer, not this loop, sets the pace.
PERF_CHUNK = 64 * 1024
# How long `dial --publish` waits for the remote to join the mesh, as lp2p-node.
MESH_WAIT_S = 5.0
# How often the mesh (and other conditions) are looked at while waiting.
POLL_S = 0.05
# Default hard stop of dial and perf, as lp2p-node's.
DEFAULT_CLIENT_TIMEOUT_S = 30.0
# First and largest delay before a --connect peer is redialed.
REDIAL_MIN_S = 0.5
REDIAL_MAX_S = 10.0
# Largest identify message read (py-libp2p's own default bound).
IDENTIFY_MAX = 1024 * 1024
# The heartbeat py-libp2p's gossipsub runs (its default is 120 s, far from the spec's 1 s).
HEARTBEAT_S = 1


class UsageError(Exception):
    """A bad command line: one `error` event and exit 2."""


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def fail(what: object, code: int = 1) -> None:
    emit({"event": "error", "what": str(what)})
    sys.stdout.flush()
    os._exit(code)


@dataclass
class Options:
    command: str
    addrs: list = field(default_factory=list)
    connect: list = field(default_factory=list)
    topics: list = field(default_factory=list)
    security: str = "noise"
    muxer: str = "yamux"
    only: bool = False
    bare: bool = False
    seed: int | None = None
    timeout: float | None = None
    ping: int | None = None
    echo: str | None = None
    identify: bool = False
    publish: str | None = None
    expect_messages: int | None = None
    upload: int = 0
    download: int = 0


def parse(argv: list[str]) -> Options:
    if not argv or argv[0] not in ("listen", "dial", "perf"):
        raise UsageError(
            f"unknown command {argv[0] if argv else '(none)'} "
            "(py-libp2p-node speaks listen, dial, perf)"
        )
    opts = Options(command=argv[0])
    rest = iter(argv[1:])

    def value(flag: str) -> str:
        try:
            return next(rest)
        except StopIteration:
            raise UsageError(f"{flag} needs a value") from None

    def number(flag: str, kind=int):
        text = value(flag)
        try:
            n = kind(text)
        except ValueError:
            raise UsageError(f"{flag} needs a number, got {text}") from None
        if n < 0:
            raise UsageError(f"{flag} needs a non-negative number, got {text}")
        return n

    def address(flag: str) -> multiaddr.Multiaddr:
        text = value(flag)
        try:
            return multiaddr.Multiaddr(text)
        except Exception as err:
            raise UsageError(f"{flag}: {text} is not a valid multiaddr: {err}") from None

    for flag in rest:
        if flag == "--addr":
            opts.addrs.append(address(flag))
        elif flag == "--connect":
            opts.connect.append(address(flag))
        elif flag == "--topic":
            opts.topics.append(value(flag))
        elif flag == "--security":
            opts.security = value(flag)
            if opts.security not in ("noise", "plaintext"):
                raise UsageError(f"unknown security `{opts.security}` (noise or plaintext)")
        elif flag == "--muxer":
            opts.muxer = value(flag)
            if opts.muxer not in ("yamux", "mplex"):
                raise UsageError(f"unknown muxer `{opts.muxer}` (yamux or mplex)")
        elif flag == "--only":
            opts.only = True
        elif flag == "--bare":
            opts.bare = True
        elif flag == "--json":
            pass
        elif flag == "--key-seed":
            opts.seed = number(flag)
        elif flag == "--timeout":
            opts.timeout = number(flag, float)
        elif flag == "--ping":
            opts.ping = number(flag)
        elif flag == "--echo":
            opts.echo = value(flag)
        elif flag == "--identify":
            opts.identify = True
        elif flag == "--publish":
            opts.publish = value(flag)
        elif flag == "--expect-messages":
            opts.expect_messages = number(flag)
        elif flag == "--upload-bytes":
            opts.upload = number(flag)
        elif flag == "--download-bytes":
            opts.download = number(flag)
        else:
            raise UsageError(f"unknown option {flag}")
    if opts.command == "listen" and not opts.addrs:
        raise UsageError("listen needs --addr")
    if opts.command != "listen" and len(opts.addrs) != 1:
        raise UsageError(f"{opts.command} needs exactly one --addr")
    if opts.publish is not None and len(opts.topics) != 1:
        raise UsageError("--publish needs exactly one --topic")
    if opts.expect_messages is not None and not opts.topics:
        raise UsageError("--expect-messages needs --topic")
    return opts


def key_pair(seed: int | None):
    """The identity lp2p-node derives from --key-seed: the seed as 8 little-endian bytes,
    then 24 zero bytes, as the Ed25519 secret key."""
    if seed is None:
        return create_new_key_pair()
    return create_new_key_pair((seed % 2**64).to_bytes(8, "little") + bytes(24))


def make_host(opts: Options):
    keys = key_pair(opts.seed)
    if opts.security == "plaintext":
        security = {PLAINTEXT_PROTOCOL_ID: InsecureTransport(keys)}
    else:
        security = {
            NOISE_PROTOCOL_ID: NoiseTransport(
                keys, noise_privkey=create_new_x25519_key_pair().private_key
            )
        }
    yamux = (TProtocol(YAMUX_PROTOCOL_ID), Yamux)
    mplex = (TProtocol(MPLEX_PROTOCOL_ID), Mplex)
    order = [yamux, mplex] if opts.muxer == "yamux" else [mplex, yamux]
    if opts.only:
        order = order[:1]
    return new_host(
        key_pair=keys,
        sec_opt=security,
        muxer_opt=dict(order),
        listen_addrs=opts.addrs or None,
    )


def make_pubsub(host):
    gossipsub = GossipSub(
        protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_initial_delay=0.1,
        heartbeat_interval=HEARTBEAT_S,
    )
    # The default message id is the spec's (from + seqno), as lp2p's and go-libp2p's.
    return Pubsub(host, gossipsub), gossipsub


async def serve_echo(stream) -> None:
    try:
        while True:
            try:
                data = await stream.read(PERF_CHUNK)
            except StreamEOF:
                break
            if not data:
                break
            await stream.write(data)
        await stream.close_write()
    except Exception as err:
        logging.debug("echo stream failed: %s", err)
        await stream.reset()


async def read_to_end(stream, on_chunk) -> None:
    while True:
        try:
            data = await stream.read(PERF_CHUNK)
        except StreamEOF:
            return
        if not data:
            return
        on_chunk(data)


async def serve_perf(stream) -> None:
    try:
        header = bytearray()

        def take(data: bytes) -> None:
            if len(header) < 8:
                header.extend(data[: 8 - len(header)])

        await read_to_end(stream, take)
        if len(header) < 8:
            raise ValueError("the client closed before sending its 8-byte header")
        left = int.from_bytes(header, "big")
        chunk = bytes(PERF_CHUNK)
        while left > 0:
            n = min(left, PERF_CHUNK)
            await stream.write(chunk[:n])
            left -= n
        await stream.close_write()
    except Exception as err:
        logging.debug("perf stream failed: %s", err)
        await stream.reset()


class ConnectionPrinter(INotifee):
    """Prints connected and disconnected events (listen)."""

    def __init__(self) -> None:
        self.counts: dict = {}

    async def opened_stream(self, network, stream) -> None:
        pass

    async def closed_stream(self, network, stream) -> None:
        pass

    async def connected(self, network, conn) -> None:
        peer = conn.muxed_conn.peer_id
        self.counts[peer] = self.counts.get(peer, 0) + 1
        direction = "in" if "INBOUND" in str(getattr(conn, "direction", "")).upper() else "out"
        addrs = conn.get_transport_addresses() if hasattr(conn, "get_transport_addresses") else []
        emit(
            {
                "event": "connected",
                "peer": peer.to_base58(),
                "dir": direction,
                "addr": str(addrs[0]) if addrs else "",
            }
        )

    async def disconnected(self, network, conn) -> None:
        peer = conn.muxed_conn.peer_id
        self.counts[peer] = self.counts.get(peer, 1) - 1
        if self.counts[peer] <= 0:
            self.counts.pop(peer, None)
            emit({"event": "disconnected", "peer": peer.to_base58()})

    async def listen(self, network, maddr) -> None:
        pass

    async def listen_close(self, network, maddr) -> None:
        pass


def message_event(message) -> dict:
    return {
        "event": "message",
        "topic": message.topicIDs[0] if message.topicIDs else "",
        "from": ID(message.from_id).to_base58() if message.from_id else "",
        "data": message.data.decode("utf-8", errors="replace"),
    }


async def print_messages(subscription, me, seen: list | None = None) -> None:
    """Prints each message; py-libp2p hands a node its own published messages too, which
    the contract (and lp2p-node) does not print."""
    while True:
        message = await subscription.get()
        if message.from_id == me.to_bytes():
            continue
        emit(message_event(message))
        if seen is not None:
            seen.append(message)


async def keep_connected(host, addr) -> None:
    """Dials `addr` now and again whenever the connection drops, with backoff."""
    info = info_from_p2p_addr(addr)
    delay = REDIAL_MIN_S
    while True:
        if host.get_network().get_connections(info.peer_id):
            delay = REDIAL_MIN_S
            await trio.sleep(REDIAL_MIN_S)
            continue
        try:
            await host.connect(info)
            delay = REDIAL_MIN_S
        except Exception as err:
            logging.debug("dialing %s failed: %s", addr, err)
            await trio.sleep(delay)
            delay = min(delay * 2, REDIAL_MAX_S)


async def read_stdin_lines(pubsub) -> None:
    """Publishes `publish <topic> <text>` lines; returns at EOF."""
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        parts = line.strip().split(" ", 2)
        if len(parts) == 3 and parts[0] == "publish" and pubsub is not None:
            try:
                await pubsub.publish(parts[1], parts[2].encode())
            except Exception as err:
                print(f"publish on {parts[1]} failed: {err}", file=sys.stderr)


async def listen(opts: Options) -> None:
    host = make_host(opts)
    host.get_network().register_notifee(ConnectionPrinter())
    host.set_stream_handler(ECHO, serve_echo)
    host.set_stream_handler(PERF, serve_perf)
    pubsub, gossipsub = (None, None) if opts.bare else make_pubsub(host)
    if opts.bare and opts.topics:
        fail("pubsub is not running (--bare serves only ping, echo and perf)")
    async with host.run(listen_addrs=opts.addrs), trio.open_nursery() as nursery:
        if pubsub is not None:
            nursery.start_soon(_run_service, pubsub)
            nursery.start_soon(_run_service, gossipsub)
            await pubsub.wait_until_ready()
            for topic in opts.topics:
                nursery.start_soon(print_messages, await pubsub.subscribe(topic), host.get_id())
        emit(
            {
                "event": "listening",
                "peer_id": host.get_id().to_base58(),
                "addrs": [str(a) for a in host.get_addrs()],
            }
        )
        for addr in opts.connect:
            nursery.start_soon(keep_connected, host, addr)
        done = trio.Event()

        async def stdin_then_done() -> None:
            await read_stdin_lines(pubsub)
            if not sys.stdin.isatty():
                done.set()

        async def signal_then_done() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    done.set()
                    return

        nursery.start_soon(stdin_then_done)
        nursery.start_soon(signal_then_done)
        if opts.timeout is not None:
            with trio.move_on_after(opts.timeout):
                await done.wait()
        else:
            await done.wait()
        nursery.cancel_scope.cancel()


async def _run_service(service) -> None:
    async with background_trio_service(service):
        await trio.sleep_forever()


async def wait_until(check, limit: float | None = None) -> bool:
    started = time.monotonic()
    while not check():
        if limit is not None and time.monotonic() - started > limit:
            return False
        await trio.sleep(POLL_S)
    return True


async def identify_peer(host, peer) -> dict:
    stream = await host.new_stream(peer, [IDENTIFY])
    try:
        data = await read_length_prefixed_protobuf(stream, True, IDENTIFY_MAX)
    finally:
        await stream.close()
    info = parse_identify_response(data)
    return {
        "event": "identify",
        "peer": peer.to_base58(),
        "agent_version": info.agent_version,
        "protocol_version": info.protocol_version,
        "protocols": list(info.protocols),
        "listen_addrs": [str(multiaddr.Multiaddr(a)) for a in info.listen_addrs],
        "observed_addr": str(multiaddr.Multiaddr(info.observed_addr))
        if info.observed_addr
        else "",
        "signed_peer_record": bool(info.signedPeerRecord),
    }


async def echo_client(host, peer, text: str) -> int:
    stream = await host.new_stream(peer, [ECHO])
    sent = text.encode()
    await stream.write(sent)
    await stream.close_write()
    back = bytearray()
    await read_to_end(stream, back.extend)
    if bytes(back) != sent:
        raise ValueError(f"echo returned {len(back)} different bytes")
    return len(back)


async def dial(opts: Options) -> None:
    addr = opts.addrs[0]
    info = info_from_p2p_addr(addr)
    peer = info.peer_id
    host = make_host(opts)
    host.set_stream_handler(ECHO, serve_echo)
    host.set_stream_handler(PERF, serve_perf)
    pubsub, gossipsub = (None, None) if opts.bare else make_pubsub(host)
    topic = opts.topics[0] if opts.topics else None
    if topic is not None and pubsub is None:
        fail("pubsub is not running (--bare serves only ping, echo and perf)")
    messages: list = []
    async with host.run(listen_addrs=[]), trio.open_nursery() as nursery:
        if pubsub is not None:
            nursery.start_soon(_run_service, pubsub)
            nursery.start_soon(_run_service, gossipsub)
            await pubsub.wait_until_ready()
            if topic is not None:
                nursery.start_soon(
                    print_messages, await pubsub.subscribe(topic), host.get_id(), messages
                )
        try:
            await host.connect(info)
        except Exception as err:
            fail(f"cannot connect to {addr}: {err}")
        emit({"event": "connected", "peer": peer.to_base58(), "dir": "out", "addr": str(addr)})
        if opts.ping is not None:
            try:
                service = PingService(host)
                started = time.perf_counter()
                async for _ in service.ping_iter(peer, opts.ping):
                    now = time.perf_counter()
                    emit(
                        {
                            "event": "ping",
                            "peer": peer.to_base58(),
                            "rtt_ms": (now - started) * 1000.0,
                        }
                    )
                    started = now
            except Exception as err:
                fail(f"ping {peer} failed: {err}")
        if opts.echo is not None:
            try:
                n = await echo_client(host, peer, opts.echo)
            except Exception as err:
                fail(f"echo with {peer} failed: {err}")
            emit({"event": "echo", "peer": peer.to_base58(), "ok": True, "bytes": n})
        if opts.identify:
            try:
                emit(await identify_peer(host, peer))
            except Exception as err:
                fail(f"identify {peer} failed: {err}")
        if opts.publish is not None:
            await wait_until(lambda: peer in gossipsub.mesh.get(topic, set()), MESH_WAIT_S)
            try:
                await pubsub.publish(topic, opts.publish.encode())
            except Exception as err:
                fail(f"publishing on {topic} failed: {err}")
        if opts.expect_messages is not None:
            await wait_until(lambda: len(messages) >= opts.expect_messages)
        nursery.cancel_scope.cancel()


async def perf(opts: Options) -> None:
    addr = opts.addrs[0]
    info = info_from_p2p_addr(addr)
    started = time.perf_counter()
    host = make_host(opts)
    async with host.run(listen_addrs=[]):
        try:
            await host.connect(info)
        except Exception as err:
            fail(f"cannot connect to {addr}: {err}")
        try:
            stream = await host.new_stream(info.peer_id, [PERF])
            await stream.write(opts.download.to_bytes(8, "big"))
            chunk = bytes(PERF_CHUNK)
            left = opts.upload
            while left > 0:
                n = min(left, PERF_CHUNK)
                await stream.write(chunk[:n])
                left -= n
            await stream.close_write()
            received = 0

            def count(data: bytes) -> None:
                nonlocal received
                received += len(data)

            await read_to_end(stream, count)
        except Exception as err:
            fail(f"perf failed: {err}")
        if received != opts.download:
            fail(f"perf: asked for {opts.download} bytes, received {received}")
        emit(
            {
                "event": "perf",
                "upload_bytes": opts.upload,
                "download_bytes": received,
                "seconds": time.perf_counter() - started,
            }
        )


async def main(opts: Options) -> None:
    run = {"listen": listen, "dial": dial, "perf": perf}[opts.command]
    if opts.command == "listen":
        await run(opts)
        return
    limit = opts.timeout if opts.timeout is not None else DEFAULT_CLIENT_TIMEOUT_S
    with trio.move_on_after(limit) as scope:
        await run(opts)
    if scope.cancelled_caught:
        fail(f"{opts.command} did not finish within --timeout {limit} s")


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("LP2P_PY_DEBUG") else logging.CRITICAL,
        stream=sys.stderr,
    )
    try:
        options = parse(sys.argv[1:])
    except UsageError as usage:
        fail(usage, 2)
    try:
        trio.run(main, options)
    except KeyboardInterrupt:
        pass
    except BaseException as err:  # noqa: BLE001 - one error event, never a traceback
        fail(f"{type(err).__name__}: {err}")
    sys.stdout.flush()
    # py-libp2p leaves system tasks behind on some paths: exit without waiting for them.
    os._exit(0)
