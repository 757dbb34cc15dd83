//! Stream throughput over an in-memory duplex (an lp2p-memory pair, 256 KiB per direction):
//! lp2p-yamux against crates.io `yamux` (the crate rust-libp2p uses, default config), side by
//! side in one run, on one stream and on 16 concurrent streams; plus lp2p-yamux's split size.
//!
//! Run with `cargo bench -p lp2p-yamux --bench throughput`. After criterion's own report, a
//! summary prints the median throughput of each and the lp2p / rust-yamux ratios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::channel::{mpsc, oneshot};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::{Role, RuntimeHandle};
use lp2p_memory::MemoryConnection;
use lp2p_yamux::{Yamux, YamuxConfig, YamuxConnection};

/// Bytes moved per iteration.
const TOTAL: usize = 32 * 1024 * 1024;
/// The application's write and read size.
const CHUNK: usize = 64 * 1024;

fn memory_pair() -> (MemoryConnection, MemoryConnection) {
    MemoryConnection::pair(
        lp2p_memory::DEFAULT_PIPE_CAPACITY,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    )
}

/// Throughput samples (bytes per second) per benchmark, for the summary.
fn samples() -> &'static Mutex<BTreeMap<String, Vec<f64>>> {
    static SAMPLES: OnceLock<Mutex<BTreeMap<String, Vec<f64>>>> = OnceLock::new();
    SAMPLES.get_or_init(Mutex::default)
}

fn record(name: &str, bytes: usize, elapsed: Duration) {
    #[allow(clippy::cast_precision_loss)]
    let rate = bytes as f64 / elapsed.as_secs_f64();
    samples()
        .lock()
        .unwrap()
        .entry(name.to_owned())
        .or_default()
        .push(rate);
}

async fn send_all<W: futures::AsyncWrite + Unpin>(mut w: W, bytes: usize) {
    let chunk = vec![0xa5u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK);
        w.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    w.close().await.unwrap();
}

async fn recv_all<R: futures::AsyncRead + Unpin>(mut r: R) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

// ------------------------------------------------------------------------ lp2p-yamux

struct Lp2pPair {
    client: Arc<YamuxConnection>,
    server: Arc<YamuxConnection>,
}

fn lp2p_pair(config: &YamuxConfig, rt: &RuntimeHandle) -> Lp2pPair {
    let (a, b) = memory_pair();
    let yamux = Yamux::new(config.clone());
    Lp2pPair {
        client: yamux.start(a, Role::Initiator, rt),
        server: yamux.start(b, Role::Responder, rt),
    }
}

async fn lp2p_transfer(pair: &Lp2pPair, rt: &RuntimeHandle, streams: usize) {
    let per_stream = TOTAL / streams;
    let server = pair.server.clone();
    let receiver = rt.spawn(async move {
        let mut readers = Vec::new();
        for _ in 0..streams {
            let s = server.accept().await.unwrap();
            readers.push(async move { recv_all(s).await });
        }
        futures::future::join_all(readers)
            .await
            .into_iter()
            .sum::<usize>()
    });
    let mut senders = Vec::new();
    for _ in 0..streams {
        let client = pair.client.clone();
        senders.push(rt.spawn(async move {
            let s = client.open().await.unwrap();
            send_all(s, per_stream).await;
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(receiver.await.unwrap(), per_stream * streams);
}

fn bench_lp2p(c: &mut Criterion, group: &str, name: &str, config: &YamuxConfig, streams: usize) {
    let rt = RuntimeHandle::default();
    let pair = lp2p_pair(config, &rt);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(TOTAL as u64));
    let key = format!("{group}/{name}");
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            lp2p_core::runtime::block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    lp2p_transfer(&pair, &rt, streams).await;
                    let elapsed = start.elapsed();
                    record(&key, TOTAL, elapsed);
                    total += elapsed;
                }
                total
            })
        });
    });
    g.finish();
}

// ------------------------------------------------------------------------ crates.io yamux

/// Drives a `yamux::Connection`: opens streams on request and hands out inbound ones.
struct RustYamuxDriver {
    conn: yamux::Connection<MemoryConnection>,
    requests: mpsc::UnboundedReceiver<oneshot::Sender<yamux::Stream>>,
    waiting: Option<oneshot::Sender<yamux::Stream>>,
    inbound: mpsc::UnboundedSender<yamux::Stream>,
}

impl Future for RustYamuxDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
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
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => this.waiting = Some(tx),
                }
            }
            match this.conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(s))) => {
                    let _ = this.inbound.unbounded_send(s);
                }
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
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

impl RustYamux {
    fn start(io: MemoryConnection, mode: yamux::Mode, rt: &RuntimeHandle) -> RustYamux {
        let (req_tx, req_rx) = mpsc::unbounded();
        let (in_tx, in_rx) = mpsc::unbounded();
        let driver = RustYamuxDriver {
            conn: yamux::Connection::new(io, yamux::Config::default(), mode),
            requests: req_rx,
            waiting: None,
            inbound: in_tx,
        };
        drop(rt.spawn(driver));
        RustYamux {
            requests: req_tx,
            inbound: Arc::new(futures::lock::Mutex::new(in_rx)),
        }
    }

    async fn open(&self) -> yamux::Stream {
        let (tx, rx) = oneshot::channel();
        self.requests.unbounded_send(tx).unwrap();
        rx.await.unwrap()
    }

    async fn accept(&self) -> yamux::Stream {
        self.inbound.lock().await.next().await.unwrap()
    }
}

async fn rust_transfer(client: &RustYamux, server: &RustYamux, rt: &RuntimeHandle, streams: usize) {
    let per_stream = TOTAL / streams;
    let server = server.clone();
    let receiver = rt.spawn(async move {
        let mut readers = Vec::new();
        for _ in 0..streams {
            let s = server.accept().await;
            readers.push(async move { recv_all(s).await });
        }
        futures::future::join_all(readers)
            .await
            .into_iter()
            .sum::<usize>()
    });
    let mut senders = Vec::new();
    for _ in 0..streams {
        let client = client.clone();
        senders.push(rt.spawn(async move {
            let s = client.open().await;
            send_all(s, per_stream).await;
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(receiver.await.unwrap(), per_stream * streams);
}

fn bench_rust(c: &mut Criterion, group: &str, streams: usize) {
    let rt = RuntimeHandle::default();
    let (a, b) = memory_pair();
    let client = RustYamux::start(a, yamux::Mode::Client, &rt);
    let server = RustYamux::start(b, yamux::Mode::Server, &rt);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(TOTAL as u64));
    let key = format!("{group}/rust-yamux");
    g.bench_function("rust-yamux", |b| {
        b.iter_custom(|iters| {
            lp2p_core::runtime::block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    rust_transfer(&client, &server, &rt, streams).await;
                    let elapsed = start.elapsed();
                    record(&key, TOTAL, elapsed);
                    total += elapsed;
                }
                total
            })
        });
    });
    g.finish();
}

// ------------------------------------------------------------------------ main

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time each configuration of the paired comparison runs for.
const PAIRED_TIME: Duration = Duration::from_secs(4);

/// CPU time used by the whole process so far (all threads).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Medians of one side of the paired comparison.
struct Side {
    mib_per_s: f64,
    cpu_ms_per_gib: f64,
}

struct Paired {
    ours: Side,
    theirs: Side,
    /// Median over rounds of (rust-yamux wall time / lp2p-yamux wall time).
    speed_ratio: f64,
    /// Median over rounds of (rust-yamux CPU time / lp2p-yamux CPU time).
    cpu_ratio: f64,
    rounds: usize,
}

/// lp2p-yamux and rust-yamux alternate transfer by transfer (the order flips every round), so
/// a loaded machine slows both alike; each round's pair gives a ratio, and the medians are
/// reported. Wall time gives throughput; process CPU time gives the work per byte, which
/// other load on the machine disturbs much less.
fn paired(config: &YamuxConfig, streams: usize) -> Paired {
    let rt = RuntimeHandle::default();
    let lp2p = lp2p_pair(config, &rt);
    let (a, b) = memory_pair();
    let client = RustYamux::start(a, yamux::Mode::Client, &rt);
    let server = RustYamux::start(b, yamux::Mode::Server, &rt);
    lp2p_core::runtime::block_on(async {
        let (mut ours, mut theirs, mut ours_cpu, mut theirs_cpu) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut speed, mut cpu) = (Vec::new(), Vec::new());
        // One warm-up transfer each.
        lp2p_transfer(&lp2p, &rt, streams).await;
        rust_transfer(&client, &server, &rt, streams).await;
        let started = Instant::now();
        let mut round = 0;
        while started.elapsed() < PAIRED_TIME {
            let mut wall = [Duration::ZERO; 2];
            let mut used = [Duration::ZERO; 2];
            for first_ours in [round % 2 == 0, round % 2 == 1] {
                let (start, start_cpu) = (Instant::now(), cpu_time());
                if first_ours {
                    lp2p_transfer(&lp2p, &rt, streams).await;
                } else {
                    rust_transfer(&client, &server, &rt, streams).await;
                }
                let i = usize::from(!first_ours);
                wall[i] = start.elapsed();
                used[i] = cpu_time().saturating_sub(start_cpu);
            }
            #[allow(clippy::cast_precision_loss)]
            let (mib, gib) = (TOTAL as f64 / 1_048_576.0, TOTAL as f64 / 1_073_741_824.0);
            ours.push(mib / wall[0].as_secs_f64());
            theirs.push(mib / wall[1].as_secs_f64());
            ours_cpu.push(used[0].as_secs_f64() * 1000.0 / gib);
            theirs_cpu.push(used[1].as_secs_f64() * 1000.0 / gib);
            speed.push(wall[1].as_secs_f64() / wall[0].as_secs_f64());
            cpu.push(used[1].as_secs_f64() / used[0].as_secs_f64().max(1e-9));
            round += 1;
        }
        Paired {
            ours: Side {
                mib_per_s: median(&mut ours),
                cpu_ms_per_gib: median(&mut ours_cpu),
            },
            theirs: Side {
                mib_per_s: median(&mut theirs),
                cpu_ms_per_gib: median(&mut theirs_cpu),
            },
            speed_ratio: median(&mut speed),
            cpu_ratio: median(&mut cpu),
            rounds: round,
        }
    })
}

fn print_paired(label: &str, p: &Paired) {
    println!(
        "  {label:<24} lp2p-yamux {:>7.1} MiB/s {:>6.0} ms-CPU/GiB | rust-yamux {:>7.1} MiB/s {:>6.0} ms-CPU/GiB | speed {:.2}x  CPU {:.2}x  ({} rounds)",
        p.ours.mib_per_s,
        p.ours.cpu_ms_per_gib,
        p.theirs.mib_per_s,
        p.theirs.cpu_ms_per_gib,
        p.speed_ratio,
        p.cpu_ratio,
        p.rounds
    );
}

fn summary() {
    let mut samples = samples().lock().unwrap();
    println!("\ncriterion runs, median throughput (MiB/s), all samples incl. warm-up:");
    for (name, v) in samples.iter_mut() {
        println!("  {name:<40} {:>9.1}", median(v) / (1024.0 * 1024.0));
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let default = YamuxConfig::default();
    bench_lp2p(&mut c, "single_stream", "lp2p-yamux", &default, 1);
    bench_rust(&mut c, "single_stream", 1);
    bench_lp2p(&mut c, "16_streams", "lp2p-yamux", &default, 16);
    bench_rust(&mut c, "16_streams", 16);
    if std::env::var_os("YAMUX_BENCH_SPLIT").is_some() {
        for kib in [16usize, 32, 64, 128, 256] {
            let config = YamuxConfig::default().with_split_size(kib * 1024);
            bench_lp2p(&mut c, "split_size", &format!("{kib}KiB"), &config, 1);
            bench_lp2p(&mut c, "split_size_16", &format!("{kib}KiB"), &config, 16);
        }
    }
    c.final_summary();
    summary();
    // `cargo bench -- <filter>` runs a subset; the paired comparison runs unless filtered out.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_none_or(|f| "paired".contains(f)) {
        println!(
            "\npaired comparison ({} MiB per transfer, medians; ratios are rust-yamux / lp2p-yamux time):",
            TOTAL >> 20
        );
        for (label, streams) in [("single_stream", 1), ("16_streams", 16)] {
            print_paired(label, &paired(&default, streams));
        }
        if std::env::var_os("YAMUX_BENCH_SPLIT").is_some() {
            for kib in [16usize, 32, 64, 128, 256] {
                let config = YamuxConfig::default().with_split_size(kib * 1024);
                for streams in [1, 16] {
                    let label = format!("split {kib} KiB, {streams} streams");
                    print_paired(&label, &paired(&config, streams));
                }
            }
        }
    }
}
