//! Hole punching through real NATs: a testbed of network namespaces this test makes and
//! removes (also when a case fails), with lp2p-node processes in them.
//!
//! ```text
//!  A 10.0.1.2 ── 10.0.1.1 [router ra] 11.0.1.2 ── 11.0.1.1 [pub: relay] 11.0.2.1 ── 11.0.2.2 [router rb] 10.0.2.1 ── 10.0.2.2 B
//! ```
//!
//! Each router masquerades its LAN behind its WAN address with nftables and drops whatever
//! arrives from the WAN unsolicited (forwarded or for the router itself); the kinds are
//! lp2p-testkit's `netns::Nat`, whose `ruleset` holds and explains the rules: a "cone"
//! router keeps source ports and lets in only the exact remote endpoints the LAN sent to
//! (endpoint-independent mapping, the common home router), an "address-dependent" one lets
//! in any port of a remote IP the LAN sent to (a set of contacted IPs and a `dnat` to the
//! LAN host), a "symmetric" one picks a random port per connection (endpoint-dependent
//! mapping, carrier-grade NATs). B reserves a slot on the relay in `pub` and A connects to B
//! through it, both with `--dcutr`; the case passes when both print the expected `dcutr`
//! outcome. Cells: TCP and QUIC across cone/cone, cone/address-dependent and
//! address-dependent/address-dependent routers (the direct connection must come), and from
//! behind a symmetric router (it must fail, after the spec's three attempts).
//!
//! IPv6 cells (`*_ipv6_*`, in threads beside the others): no NAT, stateful firewalls on the
//! routers; TCP and QUIC hole punching across two firewalls (after B's plain dial to A's
//! address times out), and B's plain dial succeeding when A has no firewall (the
//! unilateral upgrade).
//!
//! AutoNAT cells (`autonat_*`, run in threads beside the others, each in namespaces of its
//! own): three `listen --autonat` servers in a public namespace and a tested node connected
//! to all of them: on a public address (verdict `public`), behind a cone router (its
//! observed address `private`), and behind miniupnpd with `--upnp` (the mapped address
//! `public`).
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and miniupnpd; `.ci/run` installs them. This file has
//! its own harness (`harness = false`) so that a case that cannot build its testbed is
//! reported and counted as skipped, not passed; with `LP2P_REQUIRE_NETNS=1` (CI) a skip is a
//! failure. Arguments that are not flags filter the cases by name. Tables of the cells
//! (outcome, time to the direct connection, attempts; AutoNAT verdicts and the time to
//! them) are printed at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lp2p_testkit::hole_punching;
use lp2p_testkit::netns::{self, Nat, Netns};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_lp2p-node");

/// How long the test waits for one expected event: generous for a slow, loaded machine. A
/// failing hole punch takes three attempts of up to 10 s dialing each.
const WAIT: Duration = Duration::from_secs(90);

/// How a case ended (a failure is a panic).
enum Outcome {
    Passed(Cell),
    Verdict(Verdict),
    /// A filtering check passed (no table row).
    Filtering,
    /// The relay cell passed: the bytes the relay let through before it cut the transfer.
    Relay(u64),
    Skipped(String),
}

/// One row of the AutoNAT table.
struct Verdict {
    node: &'static str,
    status: String,
    addr: String,
    ms: f64,
}

/// One row of the result table.
struct Cell {
    transport: &'static str,
    nats: String,
    ok: bool,
    ms: Option<f64>,
    attempts: u64,
    /// The direct connection came from the plain dial before hole punching.
    unilateral: bool,
    /// Why the last attempt failed, for a cell without a direct connection.
    error: Option<String>,
}

/// The hole-punching testbed: `pub` with the relay, routers `ra` and `rb`, hosts `a` and `b`
/// (see the picture at the top); removed when dropped, also on panic.
struct Testbed {
    netns: Netns,
}

impl Testbed {
    fn ns(&self, role: &str) -> String {
        self.netns.name(role)
    }

    /// The whole testbed with routers of the given kinds; `prefix` starts its namespaces'
    /// names (cases that run at the same time use different ones).
    fn build(prefix: &str, nat_a: Nat, nat_b: Nat) -> Result<Testbed, String> {
        let netns = hole_punching::testbed_v4(prefix, nat_a, nat_b)?;
        Ok(Testbed { netns })
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
        let mut child = std::process::Command::new("ip")
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

impl Node {
    /// The next `event` or `error` event within [`WAIT`], whichever comes first; panics when
    /// neither comes (an exit, the end of the wait).
    fn event_or_error(&self, event: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == event || v["event"] == "error" => return v,
                Ok(_) => {}
                Err(e) => panic!("{}: no {event} or error event: {e}", self.name),
            }
        }
    }

    /// The next event named `event` within `wait`, or None (an `error` event, an exit or
    /// the end of the wait).
    fn event_within(&self, event: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == event => return Some(v),
                Ok(v) if v["event"] == "error" => return None,
                Ok(_) => {}
                Err(_) => return None,
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

/// The relay (`listen` of `relay_ip`) in `p`, B in `b` listening on `any` and reserving on
/// it, and A in `a` listening on `any` and connecting to B through it; B and A run DCUtR.
fn relay_b_and_a(
    bed: &Netns,
    listen: &dyn Fn(&str) -> String,
    relay_ip: &str,
    any: &str,
) -> (Node, Node, Node) {
    let relay = Node::start(
        "relay",
        &bed.name("p"),
        &[
            "listen",
            "--addr",
            &listen(relay_ip),
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
        &bed.name("b"),
        &[
            "listen",
            "--addr",
            &listen(any),
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
        &bed.name("a"),
        &[
            "listen",
            "--addr",
            &listen(any),
            "--connect",
            &circuit,
            "--dcutr",
            "--timeout",
            "300",
        ],
    );
    (relay, b, a)
}

/// One cell: B behind `nat_b` reserves on the relay; A behind `nat_a` connects to it
/// through the relay; both run DCUtR over `transport` (`tcp` or `quic`).
fn cell(transport: &'static str, nat_a: Nat, nat_b: Nat, expect_direct: bool) -> Outcome {
    let bed = match Testbed::build("ln", nat_a, nat_b) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let listen = |ip: &str| match transport {
        "tcp" => format!("/ip4/{ip}/tcp/4001"),
        _ => format!("/ip4/{ip}/udp/4001/quic-v1"),
    };
    let (relay, b, a) = relay_b_and_a(&bed.netns, &listen, "11.0.1.1", "0.0.0.0");
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
        // Each attempt really dials: the one before it freed the 4-tuple (a retry used to
        // fail at once with EADDRNOTAVAIL while the previous attempt's socket lingered).
        let error = b_event["error"].as_str().unwrap_or_default();
        assert!(
            !error.contains("os error 99") && !error.contains("not available"),
            "a retry found the previous attempt's socket: {b_event}"
        );
    }
    let cell = Cell {
        transport,
        nats: format!("{} / {}", nat_a.name(), nat_b.name()),
        ok: b_ok,
        ms: b_event["ms"].as_f64(),
        attempts: b_event["attempts"].as_u64().unwrap_or(0),
        unilateral: b_event["unilateral"] == true,
        error: b_event["error"].as_str().map(str::to_owned),
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

fn tcp_across_cone_and_address_dependent_nats() -> Outcome {
    cell("tcp", Nat::Cone, Nat::AddressDependent, true)
}

fn quic_across_cone_and_address_dependent_nats() -> Outcome {
    cell("quic", Nat::Cone, Nat::AddressDependent, true)
}

fn tcp_across_two_address_dependent_nats() -> Outcome {
    cell("tcp", Nat::AddressDependent, Nat::AddressDependent, true)
}

fn quic_across_two_address_dependent_nats() -> Outcome {
    cell("quic", Nat::AddressDependent, Nat::AddressDependent, true)
}

fn tcp_from_behind_a_symmetric_nat_fails() -> Outcome {
    cell("tcp", Nat::Symmetric, Nat::Cone, false)
}

fn quic_from_behind_a_symmetric_nat_fails() -> Outcome {
    cell("quic", Nat::Symmetric, Nat::Cone, false)
}

// --- The relay across NATs -------------------------------------------------------------

/// The relay's data limit per circuit and direction in the relay cell: small, so a transfer
/// of [`RELAY_CELL_UPLOAD`] crosses it.
const RELAY_CELL_LIMIT: u64 = 64 * 1024;
/// What A tries to upload through the relay in the relay cell.
const RELAY_CELL_UPLOAD: u64 = 1024 * 1024;

/// Circuit relay v2 across two cone NATs, without DCUtR: B reserves on the public relay, A
/// echoes through the circuit (both dial out through their NATs; the relay joins them), and
/// an upload bigger than the relay's data limit is cut (the relay resets the circuit).
fn relay_across_two_nats_echoes_and_cuts_a_transfer_at_its_limit() -> Outcome {
    let bed = match Testbed::build("lr", Nat::Cone, Nat::Cone) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let limit = RELAY_CELL_LIMIT.to_string();
    let relay = Node::start(
        "relay",
        &bed.ns("p"),
        &[
            "listen",
            "--addr",
            "/ip4/11.0.1.1/tcp/4001",
            "--relay-service",
            "--relay-data-limit",
            &limit,
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
            "/ip4/0.0.0.0/tcp/4001",
            "--relay",
            &relay_addr,
            "--timeout",
            "300",
        ],
    );
    let circuit = b.wait_for("reservation")["addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let text = "through two NATs and a relay";
    let echo = Node::start(
        "A (echo)",
        &bed.ns("a"),
        &["dial", "--addr", &circuit, "--echo", text],
    );
    let echoed = echo.wait_for("echo");
    assert_eq!(echoed["ok"], true, "{echoed}");
    assert_eq!(echoed["bytes"], text.len(), "{echoed}");
    let upload = RELAY_CELL_UPLOAD.to_string();
    let perf = Node::start(
        "A (perf)",
        &bed.ns("a"),
        &[
            "perf",
            "--addr",
            &circuit,
            "--upload-bytes",
            &upload,
            "--download-bytes",
            "0",
        ],
    );
    let outcome = perf.event_or_error("perf");
    assert_eq!(
        outcome["event"], "error",
        "an upload of {RELAY_CELL_UPLOAD} bytes crossed a relay limited to {RELAY_CELL_LIMIT}: {outcome}"
    );
    drop((perf, echo, b, relay));
    drop(bed);
    Outcome::Relay(RELAY_CELL_LIMIT)
}

// --- IPv6: no NAT, stateful firewalls ---------------------------------------------------
//
// The same picture with IPv6 and no translation: every host has a global address and the
// routers only filter (outbound allowed, inbound only what belongs to a connection the LAN
// started, as IPv6 home routers do). Both peers advertise reachable-looking addresses, so
// B first tries the unilateral upgrade (a plain dial to A's listen address, dropped by A's
// firewall, 5 s), then the hole punch, which the firewalls let through; with no firewall in
// front of A the plain dial succeeds and no hole punch happens.

/// One IPv6 cell: B behind a firewall reserves on the relay, A (behind a firewall when
/// `firewall_a`) connects through it; both run DCUtR over `transport`. The direct connection
/// must come; `unilateral` is whether B's plain dial is what makes it.
fn cell_v6(transport: &'static str, firewall_a: bool, unilateral: bool) -> Outcome {
    // A prefix per cell: these cells run at the same time.
    let prefix = match (transport, firewall_a) {
        ("tcp", true) => "l6t",
        (_, true) => "l6q",
        (_, false) => "lut",
    };
    let bed = match hole_punching::testbed_v6(prefix, firewall_a, true) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let listen = |ip: &str| match transport {
        "tcp" => format!("/ip6/{ip}/tcp/4001"),
        _ => format!("/ip6/{ip}/udp/4001/quic-v1"),
    };
    let (relay, b, a) = relay_b_and_a(&bed, &listen, "2001:db8:1::1", "::");
    let b_event = b.wait_for("dcutr");
    assert_eq!(b_event["ok"], true, "B (initiating): {b_event}");
    assert_eq!(b_event["unilateral"], unilateral, "B: {b_event}");
    if unilateral {
        assert_eq!(b_event["attempts"], 0, "no hole punch: {b_event}");
    } else {
        let a_event = a.wait_for("dcutr");
        assert_eq!(a_event["ok"], true, "A (answering): {a_event}");
    }
    let addr = b_event["addr"].as_str().unwrap();
    assert!(
        addr.contains("2001:db8:11::2"),
        "B's direct connection goes to A: {addr}"
    );
    let cell = Cell {
        transport,
        nats: if firewall_a {
            "IPv6 firewall / IPv6 firewall".to_owned()
        } else {
            "IPv6 none / IPv6 firewall".to_owned()
        },
        ok: true,
        ms: b_event["ms"].as_f64(),
        attempts: b_event["attempts"].as_u64().unwrap_or(0),
        unilateral: b_event["unilateral"] == true,
        error: b_event["error"].as_str().map(str::to_owned),
    };
    drop((a, b, relay));
    drop(bed);
    Outcome::Passed(cell)
}

fn tcp_ipv6_across_two_firewalls() -> Outcome {
    cell_v6("tcp", true, false)
}

fn quic_ipv6_across_two_firewalls() -> Outcome {
    cell_v6("quic", true, false)
}

fn tcp_ipv6_to_an_open_peer_is_a_plain_dial() -> Outcome {
    cell_v6("tcp", false, true)
}

// --- Filtering of the router kinds --------------------------------------------------------

/// What the router of A (kind `nat`) lets in once A has a connection to X (11.0.1.1:5001,
/// in `pub`) from its listen port 4001: a dial to A's mapped address 11.0.1.2:4001 from
/// another port of X's IP is admitted by an address-dependent router and dropped by a cone
/// one; a dial from an IP A never sent to (B's router, 11.0.2.2) is dropped by both.
fn filtering(prefix: &str, nat: Nat) -> Outcome {
    let bed = match Testbed::build(prefix, nat, Nat::Cone) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let x = Node::start(
        "X",
        &bed.ns("p"),
        &[
            "listen",
            "--addr",
            "/ip4/11.0.1.1/tcp/5001",
            "--timeout",
            "300",
        ],
    );
    let x_addr = x.wait_for("listening")["addrs"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let a = Node::start(
        "A",
        &bed.ns("a"),
        &[
            "listen",
            "--addr",
            "/ip4/0.0.0.0/tcp/4001",
            "--connect",
            &x_addr,
            "--timeout",
            "300",
        ],
    );
    let a_id = a.wait_for("listening")["peer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.wait_for("connected");
    let target = format!("/ip4/11.0.1.2/tcp/4001/p2p/{a_id}");
    let quiet = Duration::from_secs(5);
    let from_b = Node::start("B", &bed.ns("b"), &["dial", "--addr", &target]);
    assert!(
        from_b.event_within("connected", quiet).is_none(),
        "{}: a dial from an IP A never sent to got in",
        nat.name()
    );
    let from_x_ip = Node::start("P", &bed.ns("p"), &["dial", "--addr", &target]);
    let admitted = from_x_ip.event_within("connected", quiet).is_some();
    assert_eq!(
        admitted,
        nat == Nat::AddressDependent,
        "{}: a dial from another port of X's IP",
        nat.name()
    );
    drop((from_x_ip, from_b, a, x));
    drop(bed);
    Outcome::Filtering
}

fn filtering_address_dependent_admits_any_port_of_a_contacted_ip() -> Outcome {
    filtering("lf", Nat::AddressDependent)
}

fn filtering_cone_admits_only_the_contacted_endpoint() -> Outcome {
    filtering("lg", Nat::Cone)
}

// --- AutoNAT verdicts -------------------------------------------------------------------
//
// lp2p-node's AutoNAT uses the library's defaults on non-loopback addresses: only public
// IPs are tested and three distinct servers must agree. Three `listen --autonat` servers run
// in `pub` (11.0.0.0/8 is public; the LANs' 10.0.0.0/8 is not) and the tested node
// `--connect`s to all of them.

/// The three AutoNAT servers in `ns`, listening on `ip`; their addresses.
fn autonat_servers(ns: &str, ip: &str) -> (Vec<Node>, Vec<String>) {
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for name in ["S1", "S2", "S3"] {
        let s = Node::start(
            name,
            ns,
            &[
                "listen",
                "--addr",
                &format!("/ip4/{ip}/tcp/0"),
                "--autonat",
                "--timeout",
                "300",
            ],
        );
        addrs.push(
            s.wait_for("listening")["addrs"][0]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        servers.push(s);
    }
    (servers, addrs)
}

/// The tested node's arguments: listen on `addr` with AutoNAT (and `extra`), connected to
/// the servers.
fn autonat_args<'a>(addr: &'a str, servers: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["listen", "--addr", addr, "--autonat", "--timeout", "300"];
    args.extend_from_slice(extra);
    for s in servers {
        args.extend(["--connect", s.as_str()]);
    }
    args
}

/// The first `reachability` event for an address that starts with `prefix`: its status,
/// address and the time since `started`.
fn verdict(node: &Node, prefix: &str, started: Instant) -> (String, String, f64) {
    loop {
        let v = node.wait_for("reachability");
        let addr = v["addr"].as_str().unwrap();
        if addr.starts_with(prefix) && v["status"] != "unknown" {
            return (
                v["status"].as_str().unwrap().to_owned(),
                addr.to_owned(),
                started.elapsed().as_secs_f64() * 1000.0,
            );
        }
    }
}

/// A node on a public address, in `pub` with the servers: its listen address is public.
fn autonat_public_node() -> Outcome {
    if let Err(why) = netns::run("nft", &["--version"]) {
        return Outcome::Skipped(why);
    }
    let mut bed = match Netns::new("la") {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let public = bed.add("p").unwrap();
    let peer = bed.add("x").unwrap();
    bed.link(&public, "px", "11.0.9.1/24", &peer, "eth0", "11.0.9.2/24")
        .unwrap();
    let (servers, addrs) = autonat_servers(&public, "11.0.9.1");
    let started = Instant::now();
    let node = Node::start(
        "N",
        &public,
        &autonat_args("/ip4/11.0.9.1/tcp/4001", &addrs, &[]),
    );
    let (status, addr, ms) = verdict(&node, "/ip4/11.0.9.1/tcp/4001", started);
    assert_eq!(status, "public", "{addr}");
    drop((node, servers));
    drop(bed);
    Outcome::Verdict(Verdict {
        node: "public (in pub)",
        status,
        addr,
        ms,
    })
}

/// A node behind a cone NAT: its observed address (the router's) is tested and refuted,
/// the router dropping the servers' dial-backs.
fn autonat_node_behind_a_cone_nat() -> Outcome {
    let bed = match Testbed::build("lc", Nat::Cone, Nat::Cone) {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let (servers, addrs) = autonat_servers(&bed.ns("p"), "11.0.1.1");
    let started = Instant::now();
    let node = Node::start(
        "N",
        &bed.ns("a"),
        &autonat_args("/ip4/0.0.0.0/tcp/4001", &addrs, &[]),
    );
    let (status, addr, ms) = verdict(&node, "/ip4/11.0.1.2/tcp/", started);
    assert_eq!(status, "private", "{addr}");
    drop((node, servers));
    drop(bed);
    Outcome::Verdict(Verdict {
        node: "behind a cone NAT",
        status,
        addr,
        ms,
    })
}

const MINIUPNPD: &str = "/usr/sbin/miniupnpd";

/// miniupnpd's chains (nftables backend) and masquerading of the LAN for the node's own
/// connections.
const UPNP_RULESET: &str = "table inet filter {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; oifname \"wan\" masquerade; }
}
";

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node behind miniupnpd with `--upnp --autonat`: the router maps its listen port and
/// AutoNAT confirms the mapped address.
///
/// ```text
///  N 10.0.3.2 ── 10.0.3.1 [router ru: miniupnpd] 11.0.3.2 ── 11.0.3.1 [pub: 3 servers]
/// ```
fn autonat_port_mapped_node() -> Outcome {
    if !std::path::Path::new(MINIUPNPD).exists() {
        return Outcome::Skipped(format!("{MINIUPNPD} not installed"));
    }
    if let Err(why) = netns::run("nft", &["--version"]) {
        return Outcome::Skipped(why);
    }
    let mut bed = match Netns::new("lu") {
        Ok(bed) => bed,
        Err(why) => return Outcome::Skipped(why),
    };
    let dir = TempDir(std::env::temp_dir().join(format!("lp2p-nat-upnp-{}", bed.tag())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let public = bed.add("p").unwrap();
    let router = bed.add("ru").unwrap();
    let host = bed.add("n").unwrap();
    bed.link(&public, "pu", "11.0.3.1/24", &router, "wan", "11.0.3.2/24")
        .unwrap();
    bed.link(&router, "lan", "10.0.3.1/24", &host, "eth0", "10.0.3.2/24")
        .unwrap();
    bed.forwarding(&public).unwrap();
    bed.forwarding(&router).unwrap();
    bed.default_route(&router, "11.0.3.1").unwrap();
    bed.default_route(&host, "10.0.3.1").unwrap();
    bed.nft(&router, UPNP_RULESET).unwrap();
    let conf = dir.0.join("miniupnpd.conf");
    std::fs::write(
        &conf,
        "ext_ifname=wan\nlistening_ip=lan\nhttp_port=5555\nenable_natpmp=yes\nenable_upnp=yes\n\
         ipv6_disable=yes\nsecure_mode=yes\nsystem_uptime=no\n\
         uuid=3ee8b4a2-0000-4000-8000-000000000079\n\
         allow 1024-65535 10.0.3.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
    )
    .unwrap();
    let daemon = Guard(
        bed.command(&router, MINIUPNPD)
            .arg("-d")
            .arg("-f")
            .arg(&conf)
            .arg("-P")
            .arg(dir.0.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + WAIT;
    while !bed
        .exec(&router, "ss", &["-ltn"])
        .is_ok_and(|s| s.contains(":5555"))
    {
        assert!(Instant::now() < deadline, "miniupnpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (servers, addrs) = autonat_servers(&public, "11.0.3.1");
    let started = Instant::now();
    let node = Node::start(
        "N",
        &host,
        &autonat_args("/ip4/0.0.0.0/tcp/4001", &addrs, &["--upnp"]),
    );
    let mapping = node.wait_for("port-mapping");
    assert_eq!(mapping["ok"], true, "{mapping}");
    let external = mapping["external"].as_str().unwrap().to_owned();
    assert!(external.starts_with("/ip4/11.0.3.2/tcp/"), "{mapping}");
    let (status, addr, ms) = verdict(&node, &external, started);
    assert_eq!(status, "public", "{addr}");
    drop((node, servers, daemon));
    drop(bed);
    drop(dir);
    Outcome::Verdict(Verdict {
        node: "behind miniupnpd, --upnp",
        status,
        addr,
        ms,
    })
}

type Case = (&'static str, fn() -> Outcome);

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: [Case; 17] = [
        ("tcp_across_two_cone_nats", tcp_across_two_cone_nats),
        ("quic_across_two_cone_nats", quic_across_two_cone_nats),
        (
            "tcp_across_cone_and_address_dependent_nats",
            tcp_across_cone_and_address_dependent_nats,
        ),
        (
            "quic_across_cone_and_address_dependent_nats",
            quic_across_cone_and_address_dependent_nats,
        ),
        (
            "tcp_across_two_address_dependent_nats",
            tcp_across_two_address_dependent_nats,
        ),
        (
            "quic_across_two_address_dependent_nats",
            quic_across_two_address_dependent_nats,
        ),
        (
            "tcp_from_behind_a_symmetric_nat_fails",
            tcp_from_behind_a_symmetric_nat_fails,
        ),
        (
            "quic_from_behind_a_symmetric_nat_fails",
            quic_from_behind_a_symmetric_nat_fails,
        ),
        (
            "tcp_ipv6_across_two_firewalls",
            tcp_ipv6_across_two_firewalls,
        ),
        (
            "quic_ipv6_across_two_firewalls",
            quic_ipv6_across_two_firewalls,
        ),
        (
            "tcp_ipv6_to_an_open_peer_is_a_plain_dial",
            tcp_ipv6_to_an_open_peer_is_a_plain_dial,
        ),
        (
            "filtering_address_dependent_admits_any_port_of_a_contacted_ip",
            filtering_address_dependent_admits_any_port_of_a_contacted_ip,
        ),
        (
            "filtering_cone_admits_only_the_contacted_endpoint",
            filtering_cone_admits_only_the_contacted_endpoint,
        ),
        ("autonat_public_node", autonat_public_node),
        (
            "autonat_node_behind_a_cone_nat",
            autonat_node_behind_a_cone_nat,
        ),
        ("autonat_port_mapped_node", autonat_port_mapped_node),
        (
            "relay_across_two_nats_echoes_and_cuts_a_transfer_at_its_limit",
            relay_across_two_nats_echoes_and_cuts_a_transfer_at_its_limit,
        ),
    ];
    let require = std::env::var_os("LP2P_REQUIRE_NETNS").is_some();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut table = Vec::new();
    let mut verdicts = Vec::new();
    let started = Instant::now();
    let selected = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    // The AutoNAT cases wait on the client's probe interval (15 s, three servers: 30 s to
    // a verdict, 45 s and more to a refutation), the filtering ones on dials that must not
    // connect and the IPv6 ones on the 5 s unilateral dial, on nothing else: they run in
    // threads beside the hole-punching cases, each in namespaces of its own.
    let in_background = |name: &str| {
        name.starts_with("autonat_")
            || name.starts_with("filtering_")
            || name.starts_with("relay_")
            || name.contains("ipv6")
    };
    let background: Vec<_> = cases
        .iter()
        .filter(|(name, _)| in_background(name) && selected(name))
        .map(|&(name, case)| (name, std::thread::spawn(case)))
        .collect();
    let foreground = cases
        .iter()
        .filter(|(name, _)| !in_background(name) && selected(name))
        .map(|&(name, case)| (name, std::panic::catch_unwind(case)));
    let results: Vec<_> = foreground
        .collect::<Vec<_>>()
        .into_iter()
        .chain(background.into_iter().map(|(name, t)| (name, t.join())))
        .collect();
    for (name, result) in results {
        match result {
            Ok(Outcome::Passed(cell)) => {
                passed += 1;
                println!("test {name} ... ok");
                table.push(cell);
            }
            Ok(Outcome::Filtering) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Ok(Outcome::Relay(limit)) => {
                passed += 1;
                println!(
                    "test {name} ... ok (the relay cut the transfer at its {limit}-byte limit)"
                );
            }
            Ok(Outcome::Verdict(v)) => {
                passed += 1;
                println!("test {name} ... ok");
                verdicts.push(v);
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
        println!(
            "| transport | NAT of A / B | direct connection | time (ms) | attempts | unilateral |"
        );
        println!("|---|---|---|---|---|---|");
        for c in &table {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                c.transport,
                c.nats,
                if c.ok { "yes" } else { "no" },
                c.ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0}")),
                c.attempts,
                if c.unilateral { "yes" } else { "no" }
            );
        }
        for c in table.iter().filter(|c| !c.ok) {
            let error = c.error.as_deref().unwrap_or("-");
            println!("\n{} {}, last attempt: {error}", c.transport, c.nats);
        }
    }
    if !verdicts.is_empty() {
        println!();
        println!("| AutoNAT: node | address | reachability | time to verdict (ms) |");
        println!("|---|---|---|---|");
        for v in &verdicts {
            println!("| {} | {} | {} | {:.0} |", v.node, v.addr, v.status, v.ms);
        }
    }
    println!(
        "nat: {passed} passed, {failed} failed, {skipped} skipped ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
