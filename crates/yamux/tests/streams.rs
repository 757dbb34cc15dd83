//! lp2p-yamux end to end over lp2p-memory pairs and over TCP loopback: many concurrent
//! streams with verified contents, a stalled reader, half-close, reset, closing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use lp2p_core::{
    DialOpts, MuxedConnection, MuxerUpgrader, RawTransport, Role, RuntimeHandle, Stream,
};
use lp2p_memory::MemoryConnection;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::{Yamux, YamuxConfig, YamuxConnection};

/// Generous: CI is a slow, loaded 2-core machine. A healthy run takes seconds.
const TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug)]
enum Link {
    Memory,
    Tcp,
}

async fn pair(link: Link, config: YamuxConfig) -> (Arc<YamuxConnection>, Arc<YamuxConnection>) {
    let rt = RuntimeHandle::default();
    let yamux = Yamux::new(config);
    match link {
        Link::Memory => {
            let (a, b) = MemoryConnection::pair(
                lp2p_memory::DEFAULT_PIPE_CAPACITY,
                "/memory/1".parse().unwrap(),
                "/memory/2".parse().unwrap(),
            );
            (
                yamux.start(a, Role::Initiator, &rt),
                yamux.start(b, Role::Responder, &rt),
            )
        }
        Link::Tcp => {
            let tcp = TcpTransport::default();
            let mut listener = tcp
                .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
                .await
                .unwrap();
            let dialed = tcp
                .dial(&listener.local_addr(), &DialOpts::default())
                .await
                .unwrap();
            let accepted = listener.accept().await.unwrap();
            (
                yamux.start(dialed, Role::Initiator, &rt),
                yamux.start(accepted, Role::Responder, &rt),
            )
        }
    }
}

fn run<F: std::future::Future>(what: &str, future: F) -> F::Output {
    let rt = RuntimeHandle::default();
    lp2p_core::runtime::block_on(async {
        rt.timeout(TIMEOUT, future)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    })
}

/// Deterministic bytes for a seed: the first 8 bytes are the seed itself.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&seed.to_le_bytes());
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

const STREAM_BYTES: usize = 64 * 1024;

/// The opener's side of one stream: once `go` completes, sends its pattern and reads the
/// answer concurrently.
async fn opener_after(
    stream: lp2p_yamux::YamuxStream,
    seed: u64,
    go: impl std::future::Future<Output = ()>,
) {
    go.await;
    let (mut r, mut w) = stream.split();
    let send = async {
        w.write_all(&pattern(seed, STREAM_BYTES)).await.unwrap();
        w.close().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert!(
            got == pattern(!seed, STREAM_BYTES),
            "stream {seed}: wrong answer"
        );
    };
    futures::join!(send, recv);
}

/// The acceptor's side: learns the seed from the first bytes, then answers while reading.
async fn acceptor(stream: lp2p_yamux::YamuxStream) -> u64 {
    let (mut r, mut w) = stream.split();
    let mut head = [0u8; 8];
    r.read_exact(&mut head).await.unwrap();
    let seed = u64::from_le_bytes(head);
    let send = async {
        w.write_all(&pattern(!seed, STREAM_BYTES)).await.unwrap();
        w.close().await.unwrap();
    };
    let recv = async {
        let mut got = head.to_vec();
        r.read_to_end(&mut got).await.unwrap();
        assert!(
            got == pattern(seed, STREAM_BYTES),
            "stream {seed}: wrong data"
        );
    };
    futures::join!(send, recv);
    seed
}

/// Accepts `count` streams on `conn`, serving each in its own task.
async fn serve(conn: Arc<YamuxConnection>, count: usize) -> Vec<u64> {
    let rt = RuntimeHandle::default();
    let mut tasks = Vec::new();
    for _ in 0..count {
        let stream = conn.accept().await.unwrap();
        tasks.push(rt.spawn(acceptor(stream)));
    }
    join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn thousand_streams(link: Link) {
    run("1000 streams", async {
        let rt = RuntimeHandle::default();
        let (client, server) = pair(link, YamuxConfig::default()).await;
        // 500 opened by each side: 1000 concurrent streams, within the default limits.
        let per_side = 500u64;
        let server_accepts = rt.spawn(serve(server.clone(), 500));
        let client_accepts = rt.spawn(serve(client.clone(), 500));
        // Every stream is opened first; data moves only once all 1,000 are open at once.
        let (opened_tx, mut opened_rx) = futures::channel::mpsc::unbounded::<()>();
        let (go_tx, go_rx) = futures::channel::oneshot::channel::<()>();
        let go = go_rx.map(|_| ()).shared();
        let mut openers = Vec::new();
        for i in 0..per_side {
            for (conn, seed) in [(client.clone(), i), (server.clone(), 1_000_000 + i)] {
                let (opened, go) = (opened_tx.clone(), go.clone());
                openers.push(rt.spawn(async move {
                    let stream = conn.open().await.unwrap();
                    opened.unbounded_send(()).unwrap();
                    opener_after(stream, seed, go).await;
                }));
            }
        }
        for _ in 0..2 * per_side {
            futures::StreamExt::next(&mut opened_rx).await.unwrap();
        }
        wait_until(|| client.num_streams() == 1000 && server.num_streams() == 1000).await;
        go_tx.send(()).unwrap();
        for r in join_all(openers).await {
            r.unwrap();
        }
        let mut seen = server_accepts.await.unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..per_side).collect::<Vec<_>>());
        let mut seen = client_accepts.await.unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (1_000_000..1_000_000 + per_side).collect::<Vec<_>>());
        client.close().await;
        assert!(client.is_closed());
    });
}

#[test]
fn thousand_concurrent_streams_64k_both_ways_memory() {
    thousand_streams(Link::Memory);
}

#[test]
fn thousand_concurrent_streams_64k_both_ways_tcp() {
    thousand_streams(Link::Tcp);
}

fn stalled_reader(link: Link) {
    run("stalled reader", async {
        let rt = RuntimeHandle::default();
        let (client, server) = pair(link, YamuxConfig::default()).await;
        let mut stalled = client.open().await.unwrap();
        stalled.write_all(b"stall").await.unwrap();
        let mut stalled_remote = server.accept().await.unwrap();
        // Nobody reads `stalled_remote`: its writer fills the window and waits.
        let writer = rt.spawn(async move {
            let data = vec![1u8; 4 * 1024 * 1024];
            stalled.write_all(&data).await.unwrap();
            stalled.close().await.unwrap();
        });
        // Meanwhile another stream moves 16 MiB each way.
        let mut fast = client.open().await.unwrap();
        fast.write_all(b"fast").await.unwrap();
        let mut fast_remote = server.accept().await.unwrap();
        let total = 16 * 1024 * 1024;
        let echo = rt.spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut n_total = 0;
            loop {
                let n = fast_remote.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                fast_remote.write_all(&buf[..n]).await.unwrap();
                n_total += n;
            }
            fast_remote.close().await.unwrap();
            n_total
        });
        let data = pattern(7, total);
        let (mut r, mut w) = fast.split();
        let send = async {
            w.write_all(&data).await.unwrap();
            w.close().await.unwrap();
        };
        let recv = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = futures::join!(send, recv);
        assert!(got.len() == total + 4 && got[4..] == data[..]);
        assert_eq!(echo.await.unwrap(), total + 4);
        // The stalled writer is still stuck on its window.
        let writer_done = writer.now_or_never();
        assert!(writer_done.is_none(), "the stalled writer finished early");
        let id = stalled_remote.id();
        let status = stalled_remote.core(|core| core.stream_status(id)).unwrap();
        assert!(status.buffered >= 256 * 1024 - 5, "{status:?}");
        // Reading it lets the writer finish.
        let mut got = Vec::new();
        stalled_remote.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 5 + 4 * 1024 * 1024);
    });
}

#[test]
fn stalled_reader_blocks_only_its_stream_memory() {
    stalled_reader(Link::Memory);
}

#[test]
fn stalled_reader_blocks_only_its_stream_tcp() {
    stalled_reader(Link::Tcp);
}

fn half_close(link: Link) {
    run("half-close", async {
        let (client, server) = pair(link, YamuxConfig::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"request").await.unwrap();
        c.close().await.unwrap();
        // Writing after our FIN fails.
        let err = c.write_all(b"more").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        let mut s = server.accept().await.unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).await.unwrap();
        assert_eq!(req, b"request");
        // The other direction is still open.
        s.write_all(b"response").await.unwrap();
        s.close().await.unwrap();
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).await.unwrap();
        assert_eq!(resp, b"response");
        assert_eq!(c.read(&mut [0u8; 4]).await.unwrap(), 0);
        // Both FINs seen on both sides: the stream no longer counts.
        wait_until(|| client.num_streams() == 0 && server.num_streams() == 0).await;
    });
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    let rt = RuntimeHandle::default();
    while !cond() {
        rt.sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn half_close_memory() {
    half_close(Link::Memory);
}

#[test]
fn half_close_tcp() {
    half_close(Link::Tcp);
}

fn reset(link: Link) {
    run("reset", async {
        let (client, server) = pair(link, YamuxConfig::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut s = server.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        // A reader waiting on the server side wakes with an error when the client resets.
        let rt = RuntimeHandle::default();
        let reader = rt.spawn(async move {
            let mut buf = [0u8; 8];
            let err = s.read(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
            let err = s.write_all(b"x").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        });
        rt.sleep(Duration::from_millis(20)).await;
        c.reset();
        reader.await.unwrap();
        let err = c.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        // The connection itself is fine.
        let mut c2 = client.open().await.unwrap();
        c2.write_all(b"again").await.unwrap();
        c2.close().await.unwrap();
        let mut s2 = server.accept().await.unwrap();
        let mut got = Vec::new();
        s2.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"again");
    });
}

/// What rust-libp2p handlers do: read the request, write an answer, then drop the stream,
/// which rust-yamux sends as RST. The asker gets the answer first and the reset after it,
/// never a clean end, even when the reset arrived before it read anything.
fn answer_then_reset(link: Link) {
    run("answer_then_reset", async {
        let (client, server) = pair(link, YamuxConfig::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"request").await.unwrap();
        let mut s = server.accept().await.unwrap();
        let mut request = [0u8; 7];
        s.read_exact(&mut request).await.unwrap();
        s.write_all(b"answer").await.unwrap();
        s.reset();
        // Let the reset arrive before anything is read.
        RuntimeHandle::default()
            .sleep(Duration::from_millis(50))
            .await;
        let mut buf = [0u8; 6];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"answer");
        let err = c.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn answer_then_reset_memory() {
    answer_then_reset(Link::Memory);
}

#[test]
fn answer_then_reset_tcp() {
    answer_then_reset(Link::Tcp);
}

#[test]
fn reset_memory() {
    reset(Link::Memory);
}

#[test]
fn reset_tcp() {
    reset(Link::Tcp);
}

fn close_wakes_every_stream(link: Link) {
    run("close", async {
        let rt = RuntimeHandle::default();
        let (client, server) = pair(link, YamuxConfig::default()).await;
        let mut waiting = Vec::new();
        for _ in 0..10 {
            let mut c = client.open().await.unwrap();
            c.write_all(b"x").await.unwrap();
            let mut s = server.accept().await.unwrap();
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.unwrap();
            // Readers blocked on both ends.
            waiting.push(rt.spawn(async move {
                let mut buf = [0u8; 8];
                c.read(&mut buf).await.unwrap_err().kind()
            }));
            waiting.push(rt.spawn(async move {
                let mut buf = [0u8; 8];
                s.read(&mut buf).await.unwrap_err().kind()
            }));
        }
        let acceptor = {
            let server = server.clone();
            rt.spawn(async move { server.accept().await.map(|_| ()) })
        };
        rt.sleep(Duration::from_millis(20)).await;
        MuxedConnection::close(&*client).await;
        assert!(client.is_closed());
        for kind in join_all(waiting).await {
            assert_eq!(kind.unwrap(), std::io::ErrorKind::ConnectionAborted);
        }
        assert!(acceptor.await.unwrap().is_err());
        wait_until(|| server.is_closed()).await;
        assert_eq!(server.core(lp2p_yamux::Connection::remote_go_away), Some(0));
        assert!(client.open().await.is_err());
        assert!(server.open().await.is_err());
    });
}

#[test]
fn close_wakes_every_stream_memory() {
    close_wakes_every_stream(Link::Memory);
}

#[test]
fn close_wakes_every_stream_tcp() {
    close_wakes_every_stream(Link::Tcp);
}

#[test]
fn dropped_stream_is_half_closed_and_its_data_delivered() {
    run("drop", async {
        let (client, server) = pair(Link::Memory, YamuxConfig::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(&pattern(3, 100_000)).await.unwrap();
        drop(c);
        let mut s = server.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert!(got == pattern(3, 100_000));
        // The remote keeps writing to the dropped stream: it gets reset.
        let mut failed = false;
        for _ in 0..1000 {
            if s.write_all(&[0u8; 1024]).await.is_err() {
                failed = true;
                break;
            }
            RuntimeHandle::default()
                .sleep(Duration::from_millis(1))
                .await;
        }
        assert!(failed, "writes to a dropped stream never failed");
        wait_until(|| client.num_streams() == 0).await;
    });
}

#[test]
fn dropping_the_connection_closes_it() {
    run("drop connection", async {
        let (client, server) = pair(Link::Memory, YamuxConfig::default()).await;
        let mut c = client.open().await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut s = server.accept().await.unwrap();
        drop(client);
        let mut got = Vec::new();
        // The data sent before arrives, then the read fails (no FIN was sent).
        assert!(s.read_to_end(&mut got).await.is_err());
        assert_eq!(got, b"x");
        wait_until(|| server.is_closed()).await;
        assert!(c.write_all(b"y").await.is_err());
    });
}

#[test]
fn upgrade_through_the_trait_and_measure_rtt() {
    run("upgrade", async {
        let rt = RuntimeHandle::default();
        let (a, b) = MemoryConnection::pair(
            64 * 1024,
            "/memory/1".parse().unwrap(),
            "/memory/2".parse().unwrap(),
        );
        let key_a = lp2p_core::Keypair::generate_ed25519();
        let key_b = lp2p_core::Keypair::generate_ed25519();
        let a = lp2p_core::SecureConnection::new(Box::new(a), key_b.public(), "/plaintext/2.0.0");
        let b = lp2p_core::SecureConnection::new(Box::new(b), key_a.public(), "/plaintext/2.0.0");
        let yamux = Yamux::default();
        assert_eq!(yamux.protocol_id(), "/yamux/1.0.0");
        let client: Arc<dyn MuxedConnection> =
            yamux.upgrade(a, Role::Initiator, &rt, lp2p_core::UnlimitedMemory::boxed());
        let server: Arc<dyn MuxedConnection> =
            yamux.upgrade(b, Role::Responder, &rt, lp2p_core::UnlimitedMemory::boxed());
        let mut c = client.open_stream().await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut s = server.accept_stream().await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(client.num_streams(), 1);
        s.reset();
        client.close().await;
        assert!(client.is_closed());
    });
}

#[test]
fn rtt_is_measured_and_the_task_ends_with_the_connection() {
    let rt = RuntimeHandle::default().scope();
    lp2p_core::runtime::block_on(async {
        let (a, b) = MemoryConnection::pair(
            64 * 1024,
            "/memory/1".parse().unwrap(),
            "/memory/2".parse().unwrap(),
        );
        let client = Yamux::default().start(a, Role::Initiator, &rt);
        let server = Yamux::default().start(b, Role::Responder, &rt);
        assert_eq!(rt.live_tasks(), 2);
        rt.timeout(
            TIMEOUT,
            wait_until(|| client.core(lp2p_yamux::Connection::rtt).is_some()),
        )
        .await
        .unwrap();
        client.close().await;
        rt.timeout(TIMEOUT, wait_until(|| server.is_closed()))
            .await
            .unwrap();
        rt.timeout(TIMEOUT, wait_until(|| rt.live_tasks() == 0))
            .await
            .unwrap();
    });
}
