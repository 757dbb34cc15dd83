//! Hole punching through real NATs: a testbed of network namespaces this test makes and
//! removes (also when a case fails), with lp2p-node processes in them.
//!
//! ```text
//!  A 10.0.1.2 ── 10.0.1.1 [router ra] 11.0.1.2 ── 11.0.1.1 [pub: relay] 11.0.2.1 ── 11.0.2.2 [router rb] 10.0.2.1 ── 10.0.2.2 B
//! ```
//!
//! Each router masquerades its LAN behind its WAN address with nftables and drops whatever
//! arrives from the WAN unsolicited (forwarded or for the router itself): a "cone" router
//! keeps source ports (endpoint-independent mapping, the common home router), a "symmetric"
//! one picks a random port per connection (endpoint-dependent mapping, carrier-grade NATs).
//! B reserves a slot on the relay in `pub` and A connects to B through it, both with
//! `--dcutr`; the case passes when both print the expected `dcutr` outcome. Cells: TCP and
//! QUIC across two cone routers (the direct connection must come), and TCP and QUIC from
//! behind a symmetric router (they must fail, after the spec's three attempts).
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); `.ci/run` installs them. This file has
//! its own harness (`harness = false`) so that a case that cannot build its testbed is
//! reported and counted as skipped, not passed; with `LP2P_REQUIRE_NETNS=1` (CI) a skip is a
//! failure. Arguments that are not flags filter the cases by name. A table of the cells
//! (outcome, time to the direct connection, attempts) is printed at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_lp2p-node");

/// How long the test waits for one expected event: generous for a slow, loaded machine. A
/// failing hole punch takes three attempts of up to 10 s dialing each.
const WAIT: Duration = Duration::from_secs(90);

/// How a case ended (a failure is a panic).
enum Outcome {
    Passed(Cell),
    Skipped(String),
}

/// One row of the result table.
struct Cell {
    transport: &'static str,
    nats: String,
    ok: bool,
    ms: Option<f64>,
    attempts: u64,
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

/// Namespaces removed (with their veths) when dropped, also on panic.
struct Testbed {
    namespaces: Vec<String>,
    tag: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nat {
    Cone,
    Symmetric,
}

impl Nat {
    fn name(self) -> &'static str {
        match self {
            Nat::Cone => "cone",
            Nat::Symmetric => "symmetric",
        }
    }
}

impl Testbed {
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.tag)
    }

    fn add(&mut self, role: &str) -> Result<String, String> {
        let name = self.ns(role);
        let _ = ip(&["netns", "del", &name]); // a leftover of a killed run
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// A veth pair between namespaces `a` and `b`, named `a_dev` and `b_dev` there, with
    /// the given addresses (CIDR).
    fn link(
        &self,
        a: &str,
        a_dev: &str,
        a_addr: &str,
        b: &str,
        b_dev: &str,
        b_addr: &str,
    ) -> Result<(), String> {
        let (ta, tb) = (
            format!("{}{a_dev}", self.tag),
            format!("{}{b_dev}", self.tag),
        );
        ip(&[
            "link", "add", &ta, "netns", a, "type", "veth", "peer", "name", &tb, "netns", b,
        ])?;
        for (ns, tmp, dev, addr) in [(a, &ta, a_dev, a_addr), (b, &tb, b_dev, b_addr)] {
            ip(&["-n", ns, "link", "set", tmp, "name", dev])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// The whole testbed with routers of the given kinds.
    fn build(nat_a: Nat, nat_b: Nat) -> Result<Testbed, String> {
        if !cfg!(target_os = "linux") {
            return Err("not Linux".into());
        }
        // Namespaces need root (CAP_SYS_ADMIN).
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not root".into());
        }
        run("nft", &["--version"])?;
        let mut bed = Testbed {
            namespaces: Vec::new(),
            tag: format!("ln{}", std::process::id() % 100_000),
        };
        let public = bed.add("p")?;
        let (ra, rb) = (bed.add("ra")?, bed.add("rb")?);
        let (a, b) = (bed.add("a")?, bed.add("b")?);
        bed.link(&public, "pa", "11.0.1.1/24", &ra, "wan", "11.0.1.2/24")?;
        bed.link(&public, "pb", "11.0.2.1/24", &rb, "wan", "11.0.2.2/24")?;
        bed.link(&ra, "lan", "10.0.1.1/24", &a, "eth0", "10.0.1.2/24")?;
        bed.link(&rb, "lan", "10.0.2.1/24", &b, "eth0", "10.0.2.2/24")?;
        for ns in [&public, &ra, &rb] {
            ip(&[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])?;
        }
        ip(&["-n", &ra, "route", "add", "default", "via", "11.0.1.1"])?;
        ip(&["-n", &rb, "route", "add", "default", "via", "11.0.2.1"])?;
        ip(&["-n", &a, "route", "add", "default", "via", "10.0.1.1"])?;
        ip(&["-n", &b, "route", "add", "default", "via", "10.0.2.1"])?;
        router(&ra, nat_a)?;
        router(&rb, nat_b)?;
        Ok(bed)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for name in &self.namespaces {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Masquerading and a stateful filter on a router namespace.
fn router(ns: &str, nat: Nat) -> Result<(), String> {
    let masquerade = match nat {
        Nat::Cone => "masquerade",
        Nat::Symmetric => "masquerade random",
    };
    let rules = format!(
        "table ip nat {{
            chain postrouting {{
                type nat hook postrouting priority srcnat; policy accept;
                oifname \"wan\" {masquerade}
            }}
        }}
        table inet filter {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iifname \"lo\" accept
                iifname \"lan\" accept
                ct state established,related accept
            }}
            chain forward {{
                type filter hook forward priority filter; policy drop;
                iifname \"lan\" accept
                ct state established,related accept
            }}
        }}"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// An lp2p-node process in a namespace, killed when dropped; its JSON lines arrive on a
/// channel.
struct Node {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Node {
    fn start(name: &'static str, ns: &str, args: &[&str]) -> Node {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, NODE])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("LP2P_NAT_VERBOSE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn lp2p-node");
        let stdout = child.stdout.take().unwrap();
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
        Node { name, child, lines }
    }

    /// The next event named `event`, skipping others; panics after [`WAIT`] or on `error`.
    fn wait_for(&self, event: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == event => return v,
                Ok(v) if v["event"] == "error" => panic!("{}: {v}", self.name),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{}: no {event} event within {WAIT:?}", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{}: exited before a {event} event", self.name)
                }
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One cell: B behind `nat_b` reserves on the relay; A behind `nat_a` connects to it
/// through the relay; both run DCUtR over `transport` (`tcp` or `quic`).
fn cell(transport: &'static str, nat_a: Nat, nat_b: Nat, expect_direct: bool) -> Outcome {
    let bed = match Testbed::build(nat_a, nat_b) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let listen = |ip: &str| match transport {
        "tcp" => format!("/ip4/{ip}/tcp/4001"),
        _ => format!("/ip4/{ip}/udp/4001/quic-v1"),
    };
    let relay = Node::start(
        "relay",
        &bed.ns("p"),
        &[
            "listen",
            "--addr",
            &listen("11.0.1.1"),
            "--relay-service",
            "--timeout",
            "300",
        ],
    );
    let relay_addr = relay.wait_for("listening")["addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Node::start(
        "B",
        &bed.ns("b"),
        &[
            "listen",
            "--addr",
            &listen("0.0.0.0"),
            "--relay",
            &relay_addr,
            "--dcutr",
            "--timeout",
            "300",
        ],
    );
    let circuit = b.wait_for("reservation")["addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let a = Node::start(
        "A",
        &bed.ns("a"),
        &[
            "listen",
            "--addr",
            &listen("0.0.0.0"),
            "--connect",
            &circuit,
            "--dcutr",
            "--timeout",
            "300",
        ],
    );
    let b_event = b.wait_for("dcutr");
    let a_event = a.wait_for("dcutr");
    let b_ok = b_event["ok"].as_bool().unwrap();
    assert_eq!(
        b_ok, expect_direct,
        "B (initiating): {b_event}\nA (answering): {a_event}"
    );
    if expect_direct {
        assert_eq!(a_event["ok"], true, "A: {a_event}");
        let addr = b_event["addr"].as_str().unwrap();
        assert!(
            addr.contains("11.0.1.2"),
            "B's direct connection goes to A's router: {addr}"
        );
        assert!(!addr.contains("p2p-circuit"), "{addr}");
    } else {
        assert_eq!(b_event["attempts"], 3, "B tries three times: {b_event}");
    }
    let cell = Cell {
        transport,
        nats: format!("{} / {}", nat_a.name(), nat_b.name()),
        ok: b_ok,
        ms: b_event["ms"].as_f64(),
        attempts: b_event["attempts"].as_u64().unwrap_or(0),
    };
    drop((a, b, relay));
    drop(bed);
    Outcome::Passed(cell)
}

fn tcp_across_two_cone_nats() -> Outcome {
    cell("tcp", Nat::Cone, Nat::Cone, true)
}

fn quic_across_two_cone_nats() -> Outcome {
    cell("quic", Nat::Cone, Nat::Cone, true)
}

fn tcp_from_behind_a_symmetric_nat_fails() -> Outcome {
    cell("tcp", Nat::Symmetric, Nat::Cone, false)
}

fn quic_from_behind_a_symmetric_nat_fails() -> Outcome {
    cell("quic", Nat::Symmetric, Nat::Cone, false)
}

type Case = (&'static str, fn() -> Outcome);

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: [Case; 4] = [
        ("tcp_across_two_cone_nats", tcp_across_two_cone_nats),
        ("quic_across_two_cone_nats", quic_across_two_cone_nats),
        (
            "tcp_from_behind_a_symmetric_nat_fails",
            tcp_from_behind_a_symmetric_nat_fails,
        ),
        (
            "quic_from_behind_a_symmetric_nat_fails",
            quic_from_behind_a_symmetric_nat_fails,
        ),
    ];
    let require = std::env::var_os("LP2P_REQUIRE_NETNS").is_some();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut table = Vec::new();
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(case) {
            Ok(Outcome::Passed(cell)) => {
                passed += 1;
                println!("test {name} ... ok");
                table.push(cell);
            }
            Ok(Outcome::Skipped(why)) if require => {
                failed += 1;
                println!(
                    "test {name} ... FAILED (cannot build the NAT testbed: {why}; LP2P_REQUIRE_NETNS is set)"
                );
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                println!("test {name} ... SKIPPED (cannot build the NAT testbed: {why})");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    if !table.is_empty() {
        println!();
        println!("| transport | NAT of A / B | direct connection | time (ms) | attempts |");
        println!("|---|---|---|---|---|");
        for c in &table {
            println!(
                "| {} | {} | {} | {} | {} |",
                c.transport,
                c.nats,
                if c.ok { "yes" } else { "no" },
                c.ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}")),
                c.attempts
            );
        }
    }
    println!("nat: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
