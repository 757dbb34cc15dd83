//! Gossipsub network benchmark: lp2p against rust-libp2p 0.57 (libp2p-gossipsub 0.50), each
//! in its own local network of `listen --topic` processes on 127.0.0.1 (TCP, noise, yamux,
//! signed messages, every node subscribed to one topic), both networks up at once, in the
//! same run (issue 18).
//!
//! Scenarios, both run by default:
//!
//! - `large`: 20 nodes per implementation, 50 messages/s of 63 KiB (64 512 bytes). 64 KiB
//!   itself does not fit rust-libp2p: its gossipsub caps a whole RPC at 65 536 bytes by
//!   default (`max_transmit_size`), so a 65 536-byte message plus its signature, author,
//!   seqno and topic would be refused; 1 KiB of headroom keeps both under their defaults
//!   (lp2p's cap is 1 MiB).
//! - `small`: 10 nodes per implementation, 50 messages/s of 256 bytes.
//!
//! The two networks are separate, not one mixed network, so each figure belongs to one
//! implementation. Both are built on the same graph: node `i` of each has the same identity
//! (`--key-seed`) and bootstraps (`--connect`) from the same up to three earlier nodes,
//! picked with a fixed seed. Both run their libraries' defaults: rust-libp2p-node is started
//! with `--heartbeat-ms 1000` (rust-libp2p's default; the node's own 500 ms is for the
//! tests) and `--ping-interval-ms 15000` (rust-libp2p's and lp2p's default ping interval),
//! so both carry the same background traffic.
//!
//! Before timing, the runner waits until the meshes have formed: every node of a network
//! publishes a probe, and the round counts once every probe has reached every other node
//! (rounds repeat until one does), then 5 s more pass so both implementations' first
//! heartbeats have run. Then publishing alternates between the networks in slices
//! of 5 s (lp2p first in even rounds, rust-libp2p first in odd ones), so machine noise hits
//! both alike; after each slice the runner waits until that network has delivered
//! everything (at most 10 s) before the other one starts. Each implementation publishes for
//! `GOSSIP_BENCH_SECONDS` in all.
//!
//! Publishers rotate: message `k` is published by node `k mod n`. One fixed publisher would
//! make one node unlike the others (it signs everything, floods every message to all its
//! peers) and the per-node medians would hide it; rotating makes every node do the same
//! work, so the medians describe a typical node, and the latencies come from every place in
//! the graph. A message's text is `m<seq> ` followed by filler `x` up to the size: the same
//! bytes in both networks, independent of when it is sent; the runner keeps the send time.
//!
//! Measures, per implementation and as the ratio lp2p / rust-libp2p (below 1 means lp2p
//! uses less or is faster, except for deliveries):
//!
//! - delivery latency p50 / p99: from the runner writing the `publish` line to the
//!   publisher's stdin until it reads the `message` event from a receiver's stdout, every
//!   (message, receiver) pair counted;
//! - RSS per node: the median over nodes of the peak (`VmHWM`) and of the final `VmRSS`,
//!   read from `/proc/PID/status` just before the nodes are stopped;
//! - CPU per node: `utime + stime` (`/proc/PID/stat`) from the start of timing to the end,
//!   median over nodes; the window covers both networks' slices, so it includes the time a
//!   network sits idle while the other one publishes (the same for both);
//! - deliveries: `message` events for timed messages, against `published x (n - 1)`, the
//!   fewest any one node got, and the messages no node got; the publishing rate achieved
//!   (writing a 63 KiB line blocks when the node does not read its stdin fast enough).
//!   Latencies are of delivered messages only: read them next to the delivery counts.
//!
//! Run with `cargo bench --bench gossip` in interop/ (release builds of both stacks;
//! `LP2P_NODE` may name a prebuilt lp2p-node). `GOSSIP_BENCH_SECONDS` (default 20) sets the
//! publishing time per implementation and scenario, `GOSSIP_BENCH_SCENARIOS` (default
//! `large,small`) which scenarios run, `GOSSIP_BENCH_LOGS=DIR` keeps each node's stderr in
//! `DIR/<scenario>/<implementation>-<i>.log` (set `RUST_LOG` too). The report is a markdown
//! table per scenario and one JSON line per measure (`{"bench":"gossip","scenario":..,
//! "measure":..,"lp2p":..,"rust":..,"ratio":..}`). Every process is killed when the bench
//! ends, also when it panics.

#![allow(clippy::print_stdout, clippy::cast_precision_loss)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "network/common.rs"]
mod common;
#[path = "network/proc_stats.rs"]
mod proc_stats;

use common::{Imp, graph, quantile};
use proc_stats::{cpu_seconds, status_kib};
use serde_json::{Value, json};

/// The topic every node subscribes to.
const TOPIC: &str = "gossip-bench";
/// Peers each node bootstraps from (fewer for the first nodes): a connected graph with
/// about as many connections per node as gossipsub's mesh degree (D = 6).
const BOOTSTRAP_PEERS: usize = 3;
/// The graph's seed: the same every run.
const GRAPH_SEED: u64 = 0x676f_7373_6970_0001;
/// First `--key-seed` of the nodes (node `i` has `KEY_SEED_BASE + i` in both networks).
const KEY_SEED_BASE: u64 = 7000;
/// How long a starting node may take to print `listening` on a loaded machine.
const START_WAIT: Duration = Duration::from_secs(60);
/// How long one probe round may take to reach every node.
const PROBE_WAIT: Duration = Duration::from_secs(3);
/// How long the meshes may take to form before the bench gives up.
const MESH_WAIT: Duration = Duration::from_secs(120);
/// Quiet time after the meshes first deliver everywhere: both implementations' first
/// heartbeats (rust-libp2p's come after a 5 s initial delay) get to run before timing.
const SETTLE: Duration = Duration::from_secs(5);
/// Publishing time of one slice (one implementation, one round).
const SLICE: Duration = Duration::from_secs(5);
/// How long the runner waits after a slice for its last deliveries.
const DRAIN_WAIT: Duration = Duration::from_secs(10);
/// rust-libp2p's default heartbeat (rust-libp2p-node's own default, 500 ms, is for tests);
/// lp2p's default is 1 s as well.
const RUST_HEARTBEAT_MS: &str = "1000";
/// rust-libp2p's and lp2p's default ping interval (rust-libp2p-node pings every 200 ms
/// unless told otherwise).
const RUST_PING_INTERVAL_MS: &str = "15000";

struct Scenario {
    name: &'static str,
    nodes: usize,
    /// Messages per second, all publishers together.
    rate: u32,
    /// Bytes of message data.
    size: usize,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        name: "large",
        nodes: 20,
        rate: 50,
        size: 63 * 1024,
    },
    Scenario {
        name: "small",
        nodes: 10,
        rate: 50,
        size: 256,
    },
];

/// What a node's stdout reader passes on.
enum Event {
    Listening {
        addr: String,
        peer: String,
    },
    /// A `message` event for a probe (`p<seq>`) or a timed message (`m<seq>`).
    Message {
        probe: bool,
        seq: usize,
    },
    Error(String),
    /// Stdout closed: the node exited.
    Exited,
}

/// Reads what matters from one stdout line. Message lines are not parsed as JSON: a 63 KiB
/// `data` field at up to a thousand lines a second would cost the runner (on the machine
/// the nodes share) more than it needs; only the sequence number at its start is read.
fn parse_line(line: &str) -> Option<Event> {
    if line.contains("\"event\":\"message\"") {
        let data = &line[line.find("\"data\":\"")? + 8..];
        let probe = match data.as_bytes().first()? {
            b'p' => true,
            b'm' => false,
            _ => return None,
        };
        let digits = data[1..].split(|c: char| !c.is_ascii_digit()).next()?;
        return Some(Event::Message {
            probe,
            seq: digits.parse().ok()?,
        });
    }
    let event: Value = serde_json::from_str(line).ok()?;
    match event["event"].as_str()? {
        "listening" => Some(Event::Listening {
            addr: event["addrs"][0].as_str()?.to_owned(),
            peer: event["peer_id"].as_str()?.to_owned(),
        }),
        "error" => Some(Event::Error(line.to_owned())),
        _ => None,
    }
}

/// A listening node, killed when dropped (also when the bench panics).
struct Node {
    child: Child,
    stdin: ChildStdin,
    addr: String,
    peer: String,
}

impl Node {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn publish(&mut self, text: &str) {
        // A failed write means the node died; its reader reports that.
        let _ = writeln!(self.stdin, "publish {TOPIC} {text}");
        let _ = self.stdin.flush();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One network: its nodes (index `i` the same identity and bootstrap peers in both), the
/// events of all of them, and what was published and delivered.
struct Network {
    imp: Imp,
    nodes: Vec<Node>,
    tx: mpsc::Sender<(usize, Instant, Event)>,
    events: mpsc::Receiver<(usize, Instant, Event)>,
    /// Send time of each timed message, by sequence number.
    sent: Vec<Instant>,
    /// Which nodes delivered each timed message.
    delivered: Vec<Vec<bool>>,
    /// Deliveries of timed messages to nodes other than their publisher.
    deliveries: usize,
    /// `message` events repeated for the same (message, node).
    duplicates: usize,
    /// Runner-side latency of each delivery, ms.
    latency_ms: Vec<f64>,
    /// Probe deliveries: (probe sequence number, node).
    probes: Vec<(usize, usize)>,
    /// Wall time spent publishing (all slices).
    publishing: Duration,
}

impl Network {
    fn new(imp: Imp) -> Network {
        let (tx, events) = mpsc::channel();
        Network {
            imp,
            nodes: Vec::new(),
            tx,
            events,
            sent: Vec::new(),
            delivered: Vec::new(),
            deliveries: 0,
            duplicates: 0,
            latency_ms: Vec::new(),
            probes: Vec::new(),
            publishing: Duration::ZERO,
        }
    }

    /// Starts node `i` (the next one) and waits for its `listening` event.
    fn start(&mut self, bin: &Path, seed: u64, connect: &[usize], logs: Option<&Path>) {
        let index = self.nodes.len();
        let stderr = logs.map_or_else(Stdio::null, |dir| {
            let path = dir.join(format!("{}-{index}.log", self.imp.name()));
            std::fs::File::create(&path)
                .unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
                .into()
        });
        let mut command = Command::new(bin);
        command.args([
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--topic",
            TOPIC,
            "--key-seed",
            &seed.to_string(),
            "--timeout",
            "7200",
        ]);
        for &j in connect {
            command.args(["--connect", &self.nodes[j].addr]);
        }
        if self.imp == Imp::Rust {
            command.args([
                "--heartbeat-ms",
                RUST_HEARTBEAT_MS,
                "--ping-interval-ms",
                RUST_PING_INTERVAL_MS,
            ]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {} ({}): {e}", self.imp.name(), bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(256 * 1024, stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let at = Instant::now();
                if let Some(event) = parse_line(line.trim_end())
                    && tx.send((index, at, event)).is_err()
                {
                    return;
                }
            }
            let _ = tx.send((index, Instant::now(), Event::Exited));
        });
        self.nodes.push(Node {
            child,
            stdin,
            addr: String::new(),
            peer: String::new(),
        });
        let deadline = Instant::now() + START_WAIT;
        while self.nodes[index].addr.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((from, at, event)) = self.events.recv_timeout(left) else {
                panic!("{} node {index}: no listening event", self.imp.name());
            };
            if let Event::Listening { addr, peer } = event {
                if from == index {
                    self.nodes[index].addr = addr;
                    self.nodes[index].peer = peer;
                }
            } else {
                self.take(from, at, event);
            }
        }
    }

    /// Books one event.
    fn take(&mut self, node: usize, at: Instant, event: Event) {
        match event {
            Event::Message { probe: true, seq } => self.probes.push((seq, node)),
            Event::Message { probe: false, seq } => {
                let Some(&sent) = self.sent.get(seq) else {
                    return;
                };
                if node == seq % self.nodes.len() {
                    // The publisher's own copy, if an implementation printed one.
                    return;
                }
                if std::mem::replace(&mut self.delivered[seq][node], true) {
                    self.duplicates += 1;
                } else {
                    self.deliveries += 1;
                    self.latency_ms
                        .push(at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
                }
            }
            Event::Error(line) => panic!("{} node {node} failed: {line}", self.imp.name()),
            Event::Exited => panic!("{} node {node} exited", self.imp.name()),
            Event::Listening { .. } => {}
        }
    }

    /// Books the events that arrive until `done` holds or `deadline` passes.
    fn pump_until(&mut self, deadline: Instant, done: impl Fn(&Network) -> bool) -> bool {
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((node, at, event)) => self.take(node, at, event),
                Err(_) => return false,
            }
        }
        true
    }

    /// Probe rounds until one reaches every node; the number of rounds it took.
    fn form_mesh(&mut self) -> usize {
        let n = self.nodes.len();
        let started = Instant::now();
        let mut next = 0;
        let mut round = 0;
        loop {
            round += 1;
            let first = next;
            for i in 0..n {
                self.nodes[i].publish(&format!("p{next}"));
                next += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            self.probes.retain(|&(seq, _)| seq >= first);
            let want = n * (n - 1);
            let complete = self.pump_until(Instant::now() + PROBE_WAIT, |net| {
                let mut got = net.probes.clone();
                got.sort_unstable();
                got.dedup();
                got.iter().filter(|&&(seq, node)| seq % n != node).count() >= want
            });
            if complete {
                return round;
            }
            assert!(
                started.elapsed() < MESH_WAIT,
                "{}: the mesh did not deliver a probe round to every node within {MESH_WAIT:?}",
                self.imp.name()
            );
        }
    }

    /// Publishes `count` timed messages at `rate` per second from rotating nodes, then
    /// waits (at most [`DRAIN_WAIT`]) until every node got every message published so far.
    fn slice(&mut self, count: usize, rate: u32, filler: &str) {
        let n = self.nodes.len();
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let started = Instant::now();
        for k in 0..count {
            let due = started + interval * u32::try_from(k).expect("slice length");
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let seq = self.sent.len();
            let text = format!("m{seq:010} {filler}");
            self.sent.push(Instant::now());
            self.delivered.push(vec![false; n]);
            self.nodes[seq % n].publish(&text);
            // Book what has arrived, so the channel does not grow.
            while let Ok((node, at, event)) = self.events.try_recv() {
                self.take(node, at, event);
            }
        }
        self.publishing += started.elapsed();
        let expected = self.sent.len() * (n - 1);
        self.pump_until(Instant::now() + DRAIN_WAIT, |net| {
            net.deliveries >= expected
        });
    }

    /// Books what is still in flight (at most [`DRAIN_WAIT`]).
    fn drain(&mut self) {
        let expected = self.sent.len() * (self.nodes.len() - 1);
        self.pump_until(Instant::now() + DRAIN_WAIT, |net| {
            net.deliveries >= expected
        });
    }
}

/// One row of the report: a measure of both implementations.
struct Row {
    label: String,
    measure: &'static str,
    values: [f64; 2],
    decimals: usize,
}

/// Runs one scenario; its rows.
fn run(scenario: &Scenario, seconds: u64, lp2p: &Path, rust: &Path) -> Vec<Row> {
    let n = scenario.nodes;
    let edges = graph(n, BOOTSTRAP_PEERS, GRAPH_SEED);
    let logs = std::env::var_os("GOSSIP_BENCH_LOGS").map(|dir| {
        let dir = PathBuf::from(dir).join(scenario.name);
        std::fs::create_dir_all(&dir).expect("create GOSSIP_BENCH_LOGS");
        dir
    });
    let mut networks = [Network::new(Imp::Lp2p), Network::new(Imp::Rust)];
    let started = Instant::now();
    for (i, from) in edges.iter().enumerate() {
        for net in &mut networks {
            let bin = match net.imp {
                Imp::Lp2p => lp2p,
                Imp::Rust => rust,
            };
            net.start(bin, KEY_SEED_BASE + i as u64, from, logs.as_deref());
        }
    }
    assert!(
        networks[0]
            .nodes
            .iter()
            .zip(&networks[1].nodes)
            .all(|(a, b)| a.peer == b.peer),
        "both networks have the same identities"
    );
    println!(
        "{}: {} nodes started in {:.1} s; waiting for the meshes",
        scenario.name,
        2 * n,
        started.elapsed().as_secs_f64()
    );
    for net in &mut networks {
        let at = Instant::now();
        let rounds = net.form_mesh();
        println!(
            "{}: {} mesh delivers to every node after {rounds} probe round(s), {:.1} s",
            scenario.name,
            net.imp.name(),
            at.elapsed().as_secs_f64()
        );
    }
    std::thread::sleep(SETTLE);

    let cpu_start: Vec<Vec<f64>> = networks
        .iter()
        .map(|net| net.nodes.iter().map(|x| cpu_seconds(x.pid())).collect())
        .collect();
    let total = (seconds * u64::from(scenario.rate)) as usize;
    let per_slice = (SLICE.as_secs() * u64::from(scenario.rate)) as usize;
    // The text after `m<seq:010> `: filler up to the message size.
    let filler = "x".repeat(scenario.size.saturating_sub(12));
    let timed = Instant::now();
    let mut round = 0;
    while networks[0].sent.len() < total {
        let count = per_slice.min(total - networks[0].sent.len());
        for x in [round % 2, 1 - round % 2] {
            networks[x].slice(count, scenario.rate, &filler);
        }
        round += 1;
        println!(
            "{}: round {round} done ({} of {total} messages per implementation)",
            scenario.name,
            networks[0].sent.len()
        );
    }
    for net in &mut networks {
        net.drain();
    }
    let window = timed.elapsed();
    let mut cpu_s = [0.0; 2];
    let mut hwm_mib = [0.0; 2];
    let mut rss_mib = [0.0; 2];
    for (x, net) in networks.iter().enumerate() {
        let cpu: Vec<f64> = net
            .nodes
            .iter()
            .zip(&cpu_start[x])
            .map(|(node, start)| (cpu_seconds(node.pid()) - start).max(0.0))
            .collect();
        let kb = |name: &str| -> Vec<f64> {
            net.nodes
                .iter()
                .map(|node| status_kib(node.pid(), name) / 1024.0)
                .collect()
        };
        cpu_s[x] = quantile(&cpu, 0.5);
        hwm_mib[x] = quantile(&kb("VmHWM"), 0.5);
        rss_mib[x] = quantile(&kb("VmRSS"), 0.5);
    }
    let pick = |f: &dyn Fn(&Network) -> f64| [f(&networks[0]), f(&networks[1])];
    let rows = vec![
        Row {
            label: "delivery latency p50, ms".to_owned(),
            measure: "latency_p50_ms",
            values: pick(&|net| quantile(&net.latency_ms, 0.5)),
            decimals: 2,
        },
        Row {
            label: "delivery latency p99, ms".to_owned(),
            measure: "latency_p99_ms",
            values: pick(&|net| quantile(&net.latency_ms, 0.99)),
            decimals: 2,
        },
        Row {
            label: "peak RSS per node (VmHWM), median, MiB".to_owned(),
            measure: "rss_peak_mib",
            values: hwm_mib,
            decimals: 1,
        },
        Row {
            label: "final RSS per node (VmRSS), median, MiB".to_owned(),
            measure: "rss_final_mib",
            values: rss_mib,
            decimals: 1,
        },
        Row {
            label: format!(
                "CPU per node over the {:.0} s window, median, s",
                window.as_secs_f64()
            ),
            measure: "cpu_s",
            values: cpu_s,
            decimals: 2,
        },
        Row {
            label: "messages delivered".to_owned(),
            measure: "delivered",
            values: pick(&|net| net.deliveries as f64),
            decimals: 0,
        },
        Row {
            label: "messages expected (published x (n - 1))".to_owned(),
            measure: "expected",
            values: pick(&|net| (net.sent.len() * (n - 1)) as f64),
            decimals: 0,
        },
        Row {
            label: "fewest messages delivered at one node".to_owned(),
            measure: "delivered_min_node",
            values: pick(&|net| {
                (0..n)
                    .map(|node| net.delivered.iter().filter(|d| d[node]).count())
                    .min()
                    .unwrap_or(0) as f64
            }),
            decimals: 0,
        },
        Row {
            label: "messages that reached no node".to_owned(),
            measure: "lost",
            values: pick(&|net| {
                net.delivered
                    .iter()
                    .filter(|d| !d.iter().any(|&x| x))
                    .count() as f64
            }),
            decimals: 0,
        },
        Row {
            label: "duplicate message events".to_owned(),
            measure: "duplicates",
            values: pick(&|net| net.duplicates as f64),
            decimals: 0,
        },
        Row {
            label: "publishing rate achieved, msg/s".to_owned(),
            measure: "publish_rate",
            values: pick(&|net| net.sent.len() as f64 / net.publishing.as_secs_f64()),
            decimals: 1,
        },
    ];
    println!(
        "{}: timed window {:.0} s, scenario took {:.0} s",
        scenario.name,
        window.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // Dropping the networks kills the nodes.
    drop(networks);
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs bench targets without it,
    // and a minutes-long benchmark has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds: u64 = std::env::var("GOSSIP_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(1);
    let wanted = std::env::var("GOSSIP_BENCH_SCENARIOS").unwrap_or_else(|_| "large,small".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    for name in &wanted {
        assert!(
            SCENARIOS.iter().any(|s| s.name == *name),
            "GOSSIP_BENCH_SCENARIOS: unknown scenario {name} (large, small)"
        );
    }
    let lp2p = lp2p_interop::lp2p_node_binary(true);
    let rust = PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node"));
    println!(
        "gossip bench: {seconds} s of publishing per implementation and scenario, lp2p-node {}",
        lp2p.display()
    );
    for scenario in SCENARIOS.iter().filter(|s| wanted.contains(&s.name)) {
        let rows = run(scenario, seconds, &lp2p, &rust);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "\n### gossip, {}: {} nodes per implementation on 127.0.0.1 (TCP + noise + yamux), \
             {} msg/s of {} B from rotating publishers, {seconds} s per implementation, \
             load average {}\n",
            scenario.name,
            scenario.nodes,
            scenario.rate,
            scenario.size,
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!("| measure | lp2p | rust-libp2p | lp2p / rust-libp2p |");
        println!("|---|---:|---:|---:|");
        for row in &rows {
            let [ours, theirs] = row.values;
            let d = row.decimals;
            let ratio = ours / theirs;
            let ratio = if ratio.is_finite() {
                format!("{ratio:.2}")
            } else {
                "-".to_owned()
            };
            println!("| {} | {ours:.d$} | {theirs:.d$} | {ratio} |", row.label);
        }
        println!();
        for row in &rows {
            let [ours, theirs] = row.values;
            println!(
                "{}",
                json!({
                    "bench": "gossip",
                    "scenario": scenario.name,
                    "nodes": scenario.nodes,
                    "rate": scenario.rate,
                    "bytes": scenario.size,
                    "seconds": seconds,
                    "measure": row.measure,
                    "lp2p": ours,
                    "rust": theirs,
                    "ratio": ours / theirs,
                })
            );
        }
    }
}
