//! Echo: a listener and a dialer echoing lines over TCP + noise + yamux.
//!
//! Run the listener, then the dialer with the address it prints:
//!
//! ```text
//! cargo run -p lp2p-examples --example echo -- listen
//! cargo run -p lp2p-examples --example echo -- dial /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW...
//! ```
//!
//! The dialer sends each line typed on stdin and prints the echo. With no argument the
//! example runs both ends in one process and echoes three lines.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;

use futures::io::BufReader;
use futures::{AsyncBufReadExt, AsyncWriteExt};
use lp2p::{Host, HostBuilderExt, HostStream, Multiaddr, Protocol};

const ECHO: &str = "/echo/1.0.0";

/// Echoes every line back until the remote closes its side.
async fn serve(stream: HostStream) {
    let peer = stream.peer();
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if lines.get_mut().write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }
    println!("echo stream from {peer} done");
}

async fn listen() -> Result<Host, Box<dyn Error>> {
    let host = Host::builder()
        .with_defaults()
        .listen_on("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;
    host.set_stream_handler(ECHO, serve);
    for addr in host.listen_addrs() {
        println!(
            "listening on {}",
            addr.with(Protocol::P2p(host.local_peer_id()))
        );
    }
    Ok(host)
}

async fn dial(target: Multiaddr, lines: Vec<String>) -> Result<(), Box<dyn Error>> {
    let Some(Protocol::P2p(peer)) = target.iter().last() else {
        return Err("the address must end in /p2p/<peer id>".into());
    };
    let host = Host::builder().with_defaults().build().await?;
    host.connect(peer, vec![target]).await?;
    let stream = host.new_stream(&peer, [ECHO]).await?;
    let mut echoes = BufReader::new(stream);
    let mut typed = lines.into_iter();
    let mut stdin = (typed.len() == 0).then(|| std::io::stdin().lines());
    loop {
        let next = match stdin.as_mut() {
            Some(input) => input.next().transpose()?,
            None => typed.next(),
        };
        let Some(line) = next else { break };
        echoes
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .await?;
        let mut answer = String::new();
        echoes.read_line(&mut answer).await?;
        println!("{peer} echoed: {}", answer.trim_end());
    }
    echoes.get_mut().close().await?;
    host.close().await;
    Ok(())
}

fn peer_addr(host: &Host) -> Multiaddr {
    host.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(host.local_peer_id()))
}

fn main() -> Result<(), Box<dyn Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
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
                dial(addr, Vec::new()).await
            }
            Some(other) => Err(format!("unknown command {other}; use listen or dial ADDR").into()),
            None => {
                let server = listen().await?;
                let lines = ["hello", "libp2p", "bye"].map(String::from).to_vec();
                dial(peer_addr(&server), lines).await?;
                server.close().await;
                Ok(())
            }
        }
    })
}
