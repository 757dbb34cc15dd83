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
//! number of rounds.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// MiB each way in one perf exchange: long enough that setup is noise.
const PERF_MIB: u64 = 256;
/// Connections per conn-bench run.
const CONNS: &str = "200";

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

fn round(bin: &Path, addr: &str, samples: &mut Samples) {
    let bytes = (PERF_MIB << 20).to_string();
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
    samples.perf_mib_s.push((2 * PERF_MIB) as f64 / seconds);
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
    let (lp2p_server, rust_server) = (Server::start(&lp2p), Server::start(&rust));
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
            round(bin, addr, &mut samples[cell]);
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
        format!("perf, MiB/s ({PERF_MIB} MiB up + {PERF_MIB} MiB down)"),
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
        "whole stack, TCP 127.0.0.1 + noise + yamux",
        "lp2p",
        "rust-libp2p",
        0,
        1,
    );
    table("whole stack, QUIC 127.0.0.1", "lp2p", "rust-libp2p", 2, 3);
    table(
        "whole stack, WebSocket (/ws) 127.0.0.1 + noise + yamux",
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
