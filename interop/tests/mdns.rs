//! mDNS interop: `lp2p-node --mdns` against `rust-libp2p-node --mdns` (libp2p-mdns 0.49)
//! and against another `lp2p-node`, each node in its own network namespace joined by a veth
//! pair that this test makes and removes (also when it fails). Every packet stays inside
//! those namespaces.
//!
//! Each side must print a `discovered` event for the other with its address on the link,
//! and the discovered address must work: a `dial --ping 1` to it from the discovering
//! side's namespace succeeds. One case makes lp2p's answer too big for one packet (40
//! listen addresses) and checks that rust-libp2p reads every address from the split answer.
//! One runs both over IPv6 only (ff02::fb; rust-libp2p with `enable_ipv6`, which then does
//! no IPv4), after the veths' link-local addresses have passed duplicate address detection.
//! One checks that rust-libp2p answers a query that lists its own PTR as a known answer
//! (RFC 6762 §7.1; lp2p's queries carry one for every peer it knows, rust-libp2p ignores
//! them): a probe, this test binary run again inside the namespace, learns rust-libp2p's PTR
//! from a plain query, then sends a query listing it with the full TTL and waits for the
//! answer with that query's ID. (rust-libp2p draws a new PTR target for every answer, so a
//! list can never match its next answer anyway.)
//!
//! Needs root and `ip`. Its own harness (`harness = false`) counts a case that cannot make
//! its namespaces as skipped (`mdns: N passed, N failed, N skipped`); `LP2P_REQUIRE_NETNS=1`
//! (CI) makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long to wait for one expected line: generous for a slow, loaded machine (discovery
/// takes about a second, and rust-libp2p's first query goes out after 500 ms).
const WAIT: Duration = Duration::from_secs(60);

enum Outcome {
    Passed,
    Skipped(String),
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces removed (with their veths) when dropped, also on panic.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Namespaces `<tag>a` (10.78.N.1, fd78:N::1) and `<tag>b` (.2, ::2) on a veth pair.
fn veth_pair(tag: &str, subnet: u8) -> Result<(Namespaces, [String; 2]), String> {
    let mut ns = Namespaces(Vec::new());
    let names = [format!("{tag}a"), format!("{tag}b")];
    for name in &names {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        ns.0.push(name.clone());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
    }
    let (va, vb) = (format!("{tag}va"), format!("{tag}vb"));
    ip(&[
        "link", "add", &va, "netns", &names[0], "type", "veth", "peer", "name", &vb, "netns",
        &names[1],
    ])?;
    for (n, dev, host) in [(&names[0], &va, 1), (&names[1], &vb, 2)] {
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("10.78.{subnet}.{host}/24"),
            "dev",
            dev,
        ])?;
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("fd78:{subnet}::{host}/64"),
            "dev",
            dev,
            "nodad",
        ])?;
        ip(&["-n", n, "link", "set", dev, "up", "multicast", "on"])?;
    }
    Ok((ns, names))
}

/// Waits until no address in `netns` is tentative (IPv6 duplicate address detection over:
/// the veths' link-local addresses are usable, so the nodes see their final interface
/// list from the start). The `fd78:` addresses skip DAD (`nodad`).
fn wait_for_dad(netns: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("ip")
            .args(["-n", netns, "-6", "addr", "show", "tentative"])
            .output()
            .map_err(|e| format!("cannot run `ip`: {e}"))?;
        if out.status.success() && out.stdout.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{netns}: IPv6 addresses still tentative: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tag(case: u8) -> String {
    format!("mi{}{case}", std::process::id() % 100_000)
}

/// A node process in a namespace, killed when dropped; its JSON lines arrive on a channel.
struct Node {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Node {
    fn start(name: &str, netns: &str, bin: &Path, args: &[String]) -> Node {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
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
        Node {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    fn wait_for(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == "error" => panic!("{}: {v}", self.name),
                Ok(v) if pick(&v) => return v,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{}: no {what} within {WAIT:?}", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{}: exited before printing {what}", self.name)
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

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn listen_args(seed: u64, extra: &[&str]) -> Vec<String> {
    listen_args_at("/ip4/0.0.0.0/tcp/0", seed, extra)
}

fn listen_args_at(addr: &str, seed: u64, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "listen",
        "--addr",
        addr,
        "--mdns",
        "--key-seed",
        &seed.to_string(),
        "--timeout",
        "300",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(extra.iter().map(ToString::to_string));
    args
}

/// Waits for `node` to discover the peer of `seed`; returns its addresses.
fn discovered(node: &Node, seed: u64) -> Vec<String> {
    let peer = lp2p_interop::peer_of_seed(seed);
    let event = node.wait_for(&format!("discovered {peer}"), |v| {
        v["event"] == "discovered" && v["peer"] == peer.as_str()
    });
    strings(&event["addrs"])
}

/// `dial --addr <addr> --ping 1` from `netns` with `bin`: must exit 0 and print a ping.
fn dial_ping(bin: &Path, netns: &str, addr: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(bin)
        .args(["dial", "--addr", addr, "--ping", "1", "--timeout", "60"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"ping\""),
        "dial {addr} with {} from {netns}: {stdout}",
        bin.display()
    );
}

fn port(listening: &Value) -> String {
    let addr = strings(&listening["addrs"]).remove(0);
    addr.split('/').nth(4).unwrap().to_owned()
}

struct Binaries {
    lp2p: PathBuf,
    rust: PathBuf,
}

fn lp2p_and_rust_libp2p_discover_each_other(bins: &Binaries) -> Outcome {
    let (_ns, [a, b]) = match veth_pair(&tag(1), 1) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    let lp2p = Node::start("lp2p-node", &a, &bins.lp2p, &listen_args(41, &[]));
    let rust = Node::start("rust-libp2p-node", &b, &bins.rust, &listen_args(42, &[]));
    let lp2p_port = port(&lp2p.wait_for("listening", |v| v["event"] == "listening"));
    let rust_port = port(&rust.wait_for("listening", |v| v["event"] == "listening"));

    // lp2p found rust-libp2p at its link address, and nothing else (rust-libp2p does not
    // run on loopback and announces only the interface's own addresses).
    let found_rust = discovered(&lp2p, 42);
    assert_eq!(
        found_rust,
        vec![format!(
            "/ip4/10.78.1.2/tcp/{rust_port}/p2p/{}",
            lp2p_interop::peer_of_seed(42)
        )]
    );
    // rust-libp2p found lp2p at its link address.
    let found_lp2p = discovered(&rust, 41);
    assert_eq!(
        found_lp2p,
        vec![format!(
            "/ip4/10.78.1.1/tcp/{lp2p_port}/p2p/{}",
            lp2p_interop::peer_of_seed(41)
        )]
    );
    // The discovered addresses work, both ways.
    dial_ping(&bins.lp2p, &a, &found_rust[0]);
    dial_ping(&bins.rust, &b, &found_lp2p[0]);
    Outcome::Passed
}

fn lp2p_and_rust_libp2p_discover_each_other_over_ipv6(bins: &Binaries) -> Outcome {
    let (_ns, [a, b]) = match veth_pair(&tag(4), 4) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    for ns in [&a, &b] {
        wait_for_dad(ns).unwrap();
    }
    // Both listen on IPv6 only; rust-libp2p runs mDNS on IPv6 only, so every query and
    // answer between them goes through [ff02::fb]:5353.
    let v6 = "/ip6/::/tcp/0";
    let lp2p = Node::start("lp2p-node", &a, &bins.lp2p, &listen_args_at(v6, 71, &[]));
    let rust = Node::start(
        "rust-libp2p-node",
        &b,
        &bins.rust,
        &listen_args_at(v6, 72, &["--mdns-ipv6"]),
    );
    let lp2p_port = port(&lp2p.wait_for("listening", |v| v["event"] == "listening"));
    let rust_port = port(&rust.wait_for("listening", |v| v["event"] == "listening"));

    // lp2p found rust-libp2p at its global link address (rust-libp2p also announces its
    // link-local one, which lp2p does not keep: a multiaddr cannot carry the zone).
    let found_rust = discovered(&lp2p, 72);
    assert_eq!(
        found_rust,
        vec![format!(
            "/ip6/fd78:4::2/tcp/{rust_port}/p2p/{}",
            lp2p_interop::peer_of_seed(72)
        )]
    );
    // rust-libp2p found lp2p at its link address.
    let found_lp2p = discovered(&rust, 71);
    assert_eq!(
        found_lp2p,
        vec![format!(
            "/ip6/fd78:4::1/tcp/{lp2p_port}/p2p/{}",
            lp2p_interop::peer_of_seed(71)
        )]
    );
    dial_ping(&bins.lp2p, &a, &found_rust[0]);
    dial_ping(&bins.rust, &b, &found_lp2p[0]);
    Outcome::Passed
}

fn rust_libp2p_reads_a_split_answer(bins: &Binaries) -> Outcome {
    let (_ns, [a, b]) = match veth_pair(&tag(2), 2) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    // 40 listen addresses: about 3.5 KB of TXT strings, three packets at 1472 bytes.
    let mut extra = Vec::new();
    for _ in 0..39 {
        extra.extend(["--addr", "/ip4/0.0.0.0/tcp/0"]);
    }
    let lp2p = Node::start("lp2p-node", &a, &bins.lp2p, &listen_args(51, &extra));
    let rust = Node::start("rust-libp2p-node", &b, &bins.rust, &listen_args(52, &[]));
    let listening = lp2p.wait_for("listening", |v| v["event"] == "listening");
    assert_eq!(strings(&listening["addrs"]).len(), 40);
    let mut all = discovered(&rust, 51);
    let peer = lp2p_interop::peer_of_seed(51);
    while all.len() < 40 {
        let more = rust.wait_for("more addresses", |v| {
            v["event"] == "discovered-addrs" && v["peer"] == peer.as_str()
        });
        all = strings(&more["addrs"]);
    }
    assert!(
        all.iter()
            .all(|a| a.starts_with("/ip4/10.78.2.1/tcp/") && a.ends_with(&peer)),
        "{all:?}"
    );
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40);
    Outcome::Passed
}

fn rust_libp2p_answers_a_query_with_known_answers(bins: &Binaries) -> Outcome {
    let (_ns, [a, b]) = match veth_pair(&tag(5), 5) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    // The probe's plain std socket has no IP_MULTICAST_IF: route the group to the veth.
    ip(&[
        "-n",
        &a,
        "route",
        "add",
        "224.0.0.0/4",
        "dev",
        &format!("{}va", tag(5)),
    ])
    .unwrap();
    let rust = Node::start("rust-libp2p-node", &b, &bins.rust, &listen_args(82, &[]));
    rust.wait_for("listening", |v| v["event"] == "listening");
    let out = Command::new("ip")
        .args(["netns", "exec", &a])
        .arg(std::env::current_exe().unwrap())
        .env(PROBE_ENV, "10.78.5.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["event"], "answered-with-known-answer", "{line}");
    // The answer still announces rust-libp2p's address.
    let want = "dnsaddr=/ip4/10.78.5.2/tcp/";
    assert!(
        strings(&line["txt"]).iter().any(|t| t.starts_with(want)),
        "{line}"
    );
    Outcome::Passed
}

/// Set (to the local IPv4 address) when this binary runs as the known-answer probe.
const PROBE_ENV: &str = "LP2P_MDNS_KNOWN_ANSWER_PROBE";

const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// `_p2p._udp.local` in DNS wire form.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(u8::try_from(label.len()).unwrap());
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A `_p2p._udp.local PTR` query with this ID, listing `known` (PTR target, TTL) as known
/// answers (RFC 6762 §7.1).
fn probe_query(id: u16, known: Option<(&str, u32)>) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, u8::from(known.is_some()), 0, 0, 0, 0]);
    q.extend_from_slice(&wire_name("_p2p._udp.local"));
    q.extend_from_slice(&[0, 12, 0, 1]);
    if let Some((target, ttl)) = known {
        let rdata = wire_name(target);
        // Owner: a pointer to the question's name at offset 12.
        q.extend_from_slice(&[0xC0, 0x0C, 0, 12, 0, 1]);
        q.extend_from_slice(&ttl.to_be_bytes());
        q.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        q.extend_from_slice(&rdata);
    }
    q
}

/// Sends `query` every 2 s until a response with its ID holds a `_p2p._udp.local` PTR;
/// returns the PTR target and the TXT strings of that response.
fn probe_ask(socket: &UdpSocket, id: u16, query: &[u8]) -> Result<(String, Vec<String>), String> {
    use hickory_resolver::proto::op::Message;
    use hickory_resolver::proto::rr::RData;
    let deadline = Instant::now() + Duration::from_secs(30);
    let group = SocketAddr::from((MDNS_GROUP, 5353));
    let mut buf = vec![0u8; 9000];
    while Instant::now() < deadline {
        socket.send_to(query, group).map_err(|e| e.to_string())?;
        let resend = Instant::now() + Duration::from_secs(2);
        while Instant::now() < resend {
            let Ok((len, _)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if m.metadata.id != id || !m.queries.is_empty() {
                continue;
            }
            let ptr = m.answers.iter().find_map(|r| match &r.data {
                RData::PTR(p) if r.name.to_utf8() == "_p2p._udp.local." => Some(p.0.to_utf8()),
                _ => None,
            });
            let txt: Vec<String> = m
                .answers
                .iter()
                .chain(m.additionals.iter())
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .flatten()
                .collect();
            if let Some(ptr) = ptr {
                return Ok((ptr, txt));
            }
        }
    }
    Err(format!("no answer to query {id:#06x} within 30 s"))
}

/// The probe: learns the peer's PTR, then asks again listing it as a known answer with the
/// full TTL, and prints what the answer to that query (matched by its ID) announced.
fn probe(local: &str) {
    let run = || -> Result<Value, String> {
        let local: Ipv4Addr = local.parse().map_err(|e| format!("{local}: {e}"))?;
        let socket = UdpSocket::bind(("0.0.0.0", 5353)).map_err(|e| e.to_string())?;
        socket
            .join_multicast_v4(&MDNS_GROUP, &local)
            .map_err(|e| e.to_string())?;
        socket
            .set_multicast_ttl_v4(255)
            .map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let (ptr, _) = probe_ask(&socket, 0x4b01, &probe_query(0x4b01, None))?;
        let known = probe_query(0x4b02, Some((&ptr, 360)));
        // rust-libp2p names each answer's PTR target afresh, so this one points elsewhere.
        let (again, txt) = probe_ask(&socket, 0x4b02, &known)?;
        Ok(serde_json::json!({
            "event": "answered-with-known-answer",
            "listed": ptr,
            "ptr": again,
            "txt": txt,
        }))
    };
    match run() {
        Ok(line) => println!("{line}"),
        Err(e) => {
            println!("{}", serde_json::json!({ "event": "error", "what": e }));
            std::process::exit(1);
        }
    }
}

fn two_lp2p_nodes_discover_each_other(bins: &Binaries) -> Outcome {
    let (_ns, [a, b]) = match veth_pair(&tag(3), 3) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    let v6 = ["--addr", "/ip6/::/tcp/0"];
    let na = Node::start("lp2p-node a", &a, &bins.lp2p, &listen_args(61, &v6));
    let nb = Node::start("lp2p-node b", &b, &bins.lp2p, &listen_args(62, &v6));
    let from_a = discovered(&na, 62);
    let from_b = discovered(&nb, 61);
    // IPv4 and IPv6 link addresses, no loopback.
    for (found, host) in [(&from_a, 2), (&from_b, 1)] {
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|a| a.starts_with(&format!("/ip4/10.78.3.{host}/tcp/")))
        );
        assert!(
            found
                .iter()
                .any(|a| a.starts_with(&format!("/ip6/fd78:3::{host}/tcp/")))
        );
    }
    for addr in &from_a {
        dial_ping(&bins.lp2p, &a, addr);
    }
    dial_ping(&bins.lp2p, &b, &from_b[0]);
    Outcome::Passed
}

type Case = (&'static str, fn(&Binaries) -> Outcome);

fn main() {
    if let Ok(local) = std::env::var(PROBE_ENV) {
        probe(&local);
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cases: [Case; 5] = [
        (
            "lp2p_and_rust_libp2p_discover_each_other",
            lp2p_and_rust_libp2p_discover_each_other,
        ),
        (
            "lp2p_and_rust_libp2p_discover_each_other_over_ipv6",
            lp2p_and_rust_libp2p_discover_each_other_over_ipv6,
        ),
        (
            "rust_libp2p_reads_a_split_answer",
            rust_libp2p_reads_a_split_answer,
        ),
        (
            "rust_libp2p_answers_a_query_with_known_answers",
            rust_libp2p_answers_a_query_with_known_answers,
        ),
        (
            "two_lp2p_nodes_discover_each_other",
            two_lp2p_nodes_discover_each_other,
        ),
    ];
    let selected: Vec<Case> = cases
        .into_iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        println!("mdns: 0 passed, 0 failed, 0 skipped");
        return;
    }
    let bins = Binaries {
        lp2p: lp2p_interop::lp2p_node_binary(false),
        rust: PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
    };
    let require = std::env::var_os("LP2P_REQUIRE_NETNS").is_some();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, case) in selected {
        match std::panic::catch_unwind(|| case(&bins)) {
            Ok(Outcome::Passed) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Ok(Outcome::Skipped(why)) if require => {
                failed += 1;
                println!(
                    "test {name} ... FAILED (cannot make network namespaces: {why}; LP2P_REQUIRE_NETNS is set)"
                );
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                println!("test {name} ... SKIPPED (cannot make network namespaces: {why})");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("mdns: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
