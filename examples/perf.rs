//! Perf: the `/perf/1.0.0` benchmark protocol between two lp2p hosts over TCP + noise + yamux.
//!
//! ```text
//! cargo run --release -p lp2p-examples --example perf -- listen
//! cargo run --release -p lp2p-examples --example perf -- run /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW... [MIB]
//! ```
//!
//! `run` uploads and then downloads MIB mebibytes (default 64) and prints both throughputs.
//! With no argument the example runs both ends in one process with 16 MiB each way.

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use lp2p::{Host, HostBuilderExt, Multiaddr, Protocol};

fn mib_per_sec(bytes: u64, time: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / f64::from(1u32 << 20);
    mib / time.as_secs_f64().max(1e-9)
}

async fn listen() -> Result<Host, Box<dyn Error>> {
    let host = Host::builder()
        .with_defaults()
        .listen_on("/ip4/127.0.0.1/tcp/0".parse()?)
        .build()
        .await?;
    lp2p_perf::serve(&host, lp2p_perf::PerfConfig::default());
    for addr in host.listen_addrs() {
        println!(
            "perf server on {}",
            addr.with(Protocol::P2p(host.local_peer_id()))
        );
    }
    Ok(host)
}

async fn run(target: Multiaddr, mib: u64) -> Result<(), Box<dyn Error>> {
    let Some(Protocol::P2p(peer)) = target.iter().last() else {
        return Err("the address must end in /p2p/<peer id>".into());
    };
    let host = Host::builder().with_defaults().build().await?;
    host.connect(peer, vec![target]).await?;
    let bytes = mib << 20;
    let report = lp2p_perf::run(&host, &peer, bytes, bytes).await?;
    println!(
        "upload {} MiB in {:.3} s ({:.0} MiB/s), download {} MiB in {:.3} s ({:.0} MiB/s)",
        mib,
        report.upload_time.as_secs_f64(),
        mib_per_sec(report.uploaded, report.upload_time),
        mib,
        report.download_time.as_secs_f64(),
        mib_per_sec(report.downloaded, report.download_time),
    );
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
            Some("run") => {
                let addr: Multiaddr = args.get(1).ok_or("run needs an address")?.parse()?;
                let mib = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(64);
                run(addr, mib).await
            }
            Some(other) => {
                Err(format!("unknown command {other}; use listen or run ADDR [MIB]").into())
            }
            None => {
                let server = listen().await?;
                let addr = server.listen_addrs()[0]
                    .clone()
                    .with(Protocol::P2p(server.local_peer_id()));
                run(addr, 16).await?;
                server.close().await;
                Ok(())
            }
        }
    })
}
