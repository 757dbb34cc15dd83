//! Chat: gossipsub between processes. Every line typed on stdin is published on a topic;
//! every message on the topic is printed with its author.
//!
//! Start the first peer, then others with the address it prints (any number of them, each
//! given one or more peers to join through):
//!
//! ```text
//! cargo run -p lp2p-examples --example chat
//! cargo run -p lp2p-examples --example chat -- /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW...
//! ```
//!
//! Messages spread through the gossipsub mesh, so peers that are not connected to each
//! other directly still chat. Ctrl-D (end of input) leaves.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;

use futures::StreamExt;
use futures::channel::mpsc;
use lp2p::pubsub::{Config, PubSub};
use lp2p::{Host, HostBuilderExt, Multiaddr, Protocol};

const TOPIC: &str = "lp2p-chat";

fn short(peer: Option<lp2p::PeerId>) -> String {
    let text = peer.map_or_else(|| "anonymous".to_owned(), |p| p.to_string());
    text.chars().skip(text.len().saturating_sub(8)).collect()
}

async fn chat(peers: Vec<Multiaddr>) -> Result<(), Box<dyn Error>> {
    let host = Host::builder()
        .with_defaults()
        .listen_on("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;
    let pubsub = PubSub::gossipsub(&host, Config::default())?;
    let mut messages = pubsub.subscribe(TOPIC)?.fuse();
    for addr in host.listen_addrs() {
        println!(
            "# listening on {}",
            addr.with(Protocol::P2p(host.local_peer_id()))
        );
    }
    for addr in peers {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(format!("{addr} must end in /p2p/<peer id>").into());
        };
        host.connect(peer, vec![addr.clone()]).await?;
        println!("# connected to {peer}");
    }
    println!("# type a line and press enter to send it to everyone on \"{TOPIC}\"");

    // Stdin is blocking: read it on a thread and hand the lines over.
    let (lines_tx, mut lines) = mpsc::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });

    loop {
        futures::select! {
            message = messages.next() => match message {
                Some(message) => println!("<{}> {}", short(message.source), String::from_utf8_lossy(&message.data)),
                None => break,
            },
            line = lines.next() => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => {
                    if let Err(e) = pubsub.publish(TOPIC, line.into_bytes()).await {
                        eprintln!("# not sent: {e}");
                    }
                }
                None => break,
            },
        }
    }
    host.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let peers = std::env::args()
        .skip(1)
        .map(|a| a.parse::<Multiaddr>())
        .collect::<Result<Vec<_>, _>>()?;
    lp2p::core::runtime::block_on(chat(peers))
}
