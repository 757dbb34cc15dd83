//! lp2p-mplex against rust-libp2p's `libp2p-mplex` 0.44 (its last published release), in
//! both roles, over an in-memory pipe: many streams, transfers of a few MiB both ways,
//! half-close and reset seen from the other implementation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;

use futures::future::poll_fn;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p_core::muxing::StreamMuxerExt;
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use lp2p_core::{Role, RuntimeHandle, Stream};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_memory::MemoryConnection;
use std::sync::Arc;

use lp2p_mplex::{Mplex, MplexConnection, PROTOCOL_ID};

type RustMuxer = libp2p_mplex::Multiplex<MemoryConnection>;

/// rust-libp2p's mplex config for these tests: room for every stream the tests open (its
/// default is 128 substreams).
fn rust_config() -> libp2p_mplex::Config {
    let mut config = libp2p_mplex::Config::new();
    config.set_max_num_streams(1024);
    config
}

async fn rust_dialer(io: MemoryConnection) -> RustMuxer {
    rust_config()
        .upgrade_outbound(io, PROTOCOL_ID)
        .await
        .unwrap()
}

async fn rust_listener(io: MemoryConnection) -> RustMuxer {
    rust_config()
        .upgrade_inbound(io, PROTOCOL_ID)
        .await
        .unwrap()
}

fn lp2p(io: MemoryConnection, role: Role) -> Arc<MplexConnection> {
    Mplex::default().start(io, role, &RuntimeHandle::default())
}

/// The bytes side `side` sends on the stream with index `index`: differs per stream, per
/// side and per position; built from slices so it is cheap.
fn pattern(index: u32, side: u8, len: usize) -> Vec<u8> {
    const PERIOD: usize = 251;
    let table: Vec<u8> = (0..PERIOD * 2).map(|i| (i % PERIOD) as u8).collect();
    let offset = (index as usize * 31 + usize::from(side) * 7) % PERIOD;
    let block = &table[offset..offset + PERIOD];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = (len - out.len()).min(PERIOD);
        out.extend_from_slice(&block[..n]);
    }
    out
}

async fn read_then_eof(reader: &mut (impl AsyncRead + Unpin), len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = reader.read(&mut got[filled..]).await.unwrap();
        assert!(n > 0, "EOF after {filled} of {len} bytes");
        filled += n;
    }
    assert_eq!(reader.read(&mut [0u8; 1]).await.unwrap(), 0, "expected EOF");
    got
}

/// The opener's half of an exchange: sends the stream's index, then `len` bytes while
/// reading the other side's `len` bytes; checks them; both sides half-close.
async fn opener_side<S: AsyncRead + AsyncWrite + Unpin>(stream: S, index: u32, len: usize) {
    let (mut reader, mut writer) = stream.split();
    let send = async {
        writer.write_all(&index.to_le_bytes()).await.unwrap();
        writer.write_all(&pattern(index, b'o', len)).await.unwrap();
        writer.close().await.unwrap();
    };
    let receive = async {
        let got = read_then_eof(&mut reader, len).await;
        assert!(
            got == pattern(index, b'a', len),
            "stream {index}: wrong reply"
        );
    };
    futures::join!(send, receive);
}

/// The accepter's half: learns the index, then sends its `len` bytes while reading and
/// checking the opener's. Returns the index.
async fn accepter_side<S: AsyncRead + AsyncWrite + Unpin>(stream: S, len: usize) -> u32 {
    let (mut reader, mut writer) = stream.split();
    let mut index = [0u8; 4];
    reader.read_exact(&mut index).await.unwrap();
    let index = u32::from_le_bytes(index);
    let send = async {
        writer.write_all(&pattern(index, b'a', len)).await.unwrap();
        writer.close().await.unwrap();
    };
    let receive = async {
        let got = read_then_eof(&mut reader, len).await;
        assert!(
            got == pattern(index, b'o', len),
            "stream {index}: wrong data"
        );
    };
    futures::join!(send, receive);
    index
}

/// Accepts `count` streams on the rust muxer, running the accepter side on each; returns
/// the muxer and the indices seen (sorted).
async fn rust_accepts(mut muxer: RustMuxer, count: usize, len: usize) -> (RustMuxer, Vec<u32>) {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let stream = poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await.unwrap();
        tasks.push(async_std::task::spawn(accepter_side(stream, len)));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await);
    }
    seen.sort_unstable();
    (muxer, seen)
}

/// lp2p opens `count` streams, running the opener side on each.
async fn lp2p_opens(conn: &MplexConnection, count: u32, len: usize) {
    let mut tasks = Vec::new();
    for index in 0..count {
        let stream = conn.open().await.unwrap();
        tasks.push(async_std::task::spawn(opener_side(stream, index, len)));
    }
    for task in tasks {
        task.await;
    }
}

/// lp2p accepts `count` streams, running the accepter side on each; returns the indices.
async fn lp2p_accepts(conn: &MplexConnection, count: usize, len: usize) -> Vec<u32> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let stream = conn.accept().await.unwrap();
        tasks.push(async_std::task::spawn(accepter_side(stream, len)));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await);
    }
    seen.sort_unstable();
    seen
}

/// The rust muxer opens `count` streams, running the opener side on each.
async fn rust_opens(
    muxer: &mut RustMuxer,
    count: u32,
    len: usize,
) -> Vec<async_std::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for index in 0..count {
        let stream = poll_fn(|cx| muxer.poll_outbound_unpin(cx)).await.unwrap();
        tasks.push(async_std::task::spawn(opener_side(stream, index, len)));
    }
    tasks
}

fn check_clean(conn: &MplexConnection) {
    let stats = conn.core(|session| session.stats().clone());
    assert_eq!(stats.streams_overflowed, 0, "{stats:?}");
    assert_eq!(stats.streams_reset_for_memory, 0, "{stats:?}");
    assert_eq!(stats.streams_violated, 0, "{stats:?}");
}

#[test]
fn lp2p_dialer_opens_many_streams_to_rust_listener() {
    init_tracing();
    run("lp2p dialer -> rust listener, 200 streams", async {
        let (a, b) = pipe();
        let ours = lp2p(a, Role::Initiator);
        let theirs = async_std::task::spawn(async move {
            let muxer = rust_listener(b).await;
            rust_accepts(muxer, 200, 128 * 1024).await
        });
        lp2p_opens(&ours, 200, 128 * 1024).await;
        let (_muxer, seen) = theirs.await;
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        check_clean(&ours);
        ours.close().await;
    });
}

#[test]
fn rust_dialer_opens_many_streams_to_lp2p_listener() {
    init_tracing();
    run("rust dialer -> lp2p listener, 200 streams", async {
        let (a, b) = pipe();
        let ours = lp2p(b, Role::Responder);
        let theirs = async_std::task::spawn(async move {
            let mut muxer = rust_dialer(a).await;
            let tasks = rust_opens(&mut muxer, 200, 128 * 1024).await;
            for task in tasks {
                task.await;
            }
            muxer
        });
        let seen = lp2p_accepts(&ours, 200, 128 * 1024).await;
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        let muxer = theirs.await;
        check_clean(&ours);
        // rust-libp2p closes the connection; lp2p notices.
        muxer.close().await.unwrap();
        poll_fn(|cx| {
            if ours.is_closed() {
                std::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await;
        assert!(ours.accept().await.is_err());
    });
}

#[test]
fn large_transfers_both_roles() {
    init_tracing();
    // A few streams of 4 MiB each way: far more than rust-libp2p buffers per substream
    // (32 frames) and as much as lp2p buffers per stream by default.
    const LEN: usize = 4 * 1024 * 1024;
    run("large transfers, lp2p dialing", async {
        let (a, b) = pipe();
        let ours = lp2p(a, Role::Initiator);
        let theirs =
            async_std::task::spawn(
                async move { rust_accepts(rust_listener(b).await, 4, LEN).await },
            );
        lp2p_opens(&ours, 4, LEN).await;
        assert_eq!(theirs.await.1, [0, 1, 2, 3]);
        check_clean(&ours);
    });
    run("large transfers, rust dialing", async {
        let (a, b) = pipe();
        let ours = lp2p(b, Role::Responder);
        let theirs = async_std::task::spawn(async move {
            let mut muxer = rust_dialer(a).await;
            for task in rust_opens(&mut muxer, 4, LEN).await {
                task.await;
            }
            muxer
        });
        assert_eq!(lp2p_accepts(&ours, 4, LEN).await, [0, 1, 2, 3]);
        drop(theirs.await);
        check_clean(&ours);
    });
}

#[test]
fn both_sides_open_streams_with_overlapping_numbers() {
    init_tracing();
    // rust-libp2p numbers its streams 0, 1, 2, ...; lp2p as the listener uses 0, 2, 4, ...:
    // the same numbers name different streams, told apart by who opened them.
    run("both sides open", async {
        let (a, b) = pipe();
        let ours = lp2p(b, Role::Responder);
        let theirs = async_std::task::spawn(async move {
            let mut muxer = rust_dialer(a).await;
            let outbound = rust_opens(&mut muxer, 50, 64 * 1024).await;
            let (muxer, seen) = rust_accepts(muxer, 50, 64 * 1024).await;
            for task in outbound {
                task.await;
            }
            (muxer, seen)
        });
        let (seen, ()) = futures::join!(
            lp2p_accepts(&ours, 50, 64 * 1024),
            lp2p_opens(&ours, 50, 64 * 1024)
        );
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        let (_muxer, seen) = theirs.await;
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        check_clean(&ours);
    });
}

#[test]
fn reset_and_half_close_across_implementations() {
    init_tracing();
    run("reset and half-close", async {
        let (a, b) = pipe();
        let ours = lp2p(a, Role::Initiator);
        let mut muxer = rust_listener(b).await;

        // Half-close from lp2p: rust reads the request to EOF and can still answer.
        let mut out = ours.open().await.unwrap();
        out.write_all(b"request").await.unwrap();
        out.close().await.unwrap();
        let mut inbound = poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await.unwrap();
        let mut request = Vec::new();
        inbound.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"request");
        inbound.write_all(b"response").await.unwrap();
        inbound.close().await.unwrap();
        let mut response = Vec::new();
        out.read_to_end(&mut response).await.unwrap();
        assert_eq!(response, b"response");

        // Reset from lp2p. rust-libp2p reports a remote reset to readers as EOF (a documented
        // departure from the spec, see its `poll_read_stream`), but the stream is gone: its
        // writes fail.
        let mut doomed = ours.open().await.unwrap();
        doomed.write_all(b"partial").await.unwrap();
        let mut inbound = poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await.unwrap();
        let mut buf = [0u8; 7];
        inbound.read_exact(&mut buf).await.unwrap();
        Stream::reset(&mut doomed);
        assert_eq!(inbound.read(&mut buf).await.unwrap(), 0);
        let err = inbound.write_all(b"too late").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);

        // Reset from rust (dropping an open substream resets it): our read fails.
        let mut victim = ours.open().await.unwrap();
        victim.write_all(b"hello").await.unwrap();
        let mut inbound = poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await.unwrap();
        inbound.read_exact(&mut [0u8; 5]).await.unwrap();
        drop(inbound);
        // rust-libp2p queues that Reset and sends it with its next flush: flush a fresh
        // substream to push it out.
        let mut poke = poll_fn(|cx| muxer.poll_outbound_unpin(cx)).await.unwrap();
        poke.flush().await.unwrap();
        let err = victim.read(&mut [0u8; 1]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        let err = victim.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        check_clean(&ours);
    });
}
