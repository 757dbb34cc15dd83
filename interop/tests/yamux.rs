//! lp2p-yamux against crates.io `yamux` 0.14.1 (the crate rust-libp2p uses), in both roles,
//! over an in-memory pipe: over a hundred streams opened from each side at once, and 16 MiB
//! each way on one stream at the same time, every byte verified. Also ping (RTT) both ways
//! and GoAway on close in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, StreamExt};
use lp2p_core::{Role, RuntimeHandle};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_memory::MemoryConnection;
use lp2p_yamux::{Yamux, YamuxConnection};

/// Streams opened from each side in the many-streams test.
const STREAMS_PER_SIDE: u64 = 120;
/// Bytes each way on each of those streams.
const SMALL: usize = 8 * 1024;
/// Bytes each way on the large-transfer stream.
const LARGE: usize = 16 * 1024 * 1024;

// ------------------------------------------------------------------------ crates.io yamux

/// Drives a `yamux::Connection`: opens streams on request and hands out inbound ones. It
/// finishes when the connection ends.
struct RustDriver {
    conn: yamux::Connection<MemoryConnection>,
    requests: mpsc::UnboundedReceiver<oneshot::Sender<yamux::Stream>>,
    waiting: Option<oneshot::Sender<yamux::Stream>>,
    inbound: mpsc::UnboundedSender<yamux::Stream>,
    close: Option<oneshot::Receiver<()>>,
    closing: bool,
}

impl Future for RustDriver {
    type Output = Result<(), yamux::ConnectionError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            if let Some(rx) = &mut this.close
                && rx.poll_unpin(cx).is_ready()
            {
                this.close = None;
                this.closing = true;
            }
            if this.closing {
                return this.conn.poll_close(cx);
            }
            if this.waiting.is_none()
                && let Poll::Ready(Some(tx)) = this.requests.poll_next_unpin(cx)
            {
                this.waiting = Some(tx);
            }
            if let Some(tx) = this.waiting.take() {
                match this.conn.poll_new_outbound(cx) {
                    Poll::Ready(Ok(s)) => {
                        let _ = tx.send(s);
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => this.waiting = Some(tx),
                }
            }
            match this.conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(s))) => {
                    let _ = this.inbound.unbounded_send(s);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A handle to a driven `yamux::Connection`.
#[derive(Clone)]
struct RustYamux {
    requests: mpsc::UnboundedSender<oneshot::Sender<yamux::Stream>>,
    inbound: Arc<futures::lock::Mutex<mpsc::UnboundedReceiver<yamux::Stream>>>,
}

struct RustEnd {
    handle: RustYamux,
    close: oneshot::Sender<()>,
    driver: lp2p_core::JoinHandle<Result<(), yamux::ConnectionError>>,
}

fn start_rust(io: MemoryConnection, mode: yamux::Mode, rt: &RuntimeHandle) -> RustEnd {
    let (req_tx, req_rx) = mpsc::unbounded();
    let (in_tx, in_rx) = mpsc::unbounded();
    let (close_tx, close_rx) = oneshot::channel();
    let driver = RustDriver {
        conn: yamux::Connection::new(io, yamux::Config::default(), mode),
        requests: req_rx,
        waiting: None,
        inbound: in_tx,
        close: Some(close_rx),
        closing: false,
    };
    RustEnd {
        handle: RustYamux {
            requests: req_tx,
            inbound: Arc::new(futures::lock::Mutex::new(in_rx)),
        },
        close: close_tx,
        driver: rt.spawn(driver),
    }
}

impl RustYamux {
    async fn open(&self) -> yamux::Stream {
        let (tx, rx) = oneshot::channel();
        self.requests.unbounded_send(tx).unwrap();
        rx.await.unwrap()
    }

    async fn accept(&self) -> Option<yamux::Stream> {
        self.inbound.lock().await.next().await
    }
}

// ------------------------------------------------------------------------ traffic

/// Deterministic bytes for a seed; the first 8 bytes are the seed itself.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
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

/// Sends `send` and reads to the end at the same time; the bytes read must be `expect`.
async fn exchange<S>(stream: S, send: &[u8], expect: &[u8], already: &[u8])
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut r, mut w) = stream.split();
    let sending = async {
        w.write_all(send).await.unwrap();
        w.close().await.unwrap();
    };
    let receiving = async {
        let mut got = already.to_vec();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), expect.len(), "wrong length");
        assert!(got == expect, "wrong bytes");
    };
    futures::join!(sending, receiving);
}

/// The opener of a stream: its seed picks both directions' bytes.
async fn opener<S: AsyncRead + AsyncWrite + Unpin>(stream: S, seed: u64, len: usize) {
    exchange(stream, &pattern(seed, len), &pattern(!seed, len), &[]).await;
}

/// The acceptor: learns the seed from the first 8 bytes, then answers while reading.
async fn acceptor<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, len: usize) -> u64 {
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).await.unwrap();
    let seed = u64::from_le_bytes(head);
    exchange(stream, &pattern(!seed, len), &pattern(seed, len), &head).await;
    seed
}

/// Both sides open `STREAMS_PER_SIDE` streams at once and exchange `SMALL` bytes each way on
/// each.
async fn many_streams(lp2p: Arc<YamuxConnection>, rust: RustYamux) {
    let rt = RuntimeHandle::default();

    // lp2p accepts what rust-yamux opens, and the other way round.
    let lp2p_acceptor = {
        let lp2p = lp2p.clone();
        let rt = rt.clone();
        rt.clone().spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..STREAMS_PER_SIDE {
                let s = lp2p.accept().await.unwrap();
                tasks.push(rt.spawn(acceptor(s, SMALL)));
            }
            let mut seeds: Vec<u64> = futures::future::join_all(tasks)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            seeds.sort_unstable();
            seeds
        })
    };
    let rust_acceptor = {
        let rust = rust.clone();
        let rt = rt.clone();
        rt.clone().spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..STREAMS_PER_SIDE {
                let s = rust.accept().await.unwrap();
                tasks.push(rt.spawn(acceptor(s, SMALL)));
            }
            let mut seeds: Vec<u64> = futures::future::join_all(tasks)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            seeds.sort_unstable();
            seeds
        })
    };
    let mut openers = Vec::new();
    for i in 0..STREAMS_PER_SIDE {
        let (lp2p, rust) = (lp2p.clone(), rust.clone());
        openers.push(rt.spawn(async move {
            opener(lp2p.open().await.unwrap(), i, SMALL).await;
        }));
        openers.push(rt.spawn(async move {
            opener(rust.open().await, 1000 + i, SMALL).await;
        }));
    }
    for o in futures::future::join_all(openers).await {
        o.unwrap();
    }
    assert_eq!(
        rust_acceptor.await.unwrap(),
        (0..STREAMS_PER_SIDE).collect::<Vec<_>>()
    );
    assert_eq!(
        lp2p_acceptor.await.unwrap(),
        (1000..1000 + STREAMS_PER_SIDE).collect::<Vec<_>>()
    );
}

/// One stream from each side carries `LARGE` bytes each way at the same time.
async fn large_transfers(lp2p: Arc<YamuxConnection>, rust: RustYamux) {
    let rt = RuntimeHandle::default();
    let big_from_lp2p = {
        let rust = rust.clone();
        rt.spawn(async move { acceptor(rust.accept().await.unwrap(), LARGE).await })
    };
    opener(lp2p.open().await.unwrap(), 77, LARGE).await;
    assert_eq!(big_from_lp2p.await.unwrap(), 77);
    let big_from_rust = {
        let lp2p = lp2p.clone();
        rt.spawn(async move { acceptor(lp2p.accept().await.unwrap(), LARGE).await })
    };
    opener(rust.open().await, 88, LARGE).await;
    assert_eq!(big_from_rust.await.unwrap(), 88);

    // rust-yamux pings at start, and answers ours: both RTTs are known.
    assert!(lp2p.core(lp2p_yamux::Connection::rtt).is_some());
}

#[test]
fn lp2p_dialer_rust_listener() {
    init_tracing();
    let rt = RuntimeHandle::default();
    let (a, b) = pipe();
    let lp2p = Yamux::default().start(a, Role::Initiator, &rt);
    let rust = start_rust(b, yamux::Mode::Server, &rt);
    // Each phase gets its own timeout (the connection tasks live on between them).
    run(
        "lp2p client, rust-yamux server: many streams",
        many_streams(lp2p.clone(), rust.handle.clone()),
    );
    run(
        "lp2p client, rust-yamux server: 16 MiB each way",
        large_transfers(lp2p.clone(), rust.handle.clone()),
    );
    run("lp2p client, rust-yamux server: close", async {
        // Our close sends GoAway: rust-yamux ends the connection.
        lp2p.close().await;
        assert!(rust.driver.await.unwrap().is_ok());
        drop(rust.close);
    });
}

#[test]
fn rust_dialer_lp2p_listener() {
    init_tracing();
    let rt = RuntimeHandle::default();
    let (a, b) = pipe();
    let rust = start_rust(a, yamux::Mode::Client, &rt);
    let lp2p = Yamux::default().start(b, Role::Responder, &rt);
    run(
        "rust-yamux client, lp2p server: many streams",
        many_streams(lp2p.clone(), rust.handle.clone()),
    );
    run(
        "rust-yamux client, lp2p server: 16 MiB each way",
        large_transfers(lp2p.clone(), rust.handle.clone()),
    );
    run("rust-yamux client, lp2p server: close", async {
        // rust-yamux closes (GoAway): lp2p sees the connection end.
        rust.close.send(()).unwrap();
        rust.driver.await.unwrap().unwrap();
        while !lp2p_core::MuxedConnection::is_closed(&*lp2p) {
            rt.sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(lp2p.core(lp2p_yamux::Connection::remote_go_away), Some(0));
        assert!(lp2p.open().await.is_err());
    });
}
