//! Ping: measure round trips to a peer with `/ipfs/ping/1.0.0` (TCP + noise + yamux).
//!
//! ```text
//! cargo run -p lp2p-examples --example ping -- listen
//! cargo run -p lp2p-examples --example ping -- dial /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW... [COUNT]
//! ```
//!
//! Any libp2p node that serves ping works as the remote (go-, js-, rust-libp2p, `lp2p-node
//! listen`). With no argument the example runs both ends in one process and pings 5 times.

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use lp2p::ping::Ping;
use lp2p::{Host, HostBuilderExt, Multiaddr, Protocol};

async fn listen() -> Result<Host, Box<dyn Error>> {
    // `with_defaults` already serves ping (and identify) on every host.
    let host = Host::builder()
        .with_defaults()
        .listen_on("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;
    for addr in host.listen_addrs() {
        println!(
            "listening on {}",
            addr.with(Protocol::P2p(host.local_peer_id()))
        );
    }
    Ok(host)
}

async fn dial(target: Multiaddr, count: u32) -> Result<(), Box<dyn Error>> {
    let Some(Protocol::P2p(peer)) = target.iter().last() else {
        return Err("the address must end in /p2p/<peer id>".into());
    };
    let host = Host::builder().with_defaults().build().await?;
    // The ping service `with_defaults` started, found on the host.
    let ping: Ping = host.service().ok_or("with_defaults starts ping")?;
    host.connect(peer, vec![target]).await?;
    for _ in 0..count {
        let rtt = ping.ping(&peer).await?;
        println!("ping {peer}: {:.3} ms", rtt.as_secs_f64() * 1000.0);
        host.runtime().sleep(Duration::from_millis(500)).await;
    }
    host.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    lp2p::core::runtime::block_on(async {
        match args.first().map(String::as_str) {
            Some("listen") => {
                let _host = listen().await?;
                futures::future::pending::<()>().await;
                Ok(())
            }
            Some("dial") => {
                let addr: Multiaddr = args.get(1).ok_or("dial needs an address")?.parse()?;
                let count = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
                dial(addr, count).await
            }
            Some(other) => {
                Err(format!("unknown command {other}; use listen or dial ADDR [COUNT]").into())
            }
            None => {
                let server = listen().await?;
                let addr = server.listen_addrs()[0]
                    .clone()
                    .with(Protocol::P2p(server.local_peer_id()));
                dial(addr, 5).await?;
                server.close().await;
                Ok(())
            }
        }
    })
}
