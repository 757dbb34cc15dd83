//! Whole-stack benchmark: lp2p against rust-libp2p 0.57 on the same machine in one run.
//!
//! Each implementation serves itself: `lp2p-node listen --bare` answers `lp2p-node`
//! clients, `rust-libp2p-node listen --bare` answers `rust-libp2p-node` clients, over TCP and
//! over WebSocket (`/ws`) on 127.0.0.1 with noise and yamux. Rounds alternate between the two
//! so machine noise hits both alike; the report gives the median of each measure and the
//! ratio lp2p / rust-libp2p (above 1 means lp2p is faster), and lp2p's WebSocket throughput
//! as a share of its TCP throughput.
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
    addr: String,
}

impl Server {
    fn start(bin: &Path, listen: &str) -> Server {
        let mut child = Command::new(bin)
            .args(["listen", "--addr", listen, "--bare", "--timeout", "3600"])
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
        let addr = event["addrs"][0].as_str().expect("address").to_owned();
        Server { child, addr }
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

fn round(bin: &Path, server: &Server, samples: &mut Samples) {
    let bytes = (PERF_MIB << 20).to_string();
    let perf = run(
        bin,
        &[
            "perf",
            "--addr",
            &server.addr,
            "--upload-bytes",
            &bytes,
            "--download-bytes",
            &bytes,
        ],
    );
    let seconds = perf["seconds"].as_f64().expect("seconds");
    #[allow(clippy::cast_precision_loss)]
    samples.perf_mib_s.push((2 * PERF_MIB) as f64 / seconds);
    let conns = run(
        bin,
        &["conn-bench", "--addr", &server.addr, "--count", CONNS],
    );
    samples
        .conns_per_sec
        .push(conns["conns_per_sec"].as_f64().expect("rate"));
    samples
        .first_ping_ms
        .push(conns["first_ping_ms_p50"].as_f64().expect("p50"));
}

/// The transports measured: a label and the listen address.
const TRANSPORTS: [(&str, &str); 2] = [
    ("TCP", "/ip4/127.0.0.1/tcp/0"),
    ("WebSocket", "/ip4/127.0.0.1/tcp/0/ws"),
];

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
    let mut lp2p_perf_by_transport = Vec::new();
    for (transport, listen) in TRANSPORTS {
        let (lp2p_server, rust_server) =
            (Server::start(&lp2p, listen), Server::start(&rust, listen));
        let (mut ours, mut theirs) = (Samples::default(), Samples::default());
        for i in 0..rounds {
            if i % 2 == 0 {
                round(&lp2p, &lp2p_server, &mut ours);
                round(&rust, &rust_server, &mut theirs);
            } else {
                round(&rust, &rust_server, &mut theirs);
                round(&lp2p, &lp2p_server, &mut ours);
            }
            println!("{transport}: round {} of {rounds} done", i + 1);
        }
        let ours_perf = median(&mut ours.perf_mib_s);
        lp2p_perf_by_transport.push((transport, ours_perf));
        let rows = [
            (
                "perf, MiB/s (256 MiB up + 256 MiB down)",
                ours_perf,
                median(&mut theirs.perf_mib_s),
                true,
            ),
            (
                "connections per second (dial + upgrade + ping + close)",
                median(&mut ours.conns_per_sec),
                median(&mut theirs.conns_per_sec),
                true,
            ),
            (
                "time to first ping, ms (p50)",
                median(&mut ours.first_ping_ms),
                median(&mut theirs.first_ping_ms),
                false,
            ),
        ];
        println!(
            "\nwhole stack, {transport} 127.0.0.1 + noise + yamux, median of {rounds} interleaved rounds"
        );
        println!(
            "{:58} {:>10} {:>12} {:>16}",
            "", "lp2p", "rust-libp2p", "lp2p advantage"
        );
        for (name, ours, theirs, higher_is_better) in rows {
            let advantage = if higher_is_better {
                ours / theirs
            } else {
                theirs / ours
            };
            println!("{name:58} {ours:>10.2} {theirs:>12.2} {advantage:>15.2}x");
        }
    }
    if let [(_, tcp), (_, ws)] = lp2p_perf_by_transport[..] {
        println!(
            "\nlp2p WebSocket perf throughput is {:.0} % of its TCP throughput",
            100.0 * ws / tcp
        );
    }
}
