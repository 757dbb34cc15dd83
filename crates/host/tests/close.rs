//! Graceful close: the hooks services register with `Host::on_close` run while the host still
//! works, and the close grace bounds them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::RuntimeHandle;
use lp2p_core::runtime::block_on;
use lp2p_host::{Host, HostConfig, HostStream};
use lp2p_noise::Noise;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

const LAST_WORDS: &str = "/test/last-words/1.0.0";

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

async fn host(config: HostConfig) -> Host {
    Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
        .config(config)
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap()
}

/// A hook opens a stream and writes on it while the host closes: the remote reads every byte,
/// and the connection closes only afterwards.
#[test]
fn hooks_run_before_the_connections_close() {
    run(async {
        let server = host(HostConfig::default()).await;
        let (heard_tx, mut heard) = mpsc::unbounded::<Vec<u8>>();
        server.set_stream_handler(LAST_WORDS, move |mut stream: HostStream| {
            let heard_tx = heard_tx.clone();
            async move {
                let mut buf = Vec::new();
                let _ = stream.read_to_end(&mut buf).await;
                let _ = heard_tx.unbounded_send(buf);
            }
        });
        let client = host(HostConfig::default()).await;
        client
            .connect(server.local_peer_id(), server.listen_addrs())
            .await
            .unwrap();

        let target = server.local_peer_id();
        let weak = client.downgrade();
        let saw_closing = Arc::new(AtomicBool::new(false));
        let saw = saw_closing.clone();
        assert!(client.on_close(move || async move {
            let host = weak.upgrade().unwrap();
            saw.store(host.is_closing() && !host.is_closed(), Ordering::SeqCst);
            // Not a round trip: write, half-close, return. The close that follows must not
            // lose these bytes.
            let mut stream = host.new_stream(&target, [LAST_WORDS]).await.unwrap();
            stream.write_all(&vec![7u8; 100_000]).await.unwrap();
            stream.close().await.unwrap();
        }));
        client.close().await;
        assert!(saw_closing.load(Ordering::SeqCst));
        assert!(client.is_closed());
        assert!(
            !client.on_close(|| async {}),
            "a closed host takes no hooks"
        );

        let words = heard.next().await.unwrap();
        assert_eq!(words, vec![7u8; 100_000]);
        server.close().await;
    });
}

/// A hook that never finishes holds close up for the grace only; the others still run to
/// their end.
#[test]
fn the_grace_bounds_a_stuck_hook() {
    run(async {
        let config = HostConfig {
            close_grace: Duration::from_millis(200),
            ..HostConfig::default()
        };
        let client = host(config).await;
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        client.on_close(futures::future::pending::<()>);
        client.on_close(move || async move {
            done.store(true, Ordering::SeqCst);
        });
        client.close().await;
        assert!(finished.load(Ordering::SeqCst));
        assert!(client.is_closed());
        assert_eq!(client.runtime().live_tasks(), 0);
    });
}

/// Two callers of close wait for the same close; hooks run once.
#[test]
fn concurrent_closes_share_one_run_of_the_hooks() {
    run(async {
        let client = host(HostConfig::default()).await;
        let (ran_tx, mut ran) = mpsc::unbounded::<()>();
        client.on_close(move || async move {
            let _ = ran_tx.unbounded_send(());
        });
        futures::join!(client.close(), client.close());
        assert!(ran.next().await.is_some());
        assert!(ran.next().await.is_none(), "the hook ran twice");
    });
}
