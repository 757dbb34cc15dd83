//! A mixed-implementation gossipsub network: 9 core processes (3 lp2p-node, 3
//! rust-libp2p-node, 3 js-libp2p-node) in a sparse graph (a ring plus chords, 4 neighbours
//! each, every ring edge between two implementations), then 3 late joiners (one per
//! implementation) that only get the first round of messages through gossip.
//!
//! The reference peers run with a small mesh (D=1, Dlo=1, Dhi=2), peer exchange on, a 5 s
//! prune backoff and a long gossip history, so with 4 neighbours they prune (with PX and
//! backoff) and gossip (IHAVE) to the peers left outside their mesh; lp2p-node runs its
//! defaults (D=6: it keeps every neighbour it can). 2 KiB+ messages trigger IDONTWANT
//! (gossipsub v1.2). The late joiners fetch the first round with IWANT.
//!
//! Message ids: every node uses the pubsub spec's id, the author's peer id bytes followed by
//! the 8-byte big-endian seqno: lp2p's default (`default_message_id`, as go-libp2p), and
//! rust-libp2p and js-libp2p configured with it (`--message-id spec`). Left at their
//! defaults they differ: rust-libp2p's is the base58 author text followed by the decimal
//! seqno text, js-libp2p 3's is the protobuf of the author's public key followed by the seqno
//! (no identity-multihash prefix). The test checks the ids js and rust report for each
//! message are equal and of the spec's form, and that every id lp2p and rust put in the
//! IHAVE and IDONTWANT js received is one of them.
//!
//! What it checks: every message reaches every node; the ids agree; no node GRAFTs another
//! implementation's node inside the backoff that node's PRUNE set; and control messages of
//! each kind cross implementation boundaries ([`REQUIRED`]). Where it sees control traffic:
//! js-libp2p-node reports what it receives and sends, rust-libp2p-node what it receives
//! (from rust-libp2p's logs: IHAVE, IWANT, GRAFT, PRUNE; not IDONTWANT), lp2p-node what it
//! receives (its `lp2p_pubsub::control` debug log). The full table is printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use lp2p_interop::peers::{self, Implementation, Peer, Programs};
use serde_json::Value;

const TOPIC: &str = "mixed-gossip";
/// How long every message may take to reach every node. Generous: a loaded 2-core machine
/// runs 12 processes here.
const DELIVERY_WAIT: Duration = Duration::from_secs(120);
/// How long the network may take to connect as the graph says.
const CONNECT_WAIT: Duration = Duration::from_secs(90);
/// Pacing, not an assertion: heartbeats for the reference peers' meshes to settle (and
/// prune) before the first round is published.
const SETTLE: Duration = Duration::from_secs(4);
/// Size of the large messages: above every implementation's IDONTWANT threshold (lp2p 1 KiB,
/// rust-libp2p 1000 bytes, js-libp2p 512 bytes) and the 2 KiB.
const BIG: usize = 3 * 1024;
/// Messages each lp2p core node publishes in round 3, one a second.
const ROUND3: usize = 4;
/// The reference peers' gossipsub tuning (see the module docs).
const TUNING: &[&str] = &[
    "--mesh-d",
    "1",
    "--mesh-dlo",
    "1",
    "--mesh-dhi",
    "2",
    "--px",
    "--prune-backoff",
    "5",
    "--history-length",
    "40",
    "--history-gossip",
    "30",
    "--heartbeat-ms",
    "500",
    "--message-id",
    "spec",
    "--trace-control",
];

/// Control traffic that must be seen crossing from one implementation to another:
/// (kind, from, to). Every pair is observable (see the module docs).
///
/// Not required, because this set-up does not make them happen every run (they are printed
/// when they do): lp2p never PRUNEs here (its D=6 mesh holds every neighbour, and it runs
/// without PX); js and rust rarely GRAFT lp2p (lp2p grafts them first); an IWANT to lp2p
/// needs an IHAVE from lp2p to arrive before the mesh copy; rust <-> js PRUNEs depend on
/// which mesh peer the reference peer drops.
const REQUIRED: &[(&str, Implementation, Implementation)] = {
    use Implementation::{Js, Lp2p, Rust};
    &[
        ("ihave", Js, Lp2p),
        ("ihave", Rust, Lp2p),
        ("ihave", Lp2p, Js),
        ("ihave", Lp2p, Rust),
        ("ihave", Rust, Js),
        ("ihave", Js, Rust),
        ("iwant", Js, Rust),
        ("iwant", Rust, Js),
        ("idontwant", Lp2p, Js),
        ("idontwant", Js, Lp2p),
        ("idontwant", Rust, Lp2p),
        ("prune", Js, Lp2p),
        ("prune+px", Js, Lp2p),
        ("prune", Rust, Lp2p),
        ("graft", Lp2p, Js),
        ("graft", Lp2p, Rust),
        ("graft", Js, Rust),
        ("graft", Rust, Js),
    ]
};

/// At least one of each group must be seen: the late lp2p node fetches round 1 with IWANT
/// from whichever reference peer gossips to it first.
const REQUIRED_ANY: &[(&str, &[(Implementation, Implementation)])] = {
    use Implementation::{Js, Lp2p, Rust};
    &[("iwant", &[(Lp2p, Js), (Lp2p, Rust)])]
};

struct Node {
    name: String,
    imp: Implementation,
    peer: Peer,
    log: Vec<Value>,
    stderr: PathBuf,
}

impl Node {
    fn pump(&mut self) {
        self.log.extend(self.peer.drain());
    }

    fn connected_to(&self) -> BTreeSet<String> {
        self.log
            .iter()
            .filter(|e| e["event"] == "connected")
            .filter_map(|e| e["peer"].as_str().map(str::to_owned))
            .collect()
    }

    /// Whether this node should print `message`: every message but its own.
    fn expects(&self, message: &str) -> bool {
        !message.contains(&format!("from {} ", self.name))
    }

    fn messages(&self) -> BTreeMap<String, Option<String>> {
        self.log
            .iter()
            .filter(|e| e["event"] == "message" && e["topic"] == TOPIC)
            .filter_map(|e| {
                let data = e["data"].as_str()?.to_owned();
                Some((data, e["id"].as_str().map(str::to_owned)))
            })
            .collect()
    }
}

fn start(
    programs: &Programs,
    dir: &Path,
    name: &str,
    imp: Implementation,
    connect: &[String],
) -> Node {
    let mut args: Vec<String> = ["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--topic", TOPIC]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(["--timeout".to_owned(), "600".to_owned()]);
    for addr in connect {
        args.extend(["--connect".to_owned(), addr.clone()]);
    }
    if imp != Implementation::Lp2p {
        args.extend(TUNING.iter().map(|s| (*s).to_owned()));
    }
    let mut command: Command = programs
        .command(imp)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    command.env("NO_COLOR", "1");
    if imp == Implementation::Lp2p {
        command.env("RUST_LOG", "lp2p_pubsub=debug");
    }
    let stderr = dir.join(format!("{name}.stderr"));
    let peer = Peer::listen(command, &args, Some(&stderr))
        .unwrap_or_else(|e| panic!("{name} ({}) did not start: {e}", imp.name()));
    Node {
        name: name.to_owned(),
        imp,
        peer,
        log: Vec::new(),
        stderr,
    }
}

/// Polls every node until `done` holds or `limit` passes; whether it held.
fn wait_until(nodes: &mut [Node], limit: Duration, mut done: impl FnMut(&[Node]) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        for node in nodes.iter_mut() {
            node.pump();
        }
        if done(nodes) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A control message seen crossing: kind, sender implementation, receiver implementation,
/// sender, receiver, and its ids (hex) when the observer reports them.
struct Seen {
    kind: String,
    from: Implementation,
    to: Implementation,
    from_node: String,
    to_node: String,
    ids: Vec<String>,
}

/// One field of an lp2p log line (`key=value`, quotes removed).
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split(' ').next().map(|v| v.trim_matches('"'))
}

fn observations(nodes: &[Node]) -> (Vec<Seen>, Vec<String>) {
    let by_id: HashMap<String, (Implementation, String)> = nodes
        .iter()
        .map(|n| (n.peer.peer_id.clone(), (n.imp, n.name.clone())))
        .collect();
    let mut seen = Vec::new();
    let mut backoff_violations = Vec::new();
    for node in nodes {
        let mut record = |kind: &str, other: &str, inbound: bool, ids: Vec<String>| {
            let Some((imp, name)) = by_id.get(other) else {
                return;
            };
            let (from, to, from_node, to_node) = if inbound {
                (*imp, node.imp, name.clone(), node.name.clone())
            } else {
                (node.imp, *imp, node.name.clone(), name.clone())
            };
            if kind == "graft-in-backoff" {
                backoff_violations.push(format!(
                    "{from_node} ({}) grafted {to_node} ({}) inside its backoff",
                    from.name(),
                    to.name()
                ));
                return;
            }
            seen.push(Seen {
                kind: kind.to_owned(),
                from,
                to,
                from_node,
                to_node,
                ids,
            });
        };
        match node.imp {
            Implementation::Lp2p => {
                let text = std::fs::read_to_string(&node.stderr).unwrap_or_default();
                for line in text.lines() {
                    let Some(peer) = log_field(line, "peer") else {
                        continue;
                    };
                    if line.contains("gossipsub control received") {
                        let Some(kind) = log_field(line, "kind") else {
                            continue;
                        };
                        record(kind, peer, true, Vec::new());
                        if kind == "prune" && log_field(line, "px").is_some_and(|n| n != "0") {
                            record("prune+px", peer, true, Vec::new());
                        }
                    } else if line.contains("GRAFT during backoff") {
                        record("graft-in-backoff", peer, true, Vec::new());
                    }
                }
            }
            _ => {
                for event in node.log.iter().filter(|e| e["event"] == "control") {
                    let (Some(kind), Some(peer)) = (event["kind"].as_str(), event["peer"].as_str())
                    else {
                        continue;
                    };
                    let inbound = event["dir"] != "out";
                    let ids: Vec<String> = event["ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    record(kind, peer, inbound, ids.clone());
                    if kind == "prune" && event["px"].as_u64().is_some_and(|n| n > 0) {
                        record("prune+px", peer, inbound, ids);
                    }
                }
            }
        }
    }
    (seen, backoff_violations)
}

#[test]
fn mixed_implementation_gossip_network() {
    lp2p_interop::init_tracing();
    let missing: Vec<&str> = [Implementation::Rust, Implementation::Js]
        .into_iter()
        .filter(|imp| !peers::selected(*imp))
        .map(Implementation::key)
        .collect();
    if !missing.is_empty() {
        println!(
            "mixed gossip network SKIPPED: it needs rust and js, LP2P_INTEROP_PEERS leaves out {missing:?}"
        );
        return;
    }
    let interop_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let programs = Programs::new(
        lp2p_interop::lp2p_node_binary(false),
        PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        interop_dir,
    );
    let dir = std::env::temp_dir().join(format!("lp2p-mixed-gossip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");

    use Implementation::{Js, Lp2p, Rust};
    let core = [
        ("L1", Lp2p),
        ("R1", Rust),
        ("J1", Js),
        ("L2", Lp2p),
        ("R2", Rust),
        ("J2", Js),
        ("L3", Lp2p),
        ("R3", Rust),
        ("J3", Js),
    ];
    // A ring (every edge between two implementations) plus chords i -- i+4: 4 neighbours
    // each. The later-started node dials the earlier one.
    let n = core.len();
    let mut edges = BTreeSet::new();
    for i in 0..n {
        for j in [(i + 1) % n, (i + 4) % n] {
            edges.insert((i.min(j), i.max(j)));
        }
    }
    let mut nodes: Vec<Node> = Vec::new();
    for (index, (name, imp)) in core.iter().enumerate() {
        let connect: Vec<String> = edges
            .iter()
            .filter(|(a, b)| *b == index && *a < index)
            .map(|(a, _)| nodes[*a].peer.addr.clone())
            .collect();
        nodes.push(start(&programs, &dir, name, *imp, &connect));
    }
    let mut neighbours: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n];
    for (a, b) in &edges {
        neighbours[*a].insert(nodes[*b].peer.peer_id.clone());
        neighbours[*b].insert(nodes[*a].peer.peer_id.clone());
    }
    let connected = wait_until(&mut nodes, CONNECT_WAIT, |nodes| {
        nodes
            .iter()
            .zip(&neighbours)
            .all(|(node, want)| want.is_subset(&node.connected_to()))
    });
    assert!(
        connected,
        "the core network did not connect as the graph says"
    );
    std::thread::sleep(SETTLE);

    // Round 1: every core node publishes a small and a large message.
    let mut expected: Vec<String> = Vec::new();
    for node in &mut nodes {
        let small = format!("small from {} !", node.name);
        let big = format!("big from {} {}", node.name, "x".repeat(BIG));
        for text in [small, big] {
            node.peer
                .send_line(&format!("publish {TOPIC} {text}"))
                .unwrap_or_else(|e| panic!("{}: {e}", node.name));
            expected.push(text);
        }
    }
    // Late joiners, one per implementation, each connected to core nodes of the other two:
    // they get round 1 only through gossip (IHAVE, then their IWANT).
    // R4 and J4 see only the other reference implementation, so what they fetch crosses
    // rust <-> js; L4 sees both.
    let late: [(&str, Implementation, &[usize]); 3] = [
        ("L4", Lp2p, &[1, 2, 4]),
        ("R4", Rust, &[2, 8]),
        ("J4", Js, &[4, 7]),
    ];
    for (name, imp, to) in late {
        let connect: Vec<String> = to.iter().map(|i| nodes[*i].peer.addr.clone()).collect();
        nodes.push(start(&programs, &dir, name, imp, &connect));
    }
    let everyone = |nodes: &[Node], expected: &[String]| {
        nodes.iter().all(|node| {
            let got = node.messages();
            expected
                .iter()
                .all(|m| !node.expects(m) || got.contains_key(m))
        })
    };
    let round1 = wait_until(&mut nodes, DELIVERY_WAIT, |nodes| {
        everyone(nodes, &expected)
    });
    // Round 2: the late joiners publish a large message each.
    if round1 {
        for node in nodes.iter_mut().skip(n) {
            let text = format!("late big from {} {}", node.name, "y".repeat(BIG));
            node.peer
                .send_line(&format!("publish {TOPIC} {text}"))
                .unwrap_or_else(|e| panic!("{}: {e}", node.name));
            expected.push(text);
        }
    }
    let round2 = round1
        && wait_until(&mut nodes, DELIVERY_WAIT, |nodes| {
            everyone(nodes, &expected)
        });
    // Round 3: the lp2p core nodes publish a few messages a heartbeat apart, while the
    // reference peers keep pruning them, so lp2p gossips (IHAVE) to peers outside its mesh.
    if round2 {
        for i in 0..ROUND3 {
            for node in nodes.iter_mut().take(n).filter(|node| node.imp == Lp2p) {
                let text = format!("round3 {i} from {} {}", node.name, "z".repeat(BIG));
                node.peer
                    .send_line(&format!("publish {TOPIC} {text}"))
                    .unwrap_or_else(|e| panic!("{}: {e}", node.name));
                expected.push(text);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let delivered = round2
        && wait_until(&mut nodes, DELIVERY_WAIT, |nodes| {
            everyone(nodes, &expected)
        });
    // A few more heartbeats of gossip and pruning before the books close.
    std::thread::sleep(SETTLE);
    for node in &mut nodes {
        node.pump();
    }

    // Delivery.
    let mut problems = Vec::new();
    for node in &nodes {
        let got = node.messages();
        let missed: Vec<String> = expected
            .iter()
            .filter(|m| node.expects(m) && !got.contains_key(*m))
            .map(|m| m.chars().take(20).collect())
            .collect();
        if !missed.is_empty() {
            problems.push(format!(
                "{} ({}) missed {} of {} messages: {missed:?}",
                node.name,
                node.imp.name(),
                missed.len(),
                expected.len()
            ));
        }
    }
    if !delivered {
        problems.push(format!(
            "not every message reached every node within {DELIVERY_WAIT:?}"
        ));
    }

    // Message ids: what js and rust report per message agrees and is author bytes + seqno.
    let authors: HashMap<String, String> = nodes
        .iter()
        .map(|node| {
            let bytes = PeerId::from_str(&node.peer.peer_id)
                .expect("peer id")
                .to_bytes();
            (
                node.name.clone(),
                bytes.iter().map(|b| format!("{b:02x}")).collect(),
            )
        })
        .collect();
    let mut known_ids = BTreeSet::new();
    for message in &expected {
        let ids: BTreeSet<String> = nodes
            .iter()
            .filter_map(|node| node.messages().get(message).cloned().flatten())
            .collect();
        let author = message
            .split(' ')
            .find(|w| authors.contains_key(*w))
            .and_then(|name| authors.get(name));
        match (ids.len(), author) {
            (1, Some(author)) => {
                let id = ids.iter().next().cloned().unwrap_or_default();
                if !(id.starts_with(author.as_str()) && id.len() == author.len() + 16) {
                    problems.push(format!(
                        "message {:?}: id {id} is not the author's peer id bytes + 8-byte seqno",
                        &message[..message.len().min(20)]
                    ));
                }
                known_ids.insert(id);
            }
            (0, _) => {}
            _ => problems.push(format!(
                "message {:?}: js and rust disagree on its id: {ids:?}",
                &message[..message.len().min(20)]
            )),
        }
    }

    let (seen, backoff_violations) = observations(&nodes);
    for violation in backoff_violations.iter().collect::<BTreeSet<_>>() {
        problems.push(violation.clone());
    }
    // Ids lp2p and rust put in the IHAVE/IDONTWANT that js received are known message ids.
    let mut checked_ids = 0;
    for s in &seen {
        if s.to == Js && s.from != Js && (s.kind == "ihave" || s.kind == "idontwant") {
            for id in &s.ids {
                checked_ids += 1;
                if !known_ids.contains(id) {
                    problems.push(format!(
                        "{} sent {} an {} for id {id}, which is no message's id",
                        s.from_node, s.to_node, s.kind
                    ));
                }
            }
        }
    }

    // The crossing table.
    let kinds = ["ihave", "iwant", "idontwant", "graft", "prune", "prune+px"];
    let mut table: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for s in &seen {
        if s.from == s.to {
            continue;
        }
        if let Some(kind) = kinds.iter().find(|k| **k == s.kind) {
            *table.entry((kind, s.from.name(), s.to.name())).or_default() += 1;
        }
    }
    println!(
        "\nmixed gossip network: {} nodes ({} core + {} late), {} messages, logs in {}",
        nodes.len(),
        n,
        nodes.len() - n,
        expected.len(),
        dir.display()
    );
    println!("message ids checked in IHAVE/IDONTWANT received by js: {checked_ids}");
    println!("control messages seen crossing implementations (count):");
    let pairs = [
        (Lp2p, Rust),
        (Lp2p, Js),
        (Rust, Lp2p),
        (Js, Lp2p),
        (Rust, Js),
        (Js, Rust),
    ];
    let header: Vec<String> = pairs
        .iter()
        .map(|(a, b)| format!("{}->{}", a.key(), b.key()))
        .collect();
    println!("{:10} | {}", "", header.join(" | "));
    for kind in kinds {
        let cells: Vec<String> = pairs
            .iter()
            .map(|(a, b)| {
                let count = table.get(&(kind, a.name(), b.name())).copied().unwrap_or(0);
                let observable = !(kind == "idontwant" && *b == Rust && *a != Js);
                let width = format!("{}->{}", a.key(), b.key()).len();
                let text = if observable {
                    count.to_string()
                } else {
                    "n/o".to_owned()
                };
                format!("{text:^width$}")
            })
            .collect();
        println!("{kind:10} | {}", cells.join(" | "));
    }
    println!("(n/o: not observable; rust-libp2p does not report received IDONTWANT)");
    for (kind, from, to) in REQUIRED {
        if table
            .get(&(*kind, from.name(), to.name()))
            .copied()
            .unwrap_or(0)
            == 0
        {
            problems.push(format!(
                "no {kind} seen from {} to {}",
                from.name(),
                to.name()
            ));
        }
    }
    for (kind, pairs) in REQUIRED_ANY {
        if pairs.iter().all(|(a, b)| {
            table
                .get(&(*kind, a.name(), b.name()))
                .copied()
                .unwrap_or(0)
                == 0
        }) {
            problems.push(format!("no {kind} seen for any of {pairs:?}"));
        }
    }
    for problem in &problems {
        println!("  PROBLEM {problem}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
