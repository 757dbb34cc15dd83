//! Noise transport throughput over an in-memory pipe (write 64 MiB, read it back) beside a
//! plain ChaCha20-Poly1305 seal + open of the same bytes in the same frame sizes.
//!
//! Both run on one thread, so the ratio compares like with like: the transport's cost on
//! top of the AEAD is framing, buffering and the pipe's copies.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, Key, KeyInit, Nonce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Keypair, Role, RuntimeHandle, UpgradeContext};
use lp2p_memory::{DEFAULT_PIPE_CAPACITY, MemoryConnection};
use lp2p_noise::{MAX_FRAME_PLAINTEXT, Noise, NoiseOutput};

const TOTAL: usize = 64 * 1024 * 1024;
/// Application read and write size.
const CHUNK: usize = 64 * 1024;

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

fn transfer(
    tx: &mut NoiseOutput<MemoryConnection>,
    rx: &mut NoiseOutput<MemoryConnection>,
    data: &[u8],
) {
    lp2p_core::runtime::block_on(async {
        let write = async {
            for chunk in data.chunks(CHUNK) {
                tx.write_all(chunk).await.unwrap();
            }
            tx.flush().await.unwrap();
        };
        let read = async {
            let mut buf = vec![0u8; CHUNK];
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
    group.bench_function("transport_memory_pipe", |b| {
        b.iter(|| transfer(&mut tx, &mut rx, &data));
    });

    let mut plain = vec![0x5au8; TOTAL];
    group.bench_function("plain_chacha20poly1305_seal_open", |b| {
        b.iter(|| seal_and_open(&mut plain));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
