//! Relay benchmark: lp2p's circuit relay v2 against rust-libp2p's (`libp2p-relay` 0.22) on
//! the same machine in one run.
//!
//! Each implementation relays for itself: a relay (`listen --relay-service`, its circuit
//! limits lifted with `--relay-data-limit 0 --relay-duration-limit 0`; rust-libp2p-node also
//! gets `--relay-no-rate-limit`, since libp2p-relay's default rate limiters allow 30 circuits
//! per peer in 2 minutes and lp2p's relay has none), a listener reserving a slot on it
//! (`listen --relay <relay>`), and clients of the same implementation dialing the listener's
//! `<relay>/p2p/RELAY/p2p-circuit/p2p/LISTENER` address, all on 127.0.0.1 over TCP with noise
//! and yamux (`--bare` everywhere), the relayed connection running noise and yamux again
//! inside the circuit. Rounds alternate between the two implementations, in a rotating
//! order, so machine noise hits both alike; the report gives the median of each measure and
//! the ratio lp2p / rust-libp2p turned so that above 1 means lp2p is better.
//!
//! The rows, each measured once per implementation and round:
//! - upload throughput through the relay: one `/perf/1.0.0` exchange of `RELAY_PERF_MIB` up
//!   (`perf --upload-bytes N --download-bytes 0` to the circuit address), MiB over the
//!   `seconds` the client reports (dial of the relay, circuit, handshakes included);
//! - download throughput: another exchange, `RELAY_PERF_MIB` down;
//! - relay CPU per GiB: the CPU time (`/proc/PID/stat`) the relay process spent during both
//!   exchanges, per GiB moved through it;
//! - circuits per second: `conn-bench --count RELAY_CIRCUITS` to the circuit address: each
//!   time a new relayed connection (a CONNECT through the relay, noise and yamux inside),
//!   one echo of one byte on it (ping does not run over relayed connections in lp2p), close;
//! - time to first echo, ms (p50): the median over that conn-bench's connections, from the
//!   start of the dial to the echo's answer.
//!
//! Each round starts a fresh relay and listener for each implementation (not timed): with
//! one rust-libp2p relay and reservation for the whole run, the circuit after about 256
//! made and closed one after the other timed out negotiating (twice, at the same count;
//! something per closed circuit is kept by the relay or the listener, likely yamux's limit
//! of 256 streams; not investigated further), so one setup would not last five rounds.
//!
//! A conn-bench that fails (a circuit that could not be made, as happened past that count)
//! leaves its round out of the two circuit rows and is counted (`failed_lp2p`,
//! `failed_rust`).
//!
//! Besides the table, one JSON line per measure, in whole_stack's format:
//! `{"bench":"relay","measure":..,"unit":..,"better":"higher|lower","lp2p":..,"rust":..,
//! "ratio":..,"rounds":..,"perf_mib":..,"circuits":..,"failed_lp2p":..,"failed_rust":..}`,
//! where `ratio` is plainly lp2p / rust-libp2p and `better` says which way is good.
//!
//! Run with `cargo bench --bench relay` in interop/ (release builds of both stacks;
//! `LP2P_NODE` may name a prebuilt lp2p-node). `RELAY_ROUNDS` (default 5) sets the number of
//! rounds, `RELAY_PERF_MIB` (default 256) the size of each perf exchange, `RELAY_CIRCUITS`
//! (default 100) the connections of each conn-bench.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

// Only `quantile` is used here.
#[allow(dead_code)]
#[path = "network/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "network/proc_stats.rs"]
mod proc_stats;

use common::quantile;
use proc_stats::cpu_seconds;

/// MiB moved by one perf exchange (upload or download).
const PERF_MIB: u64 = 256;
/// Relayed connections per conn-bench run.
const CIRCUITS: u64 = 100;

/// A `listen` process of one implementation and the lines it printed so far.
struct Node {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Node {
    fn start(bin: &Path, extra: &[&str]) -> Node {
        let mut child = Command::new(bin)
            .args(["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--bare"])
            .args(extra)
            .args(["--timeout", "3600"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a listener");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Node { child, lines }
    }

    /// The next event named `name` (panics on an `error` event or the end of the output).
    fn wait_for(&mut self, name: &str) -> Value {
        for line in self.lines.by_ref().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            assert!(event["event"] != "error", "listener failed: {event}");
            if event["event"] == name {
                return event;
            }
        }
        panic!("a listener ended before printing `{name}`");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One implementation's relay and listener.
struct Setup {
    bin: PathBuf,
    relay: Node,
    _listener: Node,
    /// `<relay addr>/p2p-circuit/p2p/<listener>`.
    circuit: String,
}

impl Setup {
    fn start(bin: PathBuf, rust: bool) -> Setup {
        let mut relay_args = vec![
            "--relay-service",
            "--relay-data-limit",
            "0",
            "--relay-duration-limit",
            "0",
        ];
        if rust {
            relay_args.push("--relay-no-rate-limit");
        }
        let mut relay = Node::start(&bin, &relay_args);
        let listening = relay.wait_for("listening");
        let relay_addr = listening["addrs"][0]
            .as_str()
            .expect("the relay's address")
            .to_owned();
        let mut listener = Node::start(&bin, &["--relay", &relay_addr]);
        let peer = listener.wait_for("listening")["peer_id"]
            .as_str()
            .expect("the listener's peer id")
            .to_owned();
        listener.wait_for("reservation");
        Setup {
            bin,
            relay,
            _listener: listener,
            circuit: format!("{relay_addr}/p2p-circuit/p2p/{peer}"),
        }
    }
}

/// Runs a client command of `bin` (`--bare`, a 600 s hard stop) to its end; its last event,
/// or what failed.
fn try_run(bin: &Path, args: &[&str]) -> Result<Value, String> {
    let mut child = Command::new(bin)
        .args(args)
        .args(["--bare", "--timeout", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the client");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read the client's output");
    let status = child.wait().expect("wait for the client");
    let event: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("JSON");
    if status.success() && event["event"] != "error" {
        Ok(event)
    } else {
        Err(format!("{} {args:?} failed: {event}", bin.display()))
    }
}

/// [`try_run`], panicking on a failure.
fn run(bin: &Path, args: &[&str]) -> Value {
    try_run(bin, args).unwrap_or_else(|e| panic!("{e}"))
}

/// The measures, in the order of the report and of a round's values.
struct Measure {
    label: &'static str,
    key: &'static str,
    unit: &'static str,
    higher_is_better: bool,
}

const MEASURES: [Measure; 5] = [
    Measure {
        label: "upload throughput through the relay, MiB/s",
        key: "upload_throughput",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Measure {
        label: "download throughput through the relay, MiB/s",
        key: "download_throughput",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Measure {
        label: "relay CPU per GiB relayed, s",
        key: "relay_cpu_per_gib",
        unit: "s/GiB",
        higher_is_better: false,
    },
    Measure {
        label: "circuits per second (dial+upgrade+echo+close)",
        key: "circuits_per_second",
        unit: "conn/s",
        higher_is_better: true,
    },
    Measure {
        label: "time to first echo, ms (p50)",
        key: "first_echo_p50",
        unit: "ms",
        higher_is_better: false,
    },
];

/// One perf exchange through `setup`'s relay; MiB/s.
fn exchange(setup: &Setup, up: u64, down: u64) -> f64 {
    let (up_s, down_s) = (up.to_string(), down.to_string());
    let perf = run(
        &setup.bin,
        &[
            "perf",
            "--addr",
            &setup.circuit,
            "--upload-bytes",
            &up_s,
            "--download-bytes",
            &down_s,
        ],
    );
    let seconds = perf["seconds"].as_f64().expect("seconds");
    #[allow(clippy::cast_precision_loss)]
    let mib = (up + down) as f64 / f64::from(1 << 20);
    mib / seconds
}

/// One round's values of [`MEASURES`] for `setup`; a conn-bench that failed (a circuit that
/// could not be made) leaves NaN in its rows and counts in `failures`.
fn round(setup: &Setup, perf_mib: u64, circuits: u64, failures: &mut u64) -> [f64; MEASURES.len()] {
    let bytes = perf_mib << 20;
    let cpu_before = cpu_seconds(setup.relay.pid());
    let upload = exchange(setup, bytes, 0);
    let download = exchange(setup, 0, bytes);
    let relay_cpu = cpu_seconds(setup.relay.pid()) - cpu_before;
    #[allow(clippy::cast_precision_loss)]
    let gib = (2 * perf_mib) as f64 / 1024.0;
    let count = circuits.to_string();
    let (rate, first) = match try_run(
        &setup.bin,
        &["conn-bench", "--addr", &setup.circuit, "--count", &count],
    ) {
        Ok(conns) => (
            conns["conns_per_sec"].as_f64().expect("rate"),
            conns["first_ping_ms_p50"].as_f64().expect("p50"),
        ),
        Err(e) => {
            println!("conn-bench failed, its round left out: {e}");
            *failures += 1;
            (f64::NAN, f64::NAN)
        }
    };
    [upload, download, relay_cpu / gib, rate, first]
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs bench targets without it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = usize::try_from(env_number("RELAY_ROUNDS", 5)).unwrap_or(5);
    let perf_mib = env_number("RELAY_PERF_MIB", PERF_MIB).max(1);
    let circuits = env_number("RELAY_CIRCUITS", CIRCUITS).max(1);
    let lp2p = lp2p_interop::lp2p_node_binary(true);
    let rust = PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node"));
    println!(
        "relay: {rounds} rounds on 127.0.0.1 (TCP + noise + yamux, the same inside the \
         circuit), perf {perf_mib} MiB each way, {circuits} circuits per conn-bench, \
         lp2p-node {}",
        lp2p.display()
    );
    let bins = [(lp2p.clone(), false), (rust, true)];
    let mut samples: [Vec<[f64; MEASURES.len()]>; 2] = [Vec::new(), Vec::new()];
    let mut failures = [0u64; 2];
    for i in 0..rounds {
        for k in 0..bins.len() {
            let cell = (i + k) % bins.len();
            // A fresh relay and listener per round (see the module docs).
            let (bin, rust) = &bins[cell];
            let setup = Setup::start(bin.clone(), *rust);
            samples[cell].push(round(&setup, perf_mib, circuits, &mut failures[cell]));
        }
        println!("round {} of {rounds} done", i + 1);
    }
    let median = |cell: usize, measure: usize| {
        let values: Vec<f64> = samples[cell].iter().map(|r| r[measure]).collect();
        quantile(&values, 0.5)
    };
    println!(
        "\ncircuit relay v2 through a relay of each implementation, median of {rounds} \
         interleaved rounds"
    );
    println!(
        "{:50} {:>12} {:>12} {:>10}",
        "", "lp2p", "rust-libp2p", "better by"
    );
    let mut lines = Vec::new();
    for (measure, m) in MEASURES.iter().enumerate() {
        let (ours, theirs) = (median(0, measure), median(1, measure));
        let better = if m.higher_is_better {
            ours / theirs
        } else {
            theirs / ours
        };
        println!("{:50} {ours:>12.2} {theirs:>12.2} {better:>9.2}x", m.label);
        let failed = if m.key.contains("circuits") || m.key.contains("echo") {
            failures
        } else {
            [0, 0]
        };
        lines.push(json!({
            "bench": "relay",
            "measure": m.key,
            "unit": m.unit,
            "better": if m.higher_is_better { "higher" } else { "lower" },
            "lp2p": ours,
            "rust": theirs,
            "ratio": ours / theirs,
            "rounds": rounds,
            "perf_mib": perf_mib,
            "circuits": circuits,
            "failed_lp2p": failed[0],
            "failed_rust": failed[1],
        }));
    }
    println!(
        "conn-benches that failed (rounds left out of the circuit rows): lp2p {}, \
         rust-libp2p {}",
        failures[0], failures[1]
    );
    println!();
    for line in lines {
        println!("{line}");
    }
}
