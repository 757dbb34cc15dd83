//! Kademlia in a mixed network of processes: three `lp2p-node` and three `rust-libp2p-node`
//! (libp2p-kad 0.49) listeners in server mode, alternating lp2p / rust-libp2p and each
//! bootstrapping from the one before, on 127.0.0.1. Dialing clients of both implementations
//! and the listeners' stdin then run every operation so that each result crosses the
//! implementations: a record put through one is read through the other, a provider
//! announced by one is found by the other, peers of each are found by the other.
//!
//! The lp2p-node binary is `$LP2P_NODE` when set, otherwise built from the parent
//! workspace. Run alone with `cargo test --test kad_network -- --nocapture` to see the table.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Each dial's own hard stop, generous for a slow, loaded machine.
const RUN_TIMEOUT: &str = "60";
/// How long the runner waits for a listener's line.
const LINE_WAIT: Duration = Duration::from_secs(90);
/// A freshly joined network needs a moment for identify and bootstrap; an operation that
/// fails is tried again this many times, a second apart, before the cell fails.
const ATTEMPTS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Lp2p,
    Rust,
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Lp2p => "lp2p",
            Imp::Rust => "rust-libp2p",
        }
    }
}

struct Bins {
    lp2p: PathBuf,
    rust: PathBuf,
}

impl Bins {
    fn of(&self, imp: Imp) -> &Path {
        match imp {
            Imp::Lp2p => &self.lp2p,
            Imp::Rust => &self.rust,
        }
    }
}

/// A listening node, killed when dropped.
struct Node {
    imp: Imp,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    addr: String,
    peer: String,
}

impl Node {
    fn start(bins: &Bins, imp: Imp, seed: u64, connect: Option<&str>) -> Node {
        let mut command = Command::new(bins.of(imp));
        command.args([
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--kad",
            "server",
            "--key-seed",
            &seed.to_string(),
            "--timeout",
            "600",
        ]);
        if let Some(addr) = connect {
            command.args(["--connect", addr]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a listener");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && tx.send(event).is_err()
                {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut node = Node {
            imp,
            child,
            stdin,
            events,
            addr: String::new(),
            peer: String::new(),
        };
        let listening = node.wait_for(|e| e["event"] == "listening");
        node.addr = listening["addrs"][0].as_str().expect("address").to_owned();
        node.peer = listening["peer_id"].as_str().expect("peer id").to_owned();
        node
    }

    fn wait_for(&mut self, mut matches: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let event = self.events.recv_timeout(LINE_WAIT).unwrap_or_else(|_| {
                panic!("{} listener: nothing within {LINE_WAIT:?}", self.imp.name())
            });
            assert_ne!(event["event"], "error", "listener failed: {event}");
            if matches(&event) {
                return event;
            }
        }
    }

    /// Sends a kad stdin line and waits for its `kad` event.
    fn kad_line(&mut self, line: &str, op: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write stdin");
        stdin.flush().expect("flush stdin");
        self.wait_for(|e| e["event"] == "kad" && e["op"] == op)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dial --addr ENTRY --key-seed SEED ARGS...` with `imp`; the `kad` events, or the
/// error.
fn dial(
    bins: &Bins,
    imp: Imp,
    seed: u64,
    entry: &str,
    args: &[&str],
) -> Result<Vec<Value>, String> {
    let output = Command::new(bins.of(imp))
        .args([
            "dial",
            "--addr",
            entry,
            "--key-seed",
            &seed.to_string(),
            "--timeout",
            RUN_TIMEOUT,
        ])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", imp.name()))?;
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !output.status.success() {
        let error = events
            .iter()
            .find(|e| e["event"] == "error")
            .map_or_else(|| "no error event".to_owned(), ToString::to_string);
        return Err(error);
    }
    Ok(events.into_iter().filter(|e| e["event"] == "kad").collect())
}

/// `dial` until `check` accepts the events (at most [`ATTEMPTS`] times).
fn dial_until(
    bins: &Bins,
    imp: Imp,
    seed: u64,
    entry: &str,
    args: &[&str],
    check: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>, String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match dial(bins, imp, seed, entry, args) {
            Ok(events) if check(&events) => return Ok(events),
            Ok(events) => last = format!("unexpected events {events:?}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(last)
}

fn peer_of_seed(seed: u64) -> String {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    libp2p::identity::Keypair::ed25519_from_bytes(secret)
        .expect("ed25519 key")
        .public()
        .to_peer_id()
        .to_string()
}

#[test]
fn six_node_mixed_network_every_operation_across_implementations() {
    lp2p_interop::init_tracing();
    let bins = Bins {
        lp2p: lp2p_interop::lp2p_node_binary(false),
        rust: PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
    };
    let imps = [
        Imp::Lp2p,
        Imp::Rust,
        Imp::Lp2p,
        Imp::Rust,
        Imp::Lp2p,
        Imp::Rust,
    ];
    let mut nodes: Vec<Node> = Vec::new();
    for (i, imp) in imps.into_iter().enumerate() {
        let connect = nodes.last().map(|n| n.addr.clone());
        nodes.push(Node::start(&bins, imp, 100 + i as u64, connect.as_deref()));
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let peers: Vec<String> = nodes.iter().map(|n| n.peer.clone()).collect();
    let kinds: Vec<Imp> = nodes.iter().map(|n| n.imp).collect();
    let addr = |i: usize| addrs[i].clone();
    let peer = |i: usize| peers[i].clone();
    let ok = |op: &'static str| {
        move |events: &[Value]| events.iter().any(|e| e["op"] == op && e["ok"] == true)
    };
    let mut table: Vec<(String, Result<String, String>)> = Vec::new();
    let mut cell = |name: String, result: Result<String, String>| {
        eprintln!("{name}: {result:?}");
        table.push((name, result));
    };

    // Records, each direction: put through one implementation, read through the other.
    for (writer, reader, w_entry, r_entry, key) in [
        (Imp::Lp2p, Imp::Rust, 1, 4, "from-lp2p"),
        (Imp::Rust, Imp::Lp2p, 2, 5, "from-rust"),
    ] {
        let value = format!("{key}-value");
        let put = dial_until(
            &bins,
            writer,
            200,
            &addr(w_entry),
            &["--kad-put", &format!("{key}={value}")],
            ok("put"),
        );
        let got = put.and_then(|_| {
            dial_until(
                &bins,
                reader,
                201,
                &addr(r_entry),
                &["--kad-get", key],
                |events| {
                    events
                        .iter()
                        .any(|e| e["op"] == "get" && e["value"] == value.as_str())
                },
            )
        });
        cell(
            format!(
                "put by {} dialer via {}, get by {} dialer via {}",
                writer.name(),
                kinds[w_entry].name(),
                reader.name(),
                kinds[r_entry].name()
            ),
            got.map(|_| value.clone()),
        );
    }

    // Providers, each direction.
    for (provider, finder, p_entry, f_entry, key, seed) in [
        (Imp::Lp2p, Imp::Rust, 3, 0, "content-lp2p", 300u64),
        (Imp::Rust, Imp::Lp2p, 0, 1, "content-rust", 301u64),
    ] {
        let who = peer_of_seed(seed);
        let provided = dial_until(
            &bins,
            provider,
            seed,
            &addr(p_entry),
            &["--kad-provide", key],
            ok("provide"),
        );
        let found = provided.and_then(|_| {
            dial_until(
                &bins,
                finder,
                302,
                &addr(f_entry),
                &["--kad-find-providers", key],
                |events| {
                    events.iter().any(|e| {
                        e["op"] == "find-providers"
                            && e["providers"]
                                .as_array()
                                .is_some_and(|p| p.iter().any(|p| p == who.as_str()))
                    })
                },
            )
        });
        cell(
            format!(
                "provide by {} dialer, find-providers by {} dialer",
                provider.name(),
                finder.name()
            ),
            found.map(|_| who.clone()),
        );
    }

    // Find-peer: each implementation finds nodes of the other, entering at its own kind.
    for (finder, entry, target) in [
        (Imp::Lp2p, 0, 5),
        (Imp::Rust, 1, 4),
        (Imp::Lp2p, 2, 3),
        (Imp::Rust, 3, 0),
    ] {
        let want = addr(target);
        let found = dial_until(
            &bins,
            finder,
            400,
            &addr(entry),
            &["--kad-find-peer", &peer(target)],
            |events| {
                events.iter().any(|e| {
                    e["op"] == "find-peer"
                        && e["peers"]
                            .as_array()
                            .is_some_and(|p| p.iter().any(|a| a == want.as_str()))
                })
            },
        );
        cell(
            format!(
                "find-peer by {} dialer via {}: {} node",
                finder.name(),
                kinds[entry].name(),
                kinds[target].name()
            ),
            found.map(|_| want.clone()),
        );
    }

    // A provider that stays: a rust-libp2p listener announces through its stdin.
    let announced = nodes[3].kad_line("kad-provide content-rust-listener", "provide");
    let who = peer(3);
    let found = if announced["ok"] == true {
        dial_until(
            &bins,
            Imp::Lp2p,
            303,
            &addr(4),
            &["--kad-find-providers", "content-rust-listener"],
            |events| {
                events.iter().any(|e| {
                    e["op"] == "find-providers"
                        && e["providers"]
                            .as_array()
                            .is_some_and(|p| p.iter().any(|p| p == who.as_str()))
                })
            },
        )
        .map(|_| who.clone())
    } else {
        Err(announced.to_string())
    };
    cell(
        "provide by rust-libp2p listener (stdin), find-providers by lp2p dialer".to_owned(),
        found,
    );

    // The listeners' stdin: each implementation reads what the other wrote.
    let lines = [
        (
            2usize,
            "kad-get from-rust".to_owned(),
            "get",
            "from-rust-value".to_owned(),
        ),
        (
            3,
            "kad-get from-lp2p".to_owned(),
            "get",
            "from-lp2p-value".to_owned(),
        ),
        (
            4,
            format!("kad-find-peer {}", peer(1)),
            "find-peer",
            addr(1),
        ),
        (
            5,
            "kad-find-providers content-lp2p".to_owned(),
            "find-providers",
            peer_of_seed(300),
        ),
        (
            0,
            "kad-find-providers content-rust".to_owned(),
            "find-providers",
            peer_of_seed(301),
        ),
    ];
    for (i, line, op, want) in lines {
        let mut result = Err(String::new());
        for _ in 0..ATTEMPTS {
            let event = nodes[i].kad_line(&line, op);
            let hit = event["value"] == want.as_str()
                || ["peers", "providers"].iter().any(|f| {
                    event[*f]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|v| v == want.as_str()))
                });
            if hit {
                result = Ok(want.clone());
                break;
            }
            result = Err(event.to_string());
            std::thread::sleep(Duration::from_secs(1));
        }
        cell(
            format!("{} listener stdin `{line}`", nodes[i].imp.name()),
            result,
        );
    }

    eprintln!(
        "\nKademlia across implementations (6 listeners: lp2p, rust, lp2p, rust, lp2p, rust)"
    );
    for (name, result) in &table {
        eprintln!("  {:<4} {name}", if result.is_ok() { "ok" } else { "FAIL" });
    }
    let failed: Vec<&(String, Result<String, String>)> =
        table.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "failed cells: {failed:#?}");
}
