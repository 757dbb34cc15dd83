//! Whole-stack benchmark: lp2p against rust-libp2p 0.57 on the same machine in one run.
//!
//! Each implementation serves itself: `lp2p-node listen --bare` answers `lp2p-node`
//! clients, `rust-libp2p-node listen --bare` answers `rust-libp2p-node` clients, on 127.0.0.1
//! over TCP with noise and yamux, over WebSocket (`/ws`, noise and yamux) and over QUIC
//! (lp2p-quic on async-std against rust-libp2p's libp2p-quic on tokio). Rounds alternate
//! between the six cells (implementation x transport), in a rotating order, so machine noise
//! hits all alike; the report gives the median of each measure and the ratio lp2p /
//! rust-libp2p turned so that above 1 means lp2p is better (faster, or less CPU, memory or
//! waiting), then lp2p's QUIC and WebSocket against lp2p's own TCP the same way.
//!
//! The rows, each measured once per cell and round:
//! - upload throughput: one `/perf/1.0.0` exchange of `PERF_MIB` up and nothing down
//!   (`perf --upload-bytes N --download-bytes 0`), MiB over the `seconds` the client reports;
//! - download throughput: another exchange, nothing up and `PERF_MIB` down;
//! - receiver CPU per GiB, upload: the CPU time (`utime + stime` of `/proc/PID/stat`) the
//!   listener spent during the upload exchange, read before the client starts and after it
//!   has exited, per GiB moved;
//! - receiver CPU per GiB, download: the client's CPU time over its whole life (start,
//!   handshake, exchange, close; read from `/proc/PID/stat` once it has closed its output and
//!   before it is reaped), per GiB moved;
//! - listener RSS per idle connection: a fresh `listen --bare` process; its `VmRSS`
//!   (`/proc/PID/status`) once listening, then `lp2p-node hold --count HOLD --bare` to it
//!   (rust-libp2p-node has no `hold`, so the same lp2p client opens the connections to both
//!   listeners), its `VmRSS` again once `hold` has reported them all open and one second has
//!   passed, (after - before) / connections held, in KiB; then the hold process and the
//!   listener are killed. Always direct, never through the delaying relay;
//! - connections per second: `conn-bench` of `CONNS` sequential connections (dial, upgrade,
//!   one ping, close);
//! - time to first ping: the median over that conn-bench's connections (its p50), from the
//!   start of the dial to the ping's answer.
//!
//! Besides the tables, one JSON line per measure and transport:
//! `{"bench":"whole_stack","transport":"tcp|quic|ws","measure":..,"unit":..,"better":
//! "higher|lower","lp2p":..,"rust":..,"ratio":..,"rounds":..,"rtt_ms":..}`, where `ratio` is
//! plainly lp2p / rust-libp2p (as in the gossip bench) and `better` says which way is good.
//!
//! Run with `cargo bench --bench whole_stack` in interop/ (release builds of both stacks;
//! `LP2P_NODE` may name a prebuilt lp2p-node). `WHOLE_STACK_ROUNDS` (default 5) sets the
//! number of rounds, `WHOLE_STACK_PERF_MIB` (default 1024) the size of each perf exchange,
//! `WHOLE_STACK_HOLD` (default 1000; 0 leaves the row out) the idle connections of the RSS
//! row, `WHOLE_STACK_CONNS` (default 200) the connections of each conn-bench,
//! `WHOLE_STACK_TRANSPORTS` (default `tcp,quic,ws`) the transports, `WHOLE_STACK_LABEL` a
//! name for the lp2p-node build carried in the JSON lines (`label`).
//!
//! `WHOLE_STACK_RTT_MS=N` puts a relay emulating a path (`whole_stack/delay.rs`) in front of
//! each server address, so that every round trip costs N ms: the setup figures then show
//! what a handshake's round trips cost (QUIC's one against TCP + noise's several), which
//! loopback's near-zero round trip hides. `WHOLE_STACK_MBIT=R` adds a bottleneck of R Mbit/s
//! in each direction with a queue of one bandwidth-delay product (TCP is back-pressured,
//! UDP datagrams that find the queue full are dropped): throughput then shows how fast each
//! stack's flow control opens up to the path's capacity. Without a bottleneck, throughput
//! through the relay is bound by the relay's own copying and says little. `bash
//! interop/benches/report.sh` runs the 30 and 100 ms rows this way (docs/benchmarks.md).

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use delay::Link;
use serde_json::{Value, json};

#[path = "whole_stack/delay.rs"]
mod delay;

// Only `quantile` is used here.
#[allow(dead_code)]
#[path = "network/common.rs"]
mod common;
#[path = "network/proc_stats.rs"]
mod proc_stats;

use common::quantile;
use proc_stats::{cpu_seconds, status_kib};

/// MiB moved by one perf exchange (upload or download): long enough that setup is noise.
const PERF_MIB: u64 = 1024;
/// Connections per conn-bench run.
const CONNS: u64 = 200;
/// Idle connections `hold` opens for the RSS row.
const HOLD: u64 = 1000;
/// How long the listener is left to settle once `hold` has its connections.
const HOLD_SETTLE: Duration = Duration::from_secs(1);

/// `addr` with its TCP or UDP port replaced by that of a relay emulating `link` (see
/// [`delay`]).
fn relayed(addr: &str, link: Link) -> String {
    let mut parts: Vec<String> = addr.split('/').map(str::to_owned).collect();
    let at = parts
        .iter()
        .position(|p| p == "tcp" || p == "udp")
        .expect("a TCP or UDP address");
    let port: u16 = parts[at + 1].parse().expect("a port");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let relay = if parts[at] == "tcp" {
        delay::tcp(upstream, link)
    } else {
        delay::udp(upstream, link)
    };
    parts[at + 1] = relay.port().to_string();
    parts.join("/")
}

#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Quic,
    Ws,
}

impl Transport {
    /// The name in the JSON lines.
    fn key(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
            Transport::Ws => "ws",
        }
    }
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

    fn addr(&self, transport: Transport) -> &str {
        match transport {
            Transport::Tcp => &self.tcp,
            Transport::Quic => &self.quic,
            Transport::Ws => &self.ws,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a client command of `bin` (`--bare`, a 600 s hard stop), stdout piped.
fn spawn_client(bin: &Path, args: &[&str]) -> Child {
    Command::new(bin)
        .args(args)
        .args(["--bare", "--timeout", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the client")
}

/// Runs a client command to its end; its last event and the CPU seconds it used.
fn run(bin: &Path, args: &[&str]) -> (Value, f64) {
    let mut child = spawn_client(bin, args);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read the client's output");
    // Output closed: the client is done. Read its times before reaping it.
    let cpu = cpu_seconds(child.id());
    let status = child.wait().expect("wait for the client");
    let event: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("JSON");
    assert!(
        status.success() && event["event"] != "error",
        "{} failed: {event}",
        bin.display()
    );
    (event, cpu)
}

/// The measures, in the order of the report and of [`Samples::values`].
struct Measure {
    label: &'static str,
    key: &'static str,
    unit: &'static str,
    higher_is_better: bool,
}

const MEASURES: [Measure; 7] = [
    Measure {
        label: "upload throughput, MiB/s",
        key: "upload_throughput",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Measure {
        label: "download throughput, MiB/s",
        key: "download_throughput",
        unit: "MiB/s",
        higher_is_better: true,
    },
    Measure {
        label: "receiver CPU per GiB, upload (listener), s",
        key: "upload_receiver_cpu_per_gib",
        unit: "s/GiB",
        higher_is_better: false,
    },
    Measure {
        label: "receiver CPU per GiB, download (client), s",
        key: "download_receiver_cpu_per_gib",
        unit: "s/GiB",
        higher_is_better: false,
    },
    Measure {
        label: "listener RSS per idle connection, KiB",
        key: "listener_rss_per_idle_connection",
        unit: "KiB",
        higher_is_better: false,
    },
    Measure {
        label: "connections per second (dial+upgrade+ping+close)",
        key: "connections_per_second",
        unit: "conn/s",
        higher_is_better: true,
    },
    Measure {
        label: "time to first ping, ms (p50)",
        key: "first_ping_p50",
        unit: "ms",
        higher_is_better: false,
    },
];

/// One cell's samples: per measure of [`MEASURES`], one value per round.
#[derive(Default)]
struct Samples {
    values: [Vec<f64>; MEASURES.len()],
}

/// One perf exchange of `up` and `down` bytes; MiB/s of what moved, and the CPU seconds per
/// GiB of the receiver: the listener's (during the exchange) for an upload, the client's
/// for a download.
fn exchange(bin: &Path, server: &Server, addr: &str, up: u64, down: u64) -> (f64, f64) {
    let listener_before = cpu_seconds(server.pid());
    let (up_s, down_s) = (up.to_string(), down.to_string());
    let (perf, client_cpu) = run(
        bin,
        &[
            "perf",
            "--addr",
            addr,
            "--upload-bytes",
            &up_s,
            "--download-bytes",
            &down_s,
        ],
    );
    let listener_cpu = cpu_seconds(server.pid()) - listener_before;
    let seconds = perf["seconds"].as_f64().expect("seconds");
    #[allow(clippy::cast_precision_loss)]
    let mib = (up + down) as f64 / f64::from(1 << 20);
    let receiver_cpu = if up > 0 { listener_cpu } else { client_cpu };
    (mib / seconds, receiver_cpu / (mib / 1024.0))
}

/// Listener RSS per idle connection, KiB: a fresh `bin` listener, `hold` connections from
/// `holder` (lp2p-node) over `transport`. NaN if any connection failed.
fn rss_per_connection(bin: &Path, holder: &Path, transport: Transport, hold: u64) -> f64 {
    let server = Server::start(bin);
    let before = status_kib(server.pid(), "VmRSS");
    let count = hold.to_string();
    let mut client = spawn_client(
        holder,
        &["hold", "--addr", server.addr(transport), "--count", &count],
    );
    let stdout = client.stdout.take().expect("stdout");
    let event = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .find(|e| e["event"] == "hold" || e["event"] == "error");
    std::thread::sleep(HOLD_SETTLE);
    let after = status_kib(server.pid(), "VmRSS");
    let _ = client.kill();
    let _ = client.wait();
    let event = event.unwrap_or(Value::Null);
    let held = event["connections"].as_f64().unwrap_or(0.0);
    if event["event"] != "hold" || event["failed"].as_u64() != Some(0) || held == 0.0 {
        println!(
            "hold to {} ({}) did not open all {hold} connections: {event}",
            bin.display(),
            transport.key()
        );
        return f64::NAN;
    }
    (after - before) / held
}

/// The cell's measures for one round.
fn round(
    perf_mib: u64,
    hold: u64,
    conns: u64,
    (bin, server, transport): (&Path, &Server, Transport),
    holder: &Path,
    samples: &mut Samples,
) {
    let bytes = perf_mib << 20;
    let addr = server.addr(transport);
    let (upload, upload_cpu) = exchange(bin, server, addr, bytes, 0);
    let (download, download_cpu) = exchange(bin, server, addr, 0, bytes);
    let rss = if hold > 0 {
        rss_per_connection(bin, holder, transport, hold)
    } else {
        f64::NAN
    };
    let count = conns.to_string();
    let (conns, _) = run(bin, &["conn-bench", "--addr", addr, "--count", &count]);
    let values = [
        upload,
        download,
        upload_cpu,
        download_cpu,
        rss,
        conns["conns_per_sec"].as_f64().expect("rate"),
        conns["first_ping_ms_p50"].as_f64().expect("p50"),
    ];
    for (series, value) in samples.values.iter_mut().zip(values) {
        series.push(value);
    }
}

/// The transports of `WHOLE_STACK_TRANSPORTS` (comma-separated `tcp`, `quic`, `ws`; all
/// three by default), in the order given.
fn transports_wanted() -> Vec<Transport> {
    let wanted = std::env::var("WHOLE_STACK_TRANSPORTS").unwrap_or_else(|_| "tcp,quic,ws".into());
    let transports: Vec<Transport> = wanted
        .split(',')
        .map(|name| match name.trim() {
            "tcp" => Transport::Tcp,
            "quic" => Transport::Quic,
            "ws" => Transport::Ws,
            other => panic!("WHOLE_STACK_TRANSPORTS: unknown transport {other:?}"),
        })
        .collect();
    assert!(
        !transports.is_empty(),
        "WHOLE_STACK_TRANSPORTS names no transport"
    );
    transports
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs bench targets without it,
    // and a minutes-long benchmark has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = usize::try_from(env_number("WHOLE_STACK_ROUNDS", 5)).unwrap_or(5);
    let perf_mib = env_number("WHOLE_STACK_PERF_MIB", PERF_MIB);
    let hold = env_number("WHOLE_STACK_HOLD", HOLD);
    let conns = env_number("WHOLE_STACK_CONNS", CONNS).max(1);
    let rtt_ms = env_number("WHOLE_STACK_RTT_MS", 0);
    let mbit = env_number("WHOLE_STACK_MBIT", 0);
    // Names the lp2p-node build in the JSON lines (say, `noise-ring` for a build with that
    // feature); empty for the default build.
    let label = std::env::var("WHOLE_STACK_LABEL").unwrap_or_default();
    let lp2p = lp2p_interop::lp2p_node_binary(true);
    let rust = PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node"));
    let (mut lp2p_server, mut rust_server) = (Server::start(&lp2p), Server::start(&rust));
    let link = match (rtt_ms, mbit) {
        (0, 0) => "127.0.0.1".to_owned(),
        (rtt, 0) => format!("127.0.0.1 via a relay adding {rtt} ms RTT"),
        (rtt, rate) => format!("127.0.0.1 via a relay adding {rtt} ms RTT at {rate} Mbit/s"),
    };
    if rtt_ms > 0 || mbit > 0 {
        let emulated = Link {
            rtt: Duration::from_millis(rtt_ms),
            bits_per_sec: mbit.saturating_mul(1_000_000),
        };
        for server in [&mut lp2p_server, &mut rust_server] {
            for addr in [&mut server.tcp, &mut server.quic, &mut server.ws] {
                *addr = relayed(addr, emulated);
            }
        }
    }
    // Per transport, lp2p's cell then rust-libp2p's: cells 2i and 2i + 1 for transports[i].
    let transports = transports_wanted();
    let cells: Vec<(&Path, &Server, Transport)> = transports
        .iter()
        .flat_map(|&t| {
            [
                (lp2p.as_path(), &lp2p_server, t),
                (rust.as_path(), &rust_server, t),
            ]
        })
        .collect();
    println!(
        "whole stack: {rounds} rounds over {link}, perf {perf_mib} MiB each way, {hold} idle \
         connections, {conns} connections per conn-bench, lp2p-node {}",
        lp2p.display()
    );
    let mut samples: Vec<Samples> = cells.iter().map(|_| Samples::default()).collect();
    for i in 0..rounds {
        for k in 0..cells.len() {
            let cell = (i + k) % cells.len();
            round(
                perf_mib,
                hold,
                conns,
                cells[cell],
                &lp2p,
                &mut samples[cell],
            );
        }
        println!("round {} of {rounds} done", i + 1);
    }
    let medians: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.values.iter().map(|v| quantile(v, 0.5)).collect())
        .collect();
    // Above 1: the left column is better.
    let advantage = |m: &Measure, left: f64, right: f64| {
        if m.higher_is_better {
            left / right
        } else {
            right / left
        }
    };
    let table = |title: &str, left: &str, right: &str, a: usize, b: usize| {
        println!("\n{title}, median of {rounds} interleaved rounds");
        println!("{:50} {left:>12} {right:>12} {:>10}", "", "better by");
        for (measure, m) in MEASURES.iter().enumerate() {
            let (ours, theirs) = (medians[a][measure], medians[b][measure]);
            let ratio = advantage(m, ours, theirs);
            println!("{:50} {ours:>12.2} {theirs:>12.2} {ratio:>9.2}x", m.label);
        }
    };
    let name = |t: Transport| match t {
        Transport::Tcp => format!("TCP {link} + noise + yamux"),
        Transport::Quic => format!("QUIC {link}"),
        Transport::Ws => format!("WebSocket (/ws) {link} + noise + yamux"),
    };
    for (i, &t) in transports.iter().enumerate() {
        let title = format!(
            "whole stack, {} (perf {perf_mib} MiB, hold {hold})",
            name(t)
        );
        table(&title, "lp2p", "rust-libp2p", 2 * i, 2 * i + 1);
    }
    if let Some(tcp) = transports.iter().position(|t| t.key() == "tcp") {
        for (i, &t) in transports.iter().enumerate().filter(|(i, _)| *i != tcp) {
            let title = format!(
                "lp2p: {} against its own TCP + noise + yamux",
                t.key().to_uppercase()
            );
            let left = format!("lp2p {}", t.key());
            table(&title, &left, "lp2p tcp", 2 * i, 2 * tcp);
        }
    }
    println!();
    for (i, transport) in transports.iter().enumerate() {
        for (measure, m) in MEASURES.iter().enumerate() {
            let (ours, theirs) = (medians[2 * i][measure], medians[2 * i + 1][measure]);
            println!(
                "{}",
                json!({
                    "bench": "whole_stack",
                    "transport": transport.key(),
                    "measure": m.key,
                    "unit": m.unit,
                    "better": if m.higher_is_better { "higher" } else { "lower" },
                    "lp2p": ours,
                    "rust": theirs,
                    "ratio": ours / theirs,
                    "rounds": rounds,
                    "perf_mib": perf_mib,
                    "hold": hold,
                    "rtt_ms": rtt_ms,
                    "mbit": mbit,
                    "conns": conns,
                    "label": label,
                })
            );
        }
    }
}
