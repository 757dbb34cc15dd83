//! The sans-IO WebSocket core: framing and masking throughput (a client encodes and masks
//! 64 KiB writes, a server decodes and unmasks them), and the raw transport over loopback
//! TCP next to plain TCP (one 64 MiB transfer, 64 KiB writes).
//!
//! Run with `cargo bench -p lp2p-websocket`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput};
use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{Connection, DialOpts, RawTransport};
use lp2p_tcp::TcpTransport;
use lp2p_websocket::session::{Session, Side};
use lp2p_websocket::{Limits, WsTransport};

const CHUNK: usize = 64 * 1024;
const FRAMES: usize = 256;
const TRANSFER: usize = 64 << 20;

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Bytes((CHUNK * FRAMES) as u64));
    let payload = vec![0x5Au8; CHUNK];
    let mut client = Session::new(Side::Client, Limits::default());
    let mut wire = Vec::with_capacity((CHUNK + 14) * FRAMES);
    group.bench_function("client encode + mask, 64 KiB frames", |b| {
        b.iter(|| {
            wire.clear();
            for _ in 0..FRAMES {
                client.encode_data(&payload, &mut wire).unwrap();
            }
        });
    });
    let mut out = vec![0u8; CHUNK];
    group.bench_function("server decode + unmask, 64 KiB frames", |b| {
        b.iter(|| {
            let mut server = Session::new(Side::Server, Limits::default());
            let mut at = 0;
            while at < wire.len() {
                let d = server.decode(&wire[at..], &mut out).unwrap();
                at += d.consumed;
            }
        });
    });
    group.finish();
}

async fn transfer(mut from: Box<dyn Connection>, mut to: Box<dyn Connection>) {
    let send = async move {
        let chunk = vec![1u8; CHUNK];
        for _ in 0..TRANSFER / CHUNK {
            from.write_all(&chunk).await.unwrap();
        }
        from.close().await.unwrap();
    };
    let receive = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            let n = to.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, TRANSFER);
    };
    futures::join!(send, receive);
}

async fn pair(
    transport: &dyn RawTransport,
    listen: &str,
) -> (Box<dyn Connection>, Box<dyn Connection>) {
    let mut listener = transport.listen(&listen.parse().unwrap()).await.unwrap();
    let addr = listener.local_addr();
    let opts = DialOpts::default();
    let (dialed, accepted) = futures::join!(transport.dial(&addr, &opts), listener.accept());
    (dialed.unwrap(), accepted.unwrap())
}

fn loopback(c: &mut Criterion) {
    let mut group = c.benchmark_group("loopback 64 MiB");
    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(10);
    let cases: [(&str, Box<dyn RawTransport>, &str); 2] = [
        (
            "tcp",
            Box::new(TcpTransport::default()),
            "/ip4/127.0.0.1/tcp/0",
        ),
        (
            "ws",
            Box::new(WsTransport::new()),
            "/ip4/127.0.0.1/tcp/0/ws",
        ),
    ];
    for (name, transport, listen) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                block_on(async {
                    let (dialed, accepted) = pair(transport.as_ref(), listen).await;
                    transfer(dialed, accepted).await;
                });
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    codec(&mut c);
    loopback(&mut c);
    c.final_summary();
}
