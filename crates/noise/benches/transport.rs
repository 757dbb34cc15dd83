//! Noise transport throughput over an in-memory pipe (write 64 MiB, read it back) beside a
//! plain ChaCha20-Poly1305 seal + open of the same bytes in the same frame sizes.
//!
//! Both run on one thread, so the ratio compares like with like: the transport's cost on
//! top of the AEAD is framing, buffering and the pipe's copies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, Key, KeyInit, Nonce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Keypair, Role, RuntimeHandle, UpgradeContext};
use lp2p_memory::{DEFAULT_PIPE_CAPACITY, MemoryConnection};
use lp2p_noise::{MAX_FRAME_PLAINTEXT, Noise, NoiseOutput};

const TOTAL: usize = 64 * 1024 * 1024;
/// Application read size, and the write size of the chunked variant.
const READ_CHUNK: usize = 64 * 1024;

fn connected() -> (NoiseOutput<MemoryConnection>, NoiseOutput<MemoryConnection>) {
    let (a, b) = MemoryConnection::pair(
        DEFAULT_PIPE_CAPACITY,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    );
    let rt = RuntimeHandle::default();
    let ca = UpgradeContext::new(Keypair::generate_ed25519(), rt.clone());
    let cb = UpgradeContext::new(Keypair::generate_ed25519(), rt);
    let noise = Noise::new();
    lp2p_core::runtime::block_on(async {
        let (x, y) = futures::join!(
            noise.secure(a, Role::Initiator, &ca, None),
            noise.secure(b, Role::Responder, &cb, None)
        );
        (x.unwrap().0, y.unwrap().0)
    })
}

/// Writes `data` in `chunk`-sized writes (the whole of it at once when `chunk` is its
/// length), flushes, and reads it all back on the other side in 64 KiB reads, both halves
/// on one thread.
fn transfer(
    tx: &mut NoiseOutput<MemoryConnection>,
    rx: &mut NoiseOutput<MemoryConnection>,
    data: &[u8],
    chunk: usize,
) {
    lp2p_core::runtime::block_on(async {
        let write = async {
            for piece in data.chunks(chunk) {
                tx.write_all(piece).await.unwrap();
            }
            tx.flush().await.unwrap();
        };
        let read = async {
            let mut buf = vec![0u8; READ_CHUNK];
            let mut left = data.len();
            while left > 0 {
                let n = rx.read(&mut buf).await.unwrap();
                assert!(n > 0);
                left -= n;
            }
            black_box(&buf);
        };
        futures::join!(write, read);
    });
}

fn seal_and_open(data: &mut [u8]) {
    let sender = ChaCha20Poly1305::new(&Key::from([1u8; 32]));
    let receiver = ChaCha20Poly1305::new(&Key::from([1u8; 32]));
    for (n, frame) in (0u64..).zip(data.chunks_mut(MAX_FRAME_PLAINTEXT)) {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_le_bytes());
        let nonce = Nonce::from(nonce);
        let tag = sender
            .encrypt_inout_detached(&nonce, &[], InOutBuf::from(&mut *frame))
            .unwrap();
        receiver
            .decrypt_inout_detached(&nonce, &[], InOutBuf::from(&mut *frame), &tag)
            .unwrap();
    }
    black_box(data);
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("noise_64MiB");
    group
        .throughput(Throughput::Bytes(TOTAL as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));

    let data = vec![0x5au8; TOTAL];
    let (mut tx, mut rx) = connected();
    // "Write 64 MiB": one write_all of the whole buffer; every frame is encrypted straight
    // from it.
    group.bench_function("transport_memory_pipe", |b| {
        b.iter(|| transfer(&mut tx, &mut rx, &data, TOTAL));
    });
    // The same bytes in 64 KiB writes: each write leaves a partial frame that the next one
    // completes by copying, so this also measures the coalescing path.
    group.bench_function("transport_memory_pipe_64KiB_writes", |b| {
        b.iter(|| transfer(&mut tx, &mut rx, &data, READ_CHUNK));
    });

    let mut plain = vec![0x5au8; TOTAL];
    group.bench_function("plain_chacha20poly1305_seal_open", |b| {
        b.iter(|| seal_and_open(&mut plain));
    });
    group.finish();
}

/// With `NOISE_BENCH_INTERLEAVED=<rounds>` set, also runs the three cases in alternation and
/// prints the fastest and the median round of each, with the ratio to the plain AEAD. On a
/// shared, loaded machine the fastest rounds are the least disturbed, and alternating keeps
/// load changes from favouring one case.
fn interleaved(_: &mut Criterion) {
    let Some(rounds) = std::env::var("NOISE_BENCH_INTERLEAVED")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
    else {
        return;
    };
    let data = vec![0x5au8; TOTAL];
    let mut plain = vec![0x5au8; TOTAL];
    let (mut tx, mut rx) = connected();
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        let t = Instant::now();
        seal_and_open(&mut plain);
        times[0].push(t.elapsed());
        let t = Instant::now();
        transfer(&mut tx, &mut rx, &data, TOTAL);
        times[1].push(t.elapsed());
        let t = Instant::now();
        transfer(&mut tx, &mut rx, &data, READ_CHUNK);
        times[2].push(t.elapsed());
    }
    let mib = f64::from(u32::try_from(TOTAL / (1024 * 1024)).unwrap());
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        (v[0], v[v.len() / 2])
    };
    let (plain_min, plain_med) = stats(&mut times[0]);
    for (name, i) in [
        ("plain_chacha20poly1305_seal_open", 0),
        ("transport_memory_pipe", 1),
        ("transport_memory_pipe_64KiB_writes", 2),
    ] {
        let (min, med) = stats(&mut times[i]);
        eprintln!(
            "interleaved {name}: fastest {:.1} ms ({:.0} MiB/s, {:.0}% of plain), median {:.1} ms ({:.0} MiB/s, {:.0}% of plain)",
            min.as_secs_f64() * 1e3,
            mib / min.as_secs_f64(),
            100.0 * plain_min.as_secs_f64() / min.as_secs_f64(),
            med.as_secs_f64() * 1e3,
            mib / med.as_secs_f64(),
            100.0 * plain_med.as_secs_f64() / med.as_secs_f64(),
        );
    }
}

criterion_group!(benches, bench, interleaved);
criterion_main!(benches);
