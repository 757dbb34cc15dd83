//! Single-stream QUIC throughput over 127.0.0.1 for several receive windows, in one process
//! (two `QuicTransport`s, async-std): the measurement behind `DEFAULT_STREAM_RECEIVE_WINDOW`
//! and `DEFAULT_CONNECTION_RECEIVE_WINDOW` (the connection window is twice the stream window,
//! the send window equal to it, as in the defaults).
//!
//! Each round sends `QUIC_BENCH_MIB` (default 256) MiB one way on one stream for every window
//! size, in a rotating order so machine noise hits all sizes alike; the report gives each
//! size's median and best MiB/s over `QUIC_BENCH_ROUNDS` (default 5) rounds.
//!
//! `cargo bench -p lp2p-quic --bench windows`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Keypair, RuntimeHandle, Transport, TransportContext};
use lp2p_quic::{QuicConfig, QuicTransport};

const MIB: usize = 1024 * 1024;
/// Stream receive windows tried, MiB.
const WINDOWS: [u32; 6] = [1, 2, 4, 8, 16, 32];
/// Bytes per write and read call, as `lp2p-perf` does.
const CHUNK: usize = 64 * 1024;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One transfer of `mib` MiB with stream window `window` MiB; MiB/s.
async fn transfer(window: u32, mib: usize) -> f64 {
    let bytes = window * 1024 * 1024;
    let config = QuicConfig::default()
        .stream_receive_window(bytes)
        .connection_receive_window(bytes.saturating_mul(2))
        .send_window(u64::from(bytes) * 2);
    let (a, b) = (
        QuicTransport::new(config.clone()),
        QuicTransport::new(config),
    );
    let rt = RuntimeHandle::default();
    let (a_ctx, b_ctx) = (
        TransportContext::new(Keypair::generate_ed25519(), rt.clone()),
        TransportContext::new(Keypair::generate_ed25519(), rt.clone()),
    );
    let mut listener = b
        .listen(&b_ctx, &"/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addrs()[0].clone();
    let receiver = rt.spawn(async move {
        let established = listener.accept().await.unwrap().upgrade.await.unwrap();
        let mut stream = established.muxer.accept_stream().await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0usize;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        stream.close().await.unwrap();
        (total, established)
    });
    let established = a.dial(&a_ctx, &addr, DialOpts::default()).await.unwrap();
    let mut stream = established.muxer.open_stream().await.unwrap();
    let chunk = vec![0x5au8; CHUNK];
    let start = Instant::now();
    for _ in 0..(mib * MIB / CHUNK) {
        stream.write_all(&chunk).await.unwrap();
    }
    stream.close().await.unwrap();
    let mut end = [0u8; 1];
    let _ = stream.read(&mut end).await;
    let seconds = start.elapsed().as_secs_f64();
    let (total, _remote) = receiver.await.unwrap();
    assert_eq!(total, mib * MIB);
    #[allow(clippy::cast_precision_loss)]
    let rate = mib as f64 / seconds;
    established.muxer.close().await;
    rate
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = env("QUIC_BENCH_ROUNDS", 5);
    let mib = env("QUIC_BENCH_MIB", 256);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); WINDOWS.len()];
    block_on(async {
        for round in 0..rounds {
            for k in 0..WINDOWS.len() {
                let i = (round + k) % WINDOWS.len();
                samples[i].push(transfer(WINDOWS[i], mib).await);
            }
            println!("round {} of {rounds} done", round + 1);
        }
    });
    println!("\nQUIC single stream, {mib} MiB one way over 127.0.0.1, {rounds} interleaved rounds");
    println!(
        "{:>22} {:>12} {:>12}",
        "stream window (MiB)", "median MiB/s", "best MiB/s"
    );
    for (window, s) in WINDOWS.iter().zip(&mut samples) {
        s.sort_by(f64::total_cmp);
        let median = s[s.len() / 2];
        let best = s[s.len() - 1];
        println!("{window:>22} {median:>12.1} {best:>12.1}");
    }
}
