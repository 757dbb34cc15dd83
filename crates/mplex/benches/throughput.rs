//! mplex throughput: the sans-IO codec alone, and whole connections over an in-memory pipe
//! with one and with 16 streams, for several frame split sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::{Role, RuntimeHandle};
use lp2p_memory::MemoryConnection;
use std::sync::Arc;

use lp2p_mplex::{Mplex, MplexConfig, MplexConnection, MplexStream, Session};

/// Bytes moved per iteration of the connection benches.
const TOTAL: usize = 16 * 1024 * 1024;
/// The application's write and read size.
const APP_IO: usize = 64 * 1024;

/// Session to session, no I/O: `write` on one side, `handle_input` and `read` on the other.
fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for frame in [128usize, 8 * 1024, 64 * 1024] {
        group.throughput(Throughput::Bytes(TOTAL as u64));
        group.bench_with_input(BenchmarkId::new("frames", frame), &frame, |b, &frame| {
            let config = MplexConfig::default().with_split_size(frame);
            let mut tx = Session::new(Role::Initiator, config.clone());
            let mut rx = Session::new(Role::Responder, config);
            let id = tx.open_stream().unwrap();
            let mut wire = Vec::new();
            tx.poll_transmit(&mut wire);
            rx.handle_input(&wire, Instant::now()).unwrap();
            let rid = rx.accept_stream().unwrap().expect("a stream");
            let data = vec![0x5a; APP_IO];
            let mut buf = vec![0u8; APP_IO];
            b.iter(|| {
                let mut moved = 0;
                while moved < TOTAL {
                    let mut off = 0;
                    while off < data.len() {
                        off += tx.write(id, &data[off..]).unwrap().unwrap_or(0);
                        wire.clear();
                        tx.poll_transmit(&mut wire);
                        let now = Instant::now();
                        rx.handle_input(&wire, now).unwrap();
                        while rx.poll_event().is_some() {}
                        while let Some(n) = rx.read(rid, &mut buf, now).unwrap() {
                            if n == 0 {
                                break;
                            }
                            moved += n;
                        }
                    }
                }
            });
        });
    }
    group.finish();
}

fn pair(config: &MplexConfig, rt: &RuntimeHandle) -> (Arc<MplexConnection>, Arc<MplexConnection>) {
    let (a, b) = MemoryConnection::pair(
        256 * 1024,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    );
    (
        Mplex::new(config.clone()).start(a, Role::Initiator, rt),
        Mplex::new(config.clone()).start(b, Role::Responder, rt),
    )
}

async fn send(mut stream: MplexStream, len: usize) {
    let data = vec![0xa5u8; APP_IO];
    let mut sent = 0;
    while sent < len {
        let n = APP_IO.min(len - sent);
        stream.write_all(&data[..n]).await.unwrap();
        sent += n;
    }
    stream.close().await.unwrap();
}

async fn receive(mut stream: MplexStream) -> usize {
    let mut buf = vec![0u8; APP_IO];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Moves `TOTAL` bytes from dialer to listener over `streams` streams at once.
async fn transfer(
    rt: &RuntimeHandle,
    dialer: &MplexConnection,
    listener: &MplexConnection,
    streams: usize,
) {
    let per_stream = TOTAL / streams;
    let mut senders = Vec::with_capacity(streams);
    for _ in 0..streams {
        senders.push(rt.spawn(send(dialer.open().await.unwrap(), per_stream)));
    }
    let mut receivers = Vec::with_capacity(streams);
    for _ in 0..streams {
        receivers.push(rt.spawn(receive(listener.accept().await.unwrap())));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let mut total = 0;
    for receiver in receivers {
        total += receiver.await.unwrap();
    }
    assert_eq!(total, per_stream * streams);
}

fn connection(c: &mut Criterion) {
    let rt = RuntimeHandle::default();
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    group.sample_size(20);
    for streams in [1usize, 16] {
        for split in [8 * 1024usize, 16 * 1024, 64 * 1024, 256 * 1024] {
            let config = MplexConfig::default().with_split_size(split);
            let (dialer, listener) = pair(&config, &rt);
            group.bench_with_input(
                BenchmarkId::new(format!("{streams} streams, split"), split),
                &streams,
                |b, &streams| {
                    b.iter(|| {
                        lp2p_core::runtime::block_on(transfer(&rt, &dialer, &listener, streams));
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, codec, connection);
criterion_main!(benches);
