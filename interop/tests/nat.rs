//! Hole punching through real NATs and firewalls, lp2p against rust-libp2p in the same
//! testbed and run.
//!
//! The testbeds of `crates/node/tests/nat.rs`, from lp2p-testkit's `hole_punching` module
//! (IPv4 NAT routers of the kinds `netns::Nat`, or IPv6 with stateful firewalls):
//!
//! ```text
//!  A 10.0.1.2 ── 10.0.1.1 [router ra] 11.0.1.2 ── 11.0.1.1 [pub: relay] 11.0.2.1 ── 11.0.2.2 [router rb] 10.0.2.1 ── 10.0.2.2 B
//! ```
//!
//! B reserves a slot on the relay (`listen --relay R --dcutr`) and A connects to B through it
//! (`listen --connect <circuit> --dcutr`); B, which receives the relayed connection, starts
//! DCUtR, and its `dcutr` event is the outcome of the run. A pair is either two `lp2p-node`
//! or two `rust-libp2p-node` (rust-libp2p 0.57, libp2p-dcutr 0.15); the relay is `lp2p-node
//! --relay-service` for both. Each run gets a fresh testbed (no conntrack entry or NAT
//! mapping of an earlier run helps a later one) and fresh processes, the implementations
//! interleaved (lp2p, rust, lp2p, rust, ...).
//!
//! Cells, TCP and QUIC each: cone/cone, cone/address-dependent and
//! address-dependent/address-dependent NATs, IPv6 firewall/firewall, IPv6 with no firewall in
//! front of A (reachable: lp2p's plain dial makes the connection, rust-libp2p hole punches),
//! and cone/cone and IPv6 firewall/firewall again with a [`RTT_MS`] round trip between A and
//! B (the `rtt` cells: a user-space delay on both routers' WAN links, so the direct and the
//! relayed round trip are equal), [`RUNS`] runs per implementation. Asserted: every run of both implementations gets its direct connection,
//! to A's router (IPv4) or to A (IPv6). rust-libp2p succeeded in every one of its runs while
//! this test was written, so a failure of rust-libp2p points at rust-libp2p-node's `--dcutr`
//! or at the testbed. With a filter naming them (`symmetric`), the symmetric/cone cells run
//! once per implementation: no run may get a direct connection, and lp2p must make its three
//! attempts (about 35 s a run, so they are not run by default).
//!
//! The table: implementation, transport, routers, direct connections/runs, the median (in
//! round trips too, for the delayed cells) and each run's time to the direct connection (each implementation's own `ms`: lp2p's from the
//! start of its upgrade, which begins when the relayed connection comes up; rust-libp2p-node's
//! from the relayed connection's establishment), and each run's attempts.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); `.ci/run` installs them. Its own harness
//! (`harness = false`): without them the test prints why and is skipped, except with
//! `LP2P_REQUIRE_NETNS=1` (CI), where that is a failure. Arguments that are not flags filter
//! the cells by name (`tcp_cone_cone`, `quic_address_dependent_address_dependent`, ...). The
//! lp2p-node binary is `$LP2P_NODE` when set, otherwise built from the parent workspace.
//! `LP2P_NAT_VERBOSE=1` shows the nodes' stderr and the `dcutr` events. Namespaces, nftables
//! tables (they live in the namespaces) and processes are removed when a run ends, also when
//! it fails. About 75 s on a 2-core machine (a run of a 40 ms cell takes about 1 s: the
//! reservation and the relayed connection cross the delay too).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lp2p_testkit::hole_punching;
use lp2p_testkit::netns::{Nat, Netns};
use serde_json::Value;

const RUST_NODE: &str = env!("CARGO_BIN_EXE_rust-libp2p-node");

/// Hole punches per implementation and cell.
const RUNS: usize = 3;

/// The round-trip time of the delayed cells: long enough that the protocol's round trips,
/// not the programs' processing (about a millisecond), make up the time to the direct
/// connection, short enough for the cells to take seconds.
const RTT_MS: u32 = 40;

/// How long a run waits for a node to listen or to hold its reservation.
const SETUP_WAIT: Duration = Duration::from_secs(30);

/// How long a run waits for B's `dcutr` event: a failing hole punch is three attempts.
const PUNCH_WAIT: Duration = Duration::from_secs(40);

/// How long a run waits for A's `dcutr` event (lp2p) once B has printed its own.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Implementation {
    Lp2p,
    Rust,
}

impl Implementation {
    fn name(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p",
            Implementation::Rust => "rust-libp2p",
        }
    }
}

/// `LP2P_NAT_VERBOSE` is set: the nodes' stderr and the `dcutr` events are shown.
fn verbose() -> bool {
    std::env::var_os("LP2P_NAT_VERBOSE").is_some()
}

/// A node process in a namespace, killed when dropped; its JSON lines arrive on a channel.
struct Node {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Node {
    fn start(
        name: &'static str,
        bed: &Netns,
        ns: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<Node, String> {
        let mut child = bed
            .command(ns, &program.to_string_lossy())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if verbose() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| format!("{name}: cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Ok(Node { name, child, lines })
    }

    /// The next event named `event` within `wait`, skipping others; Err on an `error`
    /// event, an exit or the end of the wait.
    fn wait_for(&self, event: &str, wait: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == event => return Ok(v),
                Ok(v) if v["event"] == "error" => return Err(format!("{}: {v}", self.name)),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no {event} event within {wait:?}", self.name));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{}: exited before a {event} event", self.name));
                }
            }
        }
    }

    /// The first address of the `addrs` of the next `event`.
    fn first_addr(&self, event: &str) -> Result<String, String> {
        let v = self.wait_for(event, SETUP_WAIT)?;
        v["addrs"][0]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{}: {event} without addrs: {v}", self.name))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The routers of a cell.
#[derive(Clone, Copy)]
enum Routers {
    /// IPv4 NATs of these kinds in front of A and B (`hole_punching::testbed_v4`).
    V4(Nat, Nat),
    /// IPv6 without translation (`hole_punching::testbed_v6`): a stateful firewall in front
    /// of B, and in front of A when `firewall_a`.
    V6 { firewall_a: bool },
}

/// One cell of the table.
#[derive(Clone, Copy)]
struct Cell {
    transport: &'static str,
    routers: Routers,
    /// The round-trip time in milliseconds between A and B, direct or through the relay
    /// (`hole_punching::testbed_v4_delayed` and `_v6_delayed`: a quarter of it each way on
    /// each router's WAN link); 0 for none added.
    rtt_ms: u32,
    /// Whether these routers allow a direct connection (a symmetric NAT in front of A does
    /// not: its mapping for B differs from the one the relay observed).
    direct: bool,
}

impl Cell {
    /// A fresh testbed for this cell; removed (with its nftables tables) when dropped, also
    /// on panic.
    fn testbed(self) -> Result<Netns, String> {
        let one_way = Duration::from_micros(u64::from(self.rtt_ms) * 250);
        match self.routers {
            Routers::V4(a, b) => hole_punching::testbed_v4_delayed("ih", a, b, one_way),
            Routers::V6 { firewall_a } => {
                hole_punching::testbed_v6_delayed("ih", firewall_a, true, one_way)
            }
        }
    }

    fn name(self) -> String {
        format!(
            "{}_{}",
            self.transport,
            self.nats()
                .replace(" / ", "_")
                .replace(", ", "_")
                .replace([' ', '-'], "_")
                .to_lowercase()
        )
    }

    fn nats(self) -> String {
        let routers = match self.routers {
            Routers::V4(a, b) => format!("{} / {}", a.name(), b.name()),
            Routers::V6 { firewall_a } => format!(
                "IPv6 {} / IPv6 firewall",
                if firewall_a { "firewall" } else { "none" }
            ),
        };
        match self.rtt_ms {
            0 => routers,
            rtt => format!("{routers}, {rtt} ms RTT"),
        }
    }

    /// `ip` is `None` for the wildcard address.
    fn listen(self, ip: Option<&str>) -> String {
        let (family, wildcard) = match self.routers {
            Routers::V4(..) => ("ip4", "0.0.0.0"),
            Routers::V6 { .. } => ("ip6", "::"),
        };
        let ip = ip.unwrap_or(wildcard);
        match self.transport {
            "tcp" => format!("/{family}/{ip}/tcp/4001"),
            _ => format!("/{family}/{ip}/udp/4001/quic-v1"),
        }
    }

    /// The relay's address and the address B's direct connection must go to (A's router
    /// for IPv4, A itself for IPv6).
    fn relay_and_a(self) -> (&'static str, &'static str) {
        match self.routers {
            Routers::V4(..) => (hole_punching::RELAY_V4, hole_punching::A_PUBLIC_V4),
            Routers::V6 { .. } => (hole_punching::RELAY_V6, hole_punching::A_V6),
        }
    }
}

/// The outcome of one hole punch (B's `dcutr` event).
struct Sample {
    ok: bool,
    ms: Option<f64>,
    attempts: Option<u64>,
    /// Why it failed (B's event or what went wrong).
    why: String,
}

/// One run: a fresh testbed, the relay, then B and A of `imp`. Err when the testbed cannot
/// be built (the run did not happen).
fn punch(cell: Cell, imp: Implementation, lp2p: &Path) -> Result<Sample, String> {
    let bed = cell.testbed()?;
    let (relay_ip, a_ip) = cell.relay_and_a();
    let node = match imp {
        Implementation::Lp2p => lp2p,
        Implementation::Rust => Path::new(RUST_NODE),
    };
    let failed = |why: String| Sample {
        ok: false,
        ms: None,
        attempts: None,
        why,
    };
    let (ns_p, ns_a, ns_b) = (bed.name("p"), bed.name("a"), bed.name("b"));
    let relay = match Node::start(
        "relay",
        &bed,
        &ns_p,
        lp2p,
        &[
            "listen",
            "--addr",
            &cell.listen(Some(relay_ip)),
            "--relay-service",
            "--timeout",
            "300",
        ],
    ) {
        Ok(relay) => relay,
        Err(why) => return Ok(failed(why)),
    };
    let sample = (|| {
        let relay_addr = relay.first_addr("listening")?;
        let b = Node::start(
            "B",
            &bed,
            &ns_b,
            node,
            &[
                "listen",
                "--addr",
                &cell.listen(None),
                "--relay",
                &relay_addr,
                "--dcutr",
                "--timeout",
                "300",
            ],
        )?;
        let circuit = b.first_addr("reservation")?;
        let a = Node::start(
            "A",
            &bed,
            &ns_a,
            node,
            &[
                "listen",
                "--addr",
                &cell.listen(None),
                "--connect",
                &circuit,
                "--dcutr",
                "--timeout",
                "300",
            ],
        )?;
        let event = b.wait_for("dcutr", PUNCH_WAIT)?;
        if verbose() {
            println!("B: {event}");
        }
        let ok = event["ok"] == true;
        if ok {
            let addr = event["addr"].as_str().unwrap_or_default();
            if !addr.contains(a_ip) || addr.contains("p2p-circuit") {
                return Err(format!(
                    "B's direct connection is not to A's router: {event}"
                ));
            }
            if imp == Implementation::Lp2p {
                let answer = a.wait_for("dcutr", ANSWER_WAIT)?;
                if verbose() {
                    println!("A: {answer}");
                }
                if answer["ok"] != true {
                    return Err(format!("A (answering): {answer}\nB: {event}"));
                }
            }
        }
        Ok(Sample {
            ok,
            ms: event["ms"].as_f64().filter(|_| ok),
            attempts: event["attempts"].as_u64(),
            why: if ok { String::new() } else { event.to_string() },
        })
    })()
    .unwrap_or_else(failed);
    drop(relay);
    drop(bed);
    Ok(sample)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let require = std::env::var_os("LP2P_REQUIRE_NETNS").is_some();
    // Cells that cannot give a direct connection take three full attempts (about 35 s a
    // run): they run only when a filter names them (`symmetric`).
    let (cone, dependent) = (Nat::Cone, Nat::AddressDependent);
    let (v6_firewall, v6_open) = (
        Routers::V6 { firewall_a: true },
        Routers::V6 { firewall_a: false },
    );
    let cells: Vec<Cell> = [
        (Routers::V4(cone, cone), 0, true),
        (Routers::V4(cone, dependent), 0, true),
        (Routers::V4(dependent, dependent), 0, true),
        (Routers::V4(cone, cone), RTT_MS, true),
        (v6_firewall, 0, true),
        (v6_firewall, RTT_MS, true),
        (v6_open, 0, true),
        (Routers::V4(Nat::Symmetric, cone), 0, false),
    ]
    .into_iter()
    .flat_map(|(routers, rtt_ms, direct)| {
        ["tcp", "quic"].map(|transport| Cell {
            transport,
            routers,
            rtt_ms,
            direct,
        })
    })
    .filter(|c| {
        let named = filters.iter().any(|f| c.name().contains(f.as_str()));
        named || (filters.is_empty() && c.direct)
    })
    .collect();
    if cells.is_empty() {
        println!("nat: no cell matches the filters");
        return;
    }
    // Can the testbed be built here? (Not root, no `ip` or `nft`: skipped, or failed in CI.)
    let probe = Cell {
        transport: "tcp",
        routers: Routers::V4(cone, cone),
        rtt_ms: 0,
        direct: true,
    };
    if let Err(why) = probe.testbed() {
        if require {
            println!(
                "nat: FAILED: cannot build the NAT testbed: {why} (LP2P_REQUIRE_NETNS is set)"
            );
            std::process::exit(1);
        }
        println!("nat: SKIPPED: cannot build the NAT testbed: {why}");
        return;
    }
    let lp2p = lp2p_interop::lp2p_node_binary(false);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for cell in &cells {
        let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        let runs = if cell.direct { RUNS } else { 1 };
        for run in 1..=runs {
            for (i, imp) in [Implementation::Lp2p, Implementation::Rust]
                .into_iter()
                .enumerate()
            {
                let t0 = Instant::now();
                let sample = match punch(*cell, imp, &lp2p) {
                    Ok(sample) => sample,
                    Err(why) => Sample {
                        ok: false,
                        ms: None,
                        attempts: None,
                        why: format!("cannot build the NAT testbed: {why}"),
                    },
                };
                println!(
                    "{} {} run {run}/{runs} ({:.1} s): {}",
                    cell.name(),
                    imp.name(),
                    t0.elapsed().as_secs_f64(),
                    if sample.ok {
                        format!(
                            "direct in {:.0} ms, {} attempt(s)",
                            sample.ms.unwrap_or(f64::NAN),
                            sample.attempts.unwrap_or(0)
                        )
                    } else {
                        format!("no direct connection: {}", sample.why)
                    }
                );
                if sample.ok != cell.direct {
                    let what = if cell.direct {
                        sample.why.clone()
                    } else {
                        "a direct connection where the routers allow none".to_owned()
                    };
                    failures.push(format!("{} {} run {run}: {what}", cell.name(), imp.name()));
                } else if !cell.direct && imp == Implementation::Lp2p && sample.attempts != Some(3)
                {
                    failures.push(format!(
                        "{} lp2p run {run}: {} attempts, not 3: {}",
                        cell.name(),
                        sample.attempts.unwrap_or(0),
                        sample.why
                    ));
                }
                samples[i].push(sample);
            }
        }
        for (imp, samples) in [Implementation::Lp2p, Implementation::Rust]
            .into_iter()
            .zip(samples)
        {
            rows.push((imp, *cell, samples));
        }
    }
    println!();
    println!(
        "| implementation | transport | NAT of A / B | direct connections | median time (ms) | in RTTs | each run (ms) | attempts |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (imp, cell, samples) in &rows {
        let successes = samples.iter().filter(|s| s.ok).count();
        let ms = median(samples.iter().filter_map(|s| s.ms).collect());
        let each: Vec<String> = samples
            .iter()
            .map(|s| s.ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}")))
            .collect();
        let attempts: Vec<String> = samples
            .iter()
            .map(|s| s.attempts.map_or_else(|| "-".to_owned(), |a| a.to_string()))
            .collect();
        let rtts = match ms {
            Some(ms) if cell.rtt_ms > 0 => format!("{:.1}", ms / f64::from(cell.rtt_ms)),
            _ => "-".to_owned(),
        };
        println!(
            "| {} | {} | {} | {successes}/{} | {} | {rtts} | {} | {} |",
            imp.name(),
            cell.transport,
            cell.nats(),
            samples.len(),
            ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}")),
            each.join(", "),
            attempts.join(", ")
        );
    }
    println!();
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    println!(
        "nat: {} cells x up to {RUNS} runs x 2 implementations, {} failed ({:.0} s)",
        cells.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
