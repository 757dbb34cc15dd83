//! mDNS between lp2p hosts over real multicast sockets, each host in a network namespace
//! this test makes (a veth pair, or a loopback-only namespace) and removes again, also when
//! it fails. Every packet stays inside those namespaces.
//!
//! The hosts run in child processes (`ip netns exec NS <this test binary>` with
//! `LP2P_MDNS_CHILD=node`): a namespace is per process, so that is the one reliable way to
//! put a host in one.
//!
//! Needs root and `ip` (iproute2). This file has its own small harness (`harness = false`)
//! so that a test that cannot make its namespaces is reported and counted as skipped, not
//! passed: `netns: N passed, N failed, N skipped`. With `LP2P_REQUIRE_NETNS=1` (CI) a skip
//! is a failure. Arguments that are not flags filter the tests by name, as libtest's do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lp2p_core::{Keypair, PeerId};
use lp2p_host::Host;
use lp2p_mdns::wire::{
    CLASS_IN, FLAG_RECURSION_DESIRED, FLAG_RESPONSE, Message, MessageWriter, Name, Question, RData,
    Record, Section, TYPE_PTR,
};
use lp2p_mdns::{Mdns, MdnsConfig, MdnsEvent};
use lp2p_plaintext::Plaintext;
use lp2p_tcp::TcpTransport;
use lp2p_testkit::netns::{self, Netns};
use lp2p_yamux::Yamux;
use serde_json::{Value, json};

/// How long the parent waits for one expected line: generous for a slow, loaded machine
/// (discovery itself takes about a second).
const WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Namespaces and skipping.

/// How a test ended (a failure is a panic).
enum Outcome {
    Passed,
    Skipped(String),
}

/// Two namespaces `a` and `b` (lp2p-testkit's [`Netns`]: removed with their veth when
/// dropped, also on panic) joined by a veth pair named `va` and `vb` there, multicast on:
/// `a` with 10.77.N.1 and fd77:N::1, `b` with .2 and ::2.
fn veth_pair(test: u8, subnet: u8) -> Result<(Netns, [String; 2]), String> {
    let mut ns = Netns::new(&format!("lm{test}"))?;
    let a = ns.add("a")?;
    let b = ns.add("b")?;
    ns.link(
        &a,
        "va",
        &format!("10.77.{subnet}.1/24"),
        &b,
        "vb",
        &format!("10.77.{subnet}.2/24"),
    )?;
    for (n, dev, host) in [(&a, "va", 1), (&b, "vb", 2)] {
        ns.addr(n, dev, &format!("fd77:{subnet}::{host}/64"))?;
        netns::run("ip", &["-n", n, "link", "set", dev, "multicast", "on"])?;
    }
    Ok((ns, [a, b]))
}

// ---------------------------------------------------------------------------------------
// Child processes.

/// A child process, killed when dropped; its stdout's JSON lines arrive on a channel.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl Proc {
    fn start(name: &str, netns: &str, role: &str, env: &[(&str, String)]) -> Proc {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(exe)
            .env("LP2P_MDNS_CHILD", role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let label = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                } else if !line.trim().is_empty() && std::env::var_os("LP2P_MDNS_VERBOSE").is_some()
                {
                    eprintln!("[{label}] {line}");
                }
            }
        });
        Proc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next line `pick` accepts, skipping others; panics after [`WAIT`].
    fn wait_for(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
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

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the child to exit by itself.
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit", self.name);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The identity of a child node: an Ed25519 key from a seed, as lp2p-node's `--key-seed`.
fn key(seed: u8) -> Keypair {
    let mut secret = [0u8; 32];
    secret[0] = seed;
    Keypair::ed25519_from_bytes(secret).unwrap()
}

fn peer(seed: u8) -> PeerId {
    key(seed).public().to_peer_id()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// A node: a host on TCP (IPv4 and IPv6 wildcard) with mDNS. Env: `LP2P_MDNS_SEED` (key),
/// `LP2P_MDNS_CONNECT` (peer ids to connect to once discovered), `LP2P_MDNS_LOOPBACK`,
/// `LP2P_MDNS_IPV4=0` (mDNS over IPv6 only). Prints `listening`, `discovered`, `connected`,
/// `expired` lines; stdin `stats` prints the counters, `stop` says goodbye and stops mDNS,
/// EOF ends the node.
fn child_node() {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let seed: u8 = env("LP2P_MDNS_SEED").parse().unwrap();
    let connect: Vec<PeerId> = env("LP2P_MDNS_CONNECT")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let config = MdnsConfig {
        loopback: env("LP2P_MDNS_LOOPBACK") == "1",
        ipv4: env("LP2P_MDNS_IPV4") != "0",
        ..MdnsConfig::default()
    };
    let (stdin_tx, mut stdin_rx) = futures::channel::mpsc::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if stdin_tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    lp2p_core::runtime::block_on(async move {
        let host = Host::builder()
            .keypair(key(seed))
            .transport(TcpTransport::default())
            .security(Plaintext::new())
            .muxer(Yamux::default())
            .listen_on("/ip4/0.0.0.0/tcp/0".parse().unwrap())
            .listen_on("/ip6/::/tcp/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let mdns = Mdns::new(&host, config).unwrap();
        let mut events = mdns.events();
        emit(&json!({
            "event": "listening",
            "peer": host.local_peer_id().to_string(),
            "addrs": host.listen_addrs().iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
        loop {
            futures::select! {
                event = events.next().fuse() => match event {
                    Some(MdnsEvent::Discovered { peer, addrs }) => {
                        emit(&json!({
                            "event": "discovered",
                            "peer": peer.to_string(),
                            "addrs": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        }));
                        if connect.contains(&peer) {
                            match host.connect(peer, addrs).await {
                                Ok(c) => emit(&json!({
                                    "event": "connected",
                                    "peer": peer.to_string(),
                                    "addr": c.remote_addr().to_string(),
                                })),
                                Err(e) => emit(&json!({ "event": "error", "what": e.to_string() })),
                            }
                        }
                    }
                    Some(MdnsEvent::Expired { peer }) => {
                        emit(&json!({ "event": "expired", "peer": peer.to_string() }));
                    }
                    Some(_) => {}
                    None => break,
                },
                line = stdin_rx.next().fuse() => match line.as_deref() {
                    Some("stats") => {
                        let s = mdns.stats();
                        emit(&json!({
                            "event": "stats",
                            "peers": mdns.peers().len(),
                            "malformed": s.malformed_packets,
                            "peers_dropped": s.peers_dropped,
                            "txt_rejected": s.txt_rejected,
                            "addrs_unusable": s.addrs_unusable,
                            "received": s.packets_received,
                            "unicast_sent": s.unicast_responses_sent,
                            "known_answers_sent": s.known_answers_sent,
                            "answers_suppressed": s.answers_suppressed,
                            "knows": mdns.peers().iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>(),
                        }));
                    }
                    Some("stop") => {
                        mdns.stop().await;
                        emit(&json!({ "event": "stopped" }));
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        host.close().await;
    });
}

/// Sends bad input to the mDNS group from `LP2P_MDNS_FLOOD_FROM` (an IPv4 address of this
/// namespace): malformed packets, a flood of fake peers, a 9000-byte answer and a datagram
/// over the 9000-byte limit. Prints `{"event":"flooded","malformed":N,"fake_peers":M}`.
fn child_flood() {
    let from: Ipv4Addr = std::env::var("LP2P_MDNS_FLOOD_FROM")
        .unwrap()
        .parse()
        .unwrap();
    let socket = UdpSocket::bind((from, 0)).unwrap();
    socket.set_multicast_loop_v4(true).unwrap();
    let group = SocketAddr::from((Ipv4Addr::new(224, 0, 0, 251), 5353));
    let send = |bytes: &[u8]| {
        socket.send_to(bytes, group).unwrap();
        // Paced, so the receivers' socket buffers keep up.
        std::thread::sleep(Duration::from_micros(300));
    };
    let mut malformed: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 11],
        vec![0xff; 512],
        // 65535 answers announced over 20 bytes.
        [
            &[0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0][..],
            &[0; 20][..],
        ]
        .concat(),
        // A question whose name points at itself.
        vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 12, 0, 1],
        // A reserved label type.
        vec![
            0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, b'a', 0, 0, 12, 0, 1,
        ],
        // A label running past the end.
        vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 40, b'a', b'b'],
        // Opcode 5.
        vec![0, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    // A datagram over the 9000-byte read limit: cut there, then it does not parse.
    let mut oversized = MessageWriter::new(0, FLAG_RESPONSE, 20_000);
    let service = Name::new("_p2p._udp.local").unwrap();
    for i in 0..60 {
        let instance = service.prepend(&format!("big{i}")).unwrap();
        oversized
            .record(
                Section::Additional,
                &Record {
                    name: instance,
                    class: CLASS_IN,
                    cache_flush: false,
                    ttl: 120,
                    data: RData::Txt(vec![vec![b'x'; 250]]),
                },
            )
            .unwrap();
    }
    malformed.push(oversized.finish());
    for _ in 0..5 {
        for m in &malformed {
            send(m);
        }
    }
    // A huge (9000-byte) answer for one fake peer, mostly junk strings.
    let fake = PeerId::random();
    let instance = service.prepend("huge").unwrap();
    let mut huge = MessageWriter::new(0, FLAG_RESPONSE, 9000);
    huge.record(
        Section::Answer,
        &Record {
            name: service.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: 120,
            data: RData::Ptr(instance.clone()),
        },
    )
    .unwrap();
    let strings: Vec<Vec<u8>> = (0..40)
        .map(|i| format!("dnsaddr=/ip4/10.77.99.{i}/tcp/1/junk{i}/p2p/{fake}").into_bytes())
        .collect();
    let _ = huge.record(
        Section::Additional,
        &Record {
            name: instance,
            class: CLASS_IN,
            cache_flush: false,
            ttl: 120,
            data: RData::Txt(strings),
        },
    );
    send(&huge.finish());
    // 2000 fake peers, more than the table holds.
    let fake_peers = 2000;
    for i in 0..fake_peers {
        let instance = service.prepend(&format!("fake{i}")).unwrap();
        let mut w = MessageWriter::new(0, FLAG_RESPONSE, 1400);
        w.record(
            Section::Answer,
            &Record {
                name: service.clone(),
                class: CLASS_IN,
                cache_flush: false,
                ttl: 120,
                data: RData::Ptr(instance.clone()),
            },
        )
        .unwrap();
        w.record(
            Section::Additional,
            &Record {
                name: instance,
                class: CLASS_IN,
                cache_flush: false,
                ttl: 120,
                data: RData::Txt(vec![
                    format!("dnsaddr=/ip4/10.77.98.1/tcp/1/p2p/{}", PeerId::random()).into_bytes(),
                ]),
            },
        )
        .unwrap();
        send(&w.finish());
    }
    emit(
        &json!({ "event": "flooded", "malformed": malformed.len() * 5, "fake_peers": fake_peers }),
    );
}

/// Asks for the peers as a legacy resolver would (`dig -p 5353 @224.0.0.251
/// _p2p._udp.local PTR`: an ephemeral port, an ID) over IPv4 and IPv6, and as a QU querier
/// on port 5353 (bound to this namespace's unicast address, so it hears unicast only). Env:
/// `LP2P_MDNS_ASK_FROM` (this namespace's IPv4 address), `LP2P_MDNS_ASK_DEV` (its
/// interface), `LP2P_MDNS_ASK_PEER` (the peer whose answer counts). Prints an `answer` line
/// per kind (`legacy-v4`, `qu-v4`, `legacy-v6`, `link-local-v6`): sender, ID, question
/// count, largest TTL and the addresses announced.
fn child_ask() {
    let env = |k: &str| std::env::var(k).unwrap();
    let from: Ipv4Addr = env("LP2P_MDNS_ASK_FROM").parse().unwrap();
    let dev = env("LP2P_MDNS_ASK_DEV");
    let peer: PeerId = env("LP2P_MDNS_ASK_PEER").parse().unwrap();
    let index: u32 = std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let service = Name::new("_p2p._udp.local").unwrap();
    let query = |id: u16, flags: u16, unicast_response: bool| {
        let mut w = MessageWriter::new(id, flags, 512);
        w.question(&Question {
            name: service.clone(),
            qtype: TYPE_PTR,
            qclass: CLASS_IN,
            unicast_response,
        })
        .unwrap();
        w.finish()
    };
    // Sends `packet` every half second until an answer announcing `peer` arrives. A send
    // may fail while the link is new (IPv6 still settling): it is tried again.
    let ask = |kind: &str, socket: &UdpSocket, to: SocketAddr, packet: &[u8]| {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + WAIT / 2;
        let mut buf = vec![0u8; 9000];
        let mut send_error = None;
        while Instant::now() < deadline {
            if let Err(e) = socket.send_to(packet, to) {
                send_error = Some(e);
            }
            let resend = Instant::now() + Duration::from_millis(500);
            while Instant::now() < resend {
                let Ok((len, sender)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(m) = Message::parse(&buf[..len], 256) else {
                    continue;
                };
                let Some(found) = lp2p_mdns::proto::announcements(&m, &service)
                    .into_iter()
                    .find(|a| a.peer == Some(peer))
                else {
                    continue;
                };
                emit(&json!({
                    "event": "answer",
                    "kind": kind,
                    "from": sender.to_string(),
                    "id": m.header.id,
                    "questions": m.questions.len(),
                    "max_ttl": m.answers_and_additionals().map(|r| r.ttl).max(),
                    "addrs": found.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }));
                return;
            }
        }
        panic!("no {kind} answer (last send error: {send_error:?})");
    };
    let group4 = SocketAddr::from((Ipv4Addr::new(224, 0, 0, 251), 5353));
    let legacy4 = UdpSocket::bind((from, 0)).unwrap();
    ask(
        "legacy-v4",
        &legacy4,
        group4,
        &query(0x4242, FLAG_RECURSION_DESIRED, false),
    );
    let qu4 = UdpSocket::bind((from, 5353)).unwrap();
    ask("qu-v4", &qu4, group4, &query(0, 0, true));
    let legacy6 = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    socket2::SockRef::from(&legacy6)
        .set_multicast_if_v6(index)
        .unwrap();
    let group6 = SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
        5353,
        0,
        index,
    ));
    ask("legacy-v6", &legacy6, group6, &query(0x4343, 0, false));
    // From the interface's link-local address (the usual IPv6 mDNS case): the answer must
    // go back to it on the right interface. Binding fails while the address is tentative.
    let link_local = std::fs::read_to_string("/proc/net/if_inet6")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 6 && f[5] == dev && f[0].starts_with("fe80"))
        .map(|f| Ipv6Addr::from(u128::from_str_radix(f[0], 16).unwrap()))
        .unwrap();
    let deadline = Instant::now() + WAIT / 2;
    let scoped = loop {
        match UdpSocket::bind(SocketAddrV6::new(link_local, 0, 0, index)) {
            Ok(socket) => break socket,
            Err(e) if Instant::now() > deadline => panic!("cannot bind {link_local}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    socket2::SockRef::from(&scoped)
        .set_multicast_if_v6(index)
        .unwrap();
    ask("link-local-v6", &scoped, group6, &query(0x4444, 0, false));
}

// ---------------------------------------------------------------------------------------
// The tests.

fn node(name: &str, netns: &str, seed: u8, connect: &[PeerId], extra: &[(&str, String)]) -> Proc {
    let connect = connect
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        ("LP2P_MDNS_SEED", seed.to_string()),
        ("LP2P_MDNS_CONNECT", connect),
    ];
    env.extend(extra.iter().cloned());
    Proc::start(name, netns, "node", &env)
}

fn listen_port(listening: &Value, prefix: &str) -> String {
    str_list(&listening["addrs"])
        .into_iter()
        .find(|a| a.starts_with(prefix))
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Two hosts on a veth link discover each other (IPv4 and IPv6 addresses of that link,
/// nothing else), connect with what they discovered, survive a flood of bad packets and
/// fake peers with bounded tables, and forget each other on goodbye.
fn two_hosts_on_a_link_discover_and_connect() -> Outcome {
    let (_ns, [a, b]) = match veth_pair(1, 1) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    let mut na = node("node a", &a, 1, &[peer(2)], &[]);
    let mut nb = node("node b", &b, 2, &[peer(1)], &[]);
    let la = na.wait_for("listening", |v| v["event"] == "listening");
    let lb = nb.wait_for("listening", |v| v["event"] == "listening");

    let da = na.wait_for("discovered b", |v| {
        v["event"] == "discovered" && v["peer"] == peer(2).to_string()
    });
    let mut addrs = str_list(&da["addrs"]);
    addrs.sort();
    assert_eq!(
        addrs,
        vec![
            format!("/ip4/10.77.1.2/tcp/{}", listen_port(&lb, "/ip4/")),
            format!("/ip6/fd77:1::2/tcp/{}", listen_port(&lb, "/ip6/")),
        ]
    );
    let db = nb.wait_for("discovered a", |v| {
        v["event"] == "discovered" && v["peer"] == peer(1).to_string()
    });
    assert_eq!(str_list(&db["addrs"]).len(), 2, "{db}");
    assert!(
        str_list(&db["addrs"])
            .contains(&format!("/ip4/10.77.1.1/tcp/{}", listen_port(&la, "/ip4/")))
    );
    na.wait_for("connected to b", |v| v["event"] == "connected");
    nb.wait_for("connected to a", |v| v["event"] == "connected");

    // Known-answer suppression over real sockets (RFC 6762 §7.1): a's start-up queries after
    // the first list b's PTR, and b does not answer those.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        na.send("stats");
        let sa = na.wait_for("stats", |v| v["event"] == "stats");
        nb.send("stats");
        let sb = nb.wait_for("stats", |v| v["event"] == "stats");
        if sa["known_answers_sent"].as_u64().unwrap() > 0
            && sb["answers_suppressed"].as_u64().unwrap() > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no known-answer suppression: {sa} {sb}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Bad input from b's namespace.
    let flood = Proc::start(
        "flooder",
        &b,
        "flood",
        &[("LP2P_MDNS_FLOOD_FROM", "10.77.1.2".to_owned())],
    );
    flood.wait_for("flooded", |v| v["event"] == "flooded");
    flood.finish();
    na.send("stats");
    let stats = na.wait_for("stats", |v| v["event"] == "stats");
    assert!(stats["malformed"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["peers_dropped"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["txt_rejected"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["peers"].as_u64().unwrap() <= 1024, "{stats}");
    // Peers known before the flood are kept.
    assert!(str_list(&stats["knows"]).contains(&peer(2).to_string()));

    // Goodbye: b stops, a forgets it within a second or so.
    nb.send("stop");
    nb.wait_for("stopped", |v| v["event"] == "stopped");
    na.wait_for("b expired", |v| {
        v["event"] == "expired" && v["peer"] == peer(2).to_string()
    });
    na.finish();
    nb.finish();
    Outcome::Passed
}

/// mDNS over IPv6 alone (group ff02::fb on a link with link-local and ULA addresses).
fn discovery_over_ipv6_only() -> Outcome {
    let (_ns, [a, b]) = match veth_pair(2, 2) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    let v6 = [("LP2P_MDNS_IPV4", "0".to_owned())];
    let na = node("node a", &a, 11, &[peer(12)], &v6);
    let nb = node("node b", &b, 12, &[], &v6);
    let d = na.wait_for("discovered b", |v| {
        v["event"] == "discovered" && v["peer"] == peer(12).to_string()
    });
    let addrs = str_list(&d["addrs"]);
    assert!(
        addrs.iter().any(|a| a.starts_with("/ip6/fd77:2::2/tcp/")),
        "{d}"
    );
    na.wait_for("connected to b", |v| v["event"] == "connected");
    na.finish();
    nb.finish();
    Outcome::Passed
}

/// A loopback-only setup (one namespace with only `lo`, multicast on): with
/// `MdnsConfig::loopback` two hosts find each other at 127.0.0.1 and ::1.
fn loopback_only_setup() -> Outcome {
    let mut ns = match Netns::new("lm3") {
        Ok(ns) => ns,
        Err(why) => return Outcome::Skipped(why),
    };
    let t = match ns.add("").and_then(|t| {
        netns::run("ip", &["-n", &t, "link", "set", "lo", "multicast", "on"]).map(|_| t)
    }) {
        Ok(t) => t,
        Err(why) => return Outcome::Skipped(why),
    };
    let lo = [("LP2P_MDNS_LOOPBACK", "1".to_owned())];
    let na = node("node a", &t, 21, &[peer(22)], &lo);
    let nb = node("node b", &t, 22, &[peer(21)], &lo);
    let d = na.wait_for("discovered b", |v| {
        v["event"] == "discovered" && v["peer"] == peer(22).to_string()
    });
    let addrs = str_list(&d["addrs"]);
    assert!(
        addrs.iter().any(|a| a.starts_with("/ip4/127.0.0.1/tcp/")),
        "{d}"
    );
    assert!(addrs.iter().any(|a| a.starts_with("/ip6/::1/tcp/")), "{d}");
    nb.wait_for("discovered a", |v| {
        v["event"] == "discovered" && v["peer"] == peer(21).to_string()
    });
    na.wait_for("connected to b", |v| v["event"] == "connected");
    nb.wait_for("connected to a", |v| v["event"] == "connected");
    na.finish();
    nb.finish();
    Outcome::Passed
}

/// A legacy resolver (IPv4 and IPv6) and a QU querier on the link get unicast answers from
/// the responder's port 5353 (RFC 6762 §6.7, §5.4): the resolver's with its ID and question
/// and TTLs of at most 10 s, the QU querier's as mDNS answers are.
fn unicast_answers_to_legacy_and_qu_queriers() -> Outcome {
    let (_ns, [a, b]) = match veth_pair(4, 4) {
        Ok(v) => v,
        Err(why) => return Outcome::Skipped(why),
    };
    let mut na = node("node a", &a, 31, &[], &[]);
    let la = na.wait_for("listening", |v| v["event"] == "listening");
    let asker = Proc::start(
        "asker",
        &b,
        "ask",
        &[
            ("LP2P_MDNS_ASK_FROM", "10.77.4.2".to_owned()),
            ("LP2P_MDNS_ASK_DEV", "vb".to_owned()),
            ("LP2P_MDNS_ASK_PEER", peer(31).to_string()),
        ],
    );
    let answer = |kind: &str| asker.wait_for(kind, |v| v["event"] == "answer" && v["kind"] == kind);
    let v4 = format!("/ip4/10.77.4.1/tcp/{}", listen_port(&la, "/ip4/"));
    let v6 = format!("/ip6/fd77:4::1/tcp/{}", listen_port(&la, "/ip6/"));

    let legacy = answer("legacy-v4");
    assert_eq!(legacy["from"], "10.77.4.1:5353", "{legacy}");
    assert_eq!(legacy["id"], 0x4242, "{legacy}");
    assert_eq!(legacy["questions"], 1, "{legacy}");
    assert!(legacy["max_ttl"].as_u64().unwrap() <= 10, "{legacy}");
    assert!(str_list(&legacy["addrs"]).contains(&v4), "{legacy}");

    let qu = answer("qu-v4");
    assert_eq!(qu["from"], "10.77.4.1:5353", "{qu}");
    assert_eq!(qu["id"], 0, "{qu}");
    assert_eq!(qu["questions"], 0, "{qu}");
    assert_eq!(qu["max_ttl"], 360, "{qu}");
    assert!(str_list(&qu["addrs"]).contains(&v4), "{qu}");

    let legacy6 = answer("legacy-v6");
    assert!(
        legacy6["from"].as_str().unwrap().ends_with("]:5353"),
        "{legacy6}"
    );
    assert_eq!(legacy6["id"], 0x4343, "{legacy6}");
    assert!(legacy6["max_ttl"].as_u64().unwrap() <= 10, "{legacy6}");
    assert!(str_list(&legacy6["addrs"]).contains(&v6), "{legacy6}");

    let scoped = answer("link-local-v6");
    assert!(
        scoped["from"].as_str().unwrap().starts_with("[fe80::"),
        "{scoped}"
    );
    assert_eq!(scoped["id"], 0x4444, "{scoped}");
    assert!(str_list(&scoped["addrs"]).contains(&v6), "{scoped}");
    asker.finish();

    na.send("stats");
    let stats = na.wait_for("stats", |v| v["event"] == "stats");
    assert!(stats["unicast_sent"].as_u64().unwrap() >= 4, "{stats}");
    na.finish();
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------
// The harness.

/// A test: its name and body.
type Test = (&'static str, fn() -> Outcome);

fn main() {
    match std::env::var("LP2P_MDNS_CHILD").as_deref() {
        Ok("node") => return child_node(),
        Ok("flood") => return child_flood(),
        Ok("ask") => return child_ask(),
        _ => {}
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [Test; 4] = [
        (
            "two_hosts_on_a_link_discover_and_connect",
            two_hosts_on_a_link_discover_and_connect,
        ),
        ("discovery_over_ipv6_only", discovery_over_ipv6_only),
        ("loopback_only_setup", loopback_only_setup),
        (
            "unicast_answers_to_legacy_and_qu_queriers",
            unicast_answers_to_legacy_and_qu_queriers,
        ),
    ];
    let require = std::env::var_os("LP2P_REQUIRE_NETNS").is_some();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(test) {
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
    println!("netns: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
