//! No message lost on a graceful close: a host that publishes and closes at once (with or
//! without `PubSub::flush`, with or without its `PubSub` handle) still gets the message to
//! its peer, over TCP with noise and yamux, for gossipsub and floodsub.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use lp2p_core::RuntimeHandle;
use lp2p_host::Host;
use lp2p_noise::Noise;
use lp2p_pubsub::{Config, Flushed, PubSub, Subscription};
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Anything a test waits for: generous, the machine may be slow and loaded.
const PATIENCE: Duration = Duration::from_secs(120);

/// Publishers started one after the other, each closing right after its publish.
const ROUNDS: usize = 20;

const TOPIC: &str = "last-words";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Router {
    Gossipsub,
    Floodsub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// `publish`, `flush`, `close`.
    Flush,
    /// `publish`, `close`: the host's close hook flushes.
    Close,
    /// `publish`, drop the `PubSub` handle, `close`.
    DropHandle,
}

async fn host() -> Host {
    Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap()
}

fn pubsub(host: &Host, router: Router) -> PubSub {
    match router {
        Router::Gossipsub => PubSub::gossipsub(host, Config::default()).unwrap(),
        Router::Floodsub => PubSub::floodsub(host, Config::default()).unwrap(),
    }
}

fn run<F: Future<Output = ()>>(test: F) {
    lp2p_core::runtime::block_on(async {
        RuntimeHandle::default()
            .timeout(Duration::from_secs(600), test)
            .await
            .expect("test timed out");
    });
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let rt = RuntimeHandle::default();
    let give_up = rt.now() + PATIENCE;
    while !condition() {
        assert!(rt.now() < give_up, "timed out waiting until {what}");
        rt.sleep(Duration::from_millis(10)).await;
    }
}

/// One publisher after the other connects to a subscriber, publishes once and closes at once;
/// the subscriber gets every message.
async fn publish_and_close(router: Router, exit: Exit) {
    let receiver = host().await;
    let receiver_pubsub = pubsub(&receiver, router);
    let mut messages: Subscription = receiver_pubsub.subscribe(TOPIC).unwrap();
    for round in 0..ROUNDS {
        let sender = host().await;
        let sender_pubsub = pubsub(&sender, router);
        sender
            .connect(receiver.local_peer_id(), receiver.listen_addrs())
            .await
            .unwrap();
        let peer = receiver.local_peer_id();
        wait_until("the receiver's subscription reached the sender", || {
            sender_pubsub.peers(TOPIC).contains(&peer)
        })
        .await;
        let text = format!("round {round} ({router:?}, {exit:?})");
        sender_pubsub
            .publish(TOPIC, text.clone().into_bytes())
            .await
            .unwrap();
        match exit {
            Exit::Flush => {
                let flushed = sender_pubsub.flush().await;
                assert_eq!(
                    flushed,
                    Flushed {
                        peers: 1,
                        lost: Vec::new()
                    }
                );
            }
            Exit::Close => {}
            Exit::DropHandle => drop(sender_pubsub),
        }
        sender.close().await;
        let got = RuntimeHandle::default()
            .timeout(PATIENCE, messages.next())
            .await
            .unwrap_or_else(|_| panic!("{text}: never arrived"))
            .expect("subscription alive");
        assert_eq!(String::from_utf8_lossy(&got.data), text);
    }
    receiver.close().await;
}

#[test]
fn gossipsub_publish_flush_close() {
    run(publish_and_close(Router::Gossipsub, Exit::Flush));
}

#[test]
fn gossipsub_publish_close() {
    run(publish_and_close(Router::Gossipsub, Exit::Close));
}

#[test]
fn gossipsub_publish_drop_handle_close() {
    run(publish_and_close(Router::Gossipsub, Exit::DropHandle));
}

#[test]
fn floodsub_publish_close() {
    run(publish_and_close(Router::Floodsub, Exit::Close));
}

/// With nothing queued, flush answers at once; with no peers, it reports none.
#[test]
fn flush_with_nothing_queued() {
    run(async {
        let alone = host().await;
        let pubsub = pubsub(&alone, Router::Gossipsub);
        assert_eq!(pubsub.flush().await, Flushed::default());
        alone.close().await;
    });
}
