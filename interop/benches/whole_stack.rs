//! Whole-stack benchmark: lp2p against rust-libp2p 0.57 on the same machine in one run.
//!
//! Each implementation serves itself: `lp2p-node listen --bare` answers `lp2p-node`
//! clients, `rust-libp2p-node listen --bare` answers `rust-libp2p-node` clients, on 127.0.0.1
//! over TCP with noise and yamux, over WebSocket (`/ws`, noise and yamux) and over QUIC
//! (lp2p-quic on async-std against rust-libp2p's libp2p-quic on tokio). Rounds alternate
//! between the six cells (implementation x transport), in a rotating order, so machine noise
//! hits all alike; the report gives the median of each measure and the ratio lp2p /
//! rust-libp2p (above 1 means lp2p is faster), then lp2p's QUIC and WebSocket against lp2p's
//! own TCP.
//!
//! - perf: one `/perf/1.0.0` exchange, `PERF_MIB` up then `PERF_MIB` down, in MiB/s;
//! - connections: `conn-bench` of `CONNS` sequential connections (dial, upgrade, one ping,
//!   close), in connections per second, and the median time to first ping.
//!
//! Run with `cargo bench --bench whole_stack` in interop/ (release builds of both stacks;
//! `LP2P_NODE` may name a prebuilt lp2p-node). `WHOLE_STACK_ROUNDS` (default 5) sets the
//! number of rounds, `WHOLE_STACK_PERF_MIB` (default 256) the perf size.
//!
//! `WHOLE_STACK_RTT_MS=N` puts a delaying relay (`whole_stack/delay.rs`) in front of each
//! server address, so that every round trip costs N ms: the setup figures then show what a
//! handshake's round trips cost (QUIC's one against TCP + noise's several), which loopback's
//! near-zero round trip hides. Throughput through the relay says little (a window-bound
//! transfer over a user-space relay); use a small `WHOLE_STACK_PERF_MIB` with it.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

#[path = "whole_stack/delay.rs"]
mod delay;

/// MiB each way in one perf exchange: long enough that setup is noise.
const PERF_MIB: u64 = 256;
/// Connections per conn-bench run.
const CONNS: &str = "200";

/// `addr` with its TCP or UDP port replaced by a delaying relay's (see [`delay`]).
fn relayed(addr: &str, rtt: std::time::Duration) -> String {
    let mut parts: Vec<String> = addr.split('/').map(str::to_owned).collect();
    let at = parts
        .iter()
        .position(|p| p == "tcp" || p == "udp")
        .expect("a TCP or UDP address");
    let port: u16 = parts[at + 1].parse().expect("a port");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let relay = if parts[at] == "tcp" {
        delay::tcp(upstream, rtt)
    } else {
        delay::udp(upstream, rtt)
    };
    parts[at + 1] = relay.port().to_string();
    parts.join("/")
}

struct Server {
    child: Child,
    tcp: String,
    quic: String,
    ws: String,
}

impl Server {
    fn start(bin: &Path) -> Server {
        let mut child = Command::new(bin)
            .args([
                "listen",
                "--addr",
                "/ip4/127.0.0.1/tcp/0",
                "--addr",
                "/ip4/127.0.0.1/udp/0/quic-v1",
                "--addr",
                "/ip4/127.0.0.1/tcp/0/ws",
                "--bare",
                "--timeout",
                "3600",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("listening line");
        let event: Value = serde_json::from_str(&line).expect("JSON");
        let addrs: Vec<String> = event["addrs"]
            .as_array()
            .expect("addresses")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        let pick = |needle: &str| {
            addrs
                .iter()
                .find(|a| a.contains(needle) && (needle == "/ws" || !a.ends_with("/ws")))
                .cloned()
                .expect("a listen address of each transport")
        };
        Server {
            tcp: pick("/tcp/"),
            quic: pick("/quic-v1"),
            ws: pick("/ws"),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(bin: &Path, args: &[&str]) -> Value {
    let output = Command::new(bin)
        .args(args)
        .args(["--bare", "--timeout", "600"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let event: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("JSON");
    assert!(
        output.status.success() && event["event"] != "error",
        "{} failed: {event}",
        bin.display()
    );
    event
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[derive(Default)]
struct Samples {
    perf_mib_s: Vec<f64>,
    conns_per_sec: Vec<f64>,
    first_ping_ms: Vec<f64>,
}

fn round(perf_mib: u64, bin: &Path, addr: &str, samples: &mut Samples) {
    let bytes = (perf_mib << 20).to_string();
    let perf = run(
        bin,
        &[
            "perf",
            "--addr",
            addr,
            "--upload-bytes",
            &bytes,
            "--download-bytes",
            &bytes,
        ],
    );
    let seconds = perf["seconds"].as_f64().expect("seconds");
    #[allow(clippy::cast_precision_loss)]
    samples.perf_mib_s.push((2 * perf_mib) as f64 / seconds);
    let conns = run(bin, &["conn-bench", "--addr", addr, "--count", CONNS]);
    samples
        .conns_per_sec
        .push(conns["conns_per_sec"].as_f64().expect("rate"));
    samples
        .first_ping_ms
        .push(conns["first_ping_ms_p50"].as_f64().expect("p50"));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs bench targets without it,
    // and a minutes-long benchmark has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("WHOLE_STACK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lp2p = lp2p_interop::lp2p_node_binary(true);
    let rust = PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node"));
    let (mut lp2p_server, mut rust_server) = (Server::start(&lp2p), Server::start(&rust));
    let perf_mib: u64 = std::env::var("WHOLE_STACK_PERF_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PERF_MIB);
    let rtt_ms: Option<u64> = std::env::var("WHOLE_STACK_RTT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&ms| ms > 0);
    let link = match rtt_ms {
        Some(ms) => format!("127.0.0.1 via a relay adding {ms} ms RTT"),
        None => "127.0.0.1".to_owned(),
    };
    if let Some(ms) = rtt_ms {
        let rtt = std::time::Duration::from_millis(ms);
        for server in [&mut lp2p_server, &mut rust_server] {
            for addr in [&mut server.tcp, &mut server.quic, &mut server.ws] {
                *addr = relayed(addr, rtt);
            }
        }
    }
    // [lp2p TCP, rust TCP, lp2p QUIC, rust QUIC, lp2p WebSocket, rust WebSocket]
    let cells: [(&Path, &str); 6] = [
        (&lp2p, &lp2p_server.tcp),
        (&rust, &rust_server.tcp),
        (&lp2p, &lp2p_server.quic),
        (&rust, &rust_server.quic),
        (&lp2p, &lp2p_server.ws),
        (&rust, &rust_server.ws),
    ];
    let mut samples: [Samples; 6] = Default::default();
    for i in 0..rounds {
        for k in 0..cells.len() {
            let cell = (i + k) % cells.len();
            let (bin, addr) = cells[cell];
            round(perf_mib, bin, addr, &mut samples[cell]);
        }
        println!("round {} of {rounds} done", i + 1);
    }
    let medians: Vec<[f64; 3]> = samples
        .iter_mut()
        .map(|s| {
            [
                median(&mut s.perf_mib_s),
                median(&mut s.conns_per_sec),
                median(&mut s.first_ping_ms),
            ]
        })
        .collect();
    let names = [
        format!("perf, MiB/s ({perf_mib} MiB up + {perf_mib} MiB down)"),
        "connections per second (dial + upgrade + ping + close)".to_owned(),
        "time to first ping, ms (p50)".to_owned(),
    ];
    // Higher is better for perf and connections, lower for the first ping.
    let advantage = |measure: usize, ours: f64, theirs: f64| {
        if measure == 2 {
            theirs / ours
        } else {
            ours / theirs
        }
    };
    let table = |title: &str, left: &str, right: &str, a: usize, b: usize| {
        println!("\n{title}, median of {rounds} interleaved rounds");
        println!("{:58} {left:>12} {right:>12} {:>10}", "", "ratio");
        for (measure, name) in names.iter().enumerate() {
            let (ours, theirs) = (medians[a][measure], medians[b][measure]);
            let ratio = advantage(measure, ours, theirs);
            println!("{name:58} {ours:>12.2} {theirs:>12.2} {ratio:>9.2}x");
        }
    };
    table(
        &format!("whole stack, TCP {link} + noise + yamux"),
        "lp2p",
        "rust-libp2p",
        0,
        1,
    );
    table(
        &format!("whole stack, QUIC {link}"),
        "lp2p",
        "rust-libp2p",
        2,
        3,
    );
    table(
        &format!("whole stack, WebSocket (/ws) {link} + noise + yamux"),
        "lp2p",
        "rust-libp2p",
        4,
        5,
    );
    table(
        "lp2p: QUIC against its own TCP + noise + yamux",
        "lp2p QUIC",
        "lp2p TCP",
        2,
        0,
    );
    table(
        "lp2p: WebSocket against its own TCP + noise + yamux",
        "lp2p ws",
        "lp2p TCP",
        4,
        0,
    );
}
