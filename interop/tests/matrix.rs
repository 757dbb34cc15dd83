//! The multi-process interop matrix: `lp2p-node` against the programs of three other
//! implementations that follow the same command-line contract (see `lp2p_interop::peers`):
//! rust-libp2p 0.57.1, js-libp2p 3.3.11 and py-libp2p 0.8.1, as separate processes over TCP,
//! in both dial directions, across {noise, plaintext} x {yamux, mplex where the peer has it}
//! x {ping, echo, identify, gossipsub both ways, perf 64 MiB both ways} on 127.0.0.1, plus
//! the same cells over `/ip6/::1` (noise, yamux), skipped visibly where the machine has no
//! IPv6 loopback. Against rust-libp2p and js-libp2p also TCP with TLS 1.3 (`--security tls`,
//! yamux), and against rust-libp2p QUIC (`/udp/0/quic-v1`, which brings its own TLS 1.3 and
//! streams: `--security` and `--muxer` are passed but do not apply).
//!
//! A cell that fails because of the other implementation is listed in [`KNOWN_UPSTREAM`]
//! with the upstream behaviour: it still runs, is reported `xfail`, and turns into a failure
//! (`XPASS`) if it passes, so the list stays honest.
//!
//! One listener per (listener, dialer, security, IP version) serves all its rows (the muxer
//! is chosen by the dialer with `--muxer X --only`); listeners run [`WORKERS`] at a time.
//! `LP2P_INTEROP_PEERS=rust,js` limits the peers (the others are reported as skipped).
//! Run it alone with `cargo test --test matrix -- --nocapture` to see the table.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use lp2p_interop::peers::{self, Implementation, Peer, Programs};
use serde_json::Value;

/// Each dial/perf run's own hard stop, generous for a slow, loaded machine.
const RUN_TIMEOUT: &str = "90";
/// The perf transfer in each direction.
const PERF_BYTES: u64 = 64 * 1024 * 1024;
/// Each row gossips on its own topic: a listener serves several rows, and a peer's gossip
/// (IHAVE of its message cache) would otherwise hand a row's dialer the previous row's
/// messages, which satisfy `--expect-messages` before the row's own message arrives.
fn row_topic(row: usize) -> String {
    format!("interop-matrix-row-{row}")
}
/// Listener groups run at the same time: the processes mostly wait on each other, so a few
/// in parallel keep a 2-core machine busy without starving the perf cells.
const WORKERS: usize = 3;

const CELLS: [&str; 5] = ["ping", "echo", "identify", "gossipsub", "perf 64 MiB"];

/// A cell known to fail because of the other implementation: who dials whom, the cell, and
/// the upstream behaviour that makes it fail. Matched on (dialer, listener, muxer or any,
/// cell).
struct KnownUpstream {
    dialer: Implementation,
    listener: Implementation,
    muxer: Option<&'static str>,
    cell: &'static str,
    reason: &'static str,
}

const KNOWN_UPSTREAM: &[KnownUpstream] = &[];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ip {
    V4,
    V6,
}

/// The transport of a group's listen address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Quic,
}

impl Transport {
    /// The protocol before the port in a listen address.
    fn port_protocol(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "udp",
        }
    }
}

impl Ip {
    fn listen_addr(self, transport: Transport) -> &'static str {
        match (self, transport) {
            (Ip::V4, Transport::Tcp) => "/ip4/127.0.0.1/tcp/0",
            (Ip::V6, Transport::Tcp) => "/ip6/::1/tcp/0",
            (Ip::V4, Transport::Quic) => "/ip4/127.0.0.1/udp/0/quic-v1",
            (Ip::V6, Transport::Quic) => "/ip6/::1/udp/0/quic-v1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ip::V4 => "ip4",
            Ip::V6 => "ip6",
        }
    }
}

/// One listener and the rows it serves.
struct Group {
    dialer: Implementation,
    listener: Implementation,
    security: &'static str,
    transport: Transport,
    ip: Ip,
    muxers: Vec<&'static str>,
}

enum Outcome {
    Pass,
    Fail(String),
    XFail { reason: &'static str, error: String },
    XPass { reason: &'static str },
    Skip(String),
}

impl Outcome {
    fn mark(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "FAIL",
            Outcome::XFail { .. } => "xfail",
            Outcome::XPass { .. } => "XPASS",
            Outcome::Skip(_) => "skip",
        }
    }
}

struct Row {
    label: String,
    outcomes: Vec<Outcome>,
}

fn expect(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

/// The common dialer arguments of a row.
fn dial_args(sub: &str, listener: &Peer, security: &str, muxer: &str) -> Vec<String> {
    [
        sub,
        "--addr",
        &listener.addr,
        "--security",
        security,
        "--muxer",
        muxer,
        "--only",
        "--timeout",
        RUN_TIMEOUT,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| (*s).to_owned()));
    args
}

struct Cell<'a> {
    programs: &'a Programs,
    dialer: Implementation,
    listener_impl: Implementation,
    security: &'a str,
    transport: Transport,
    muxer: &'a str,
    row: usize,
}

impl Cell<'_> {
    fn dialer(&self) -> Result<Command, String> {
        self.programs.command(self.dialer)
    }

    fn ping(&self, listener: &Peer) -> Result<(), String> {
        let args = with(
            dial_args("dial", listener, self.security, self.muxer),
            &["--ping", "3"],
        );
        let events = peers::run_to_end(self.dialer()?, &args)?;
        let pings = events
            .iter()
            .filter(|e| e["event"] == "ping" && e["rtt_ms"].as_f64().is_some())
            .count();
        expect(pings == 3, || format!("{pings} ping events instead of 3"))
    }

    fn echo(&self, listener: &Peer) -> Result<(), String> {
        let text = "interop echo: héllo";
        let args = with(
            dial_args("dial", listener, self.security, self.muxer),
            &["--echo", text],
        );
        let events = peers::run_to_end(self.dialer()?, &args)?;
        let ok = events
            .iter()
            .any(|e| e["event"] == "echo" && e["ok"] == true && e["bytes"] == text.len());
        expect(ok, || format!("no matching echo event in {events:?}"))
    }

    fn identify(&self, listener: &Peer) -> Result<(), String> {
        let args = with(
            dial_args("dial", listener, self.security, self.muxer),
            &["--identify"],
        );
        let events = peers::run_to_end(self.dialer()?, &args)?;
        let info = events
            .iter()
            .find(|e| e["event"] == "identify")
            .ok_or("no identify event")?;
        let agent = info["agent_version"].as_str().unwrap_or("");
        expect(agent.starts_with(self.listener_impl.agent_prefix()), || {
            format!("agent version {agent:?}")
        })?;
        let protocols: Vec<&str> = info["protocols"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for expected in [
            "/ipfs/id/1.0.0",
            "/ipfs/ping/1.0.0",
            "/echo/1.0.0",
            "/perf/1.0.0",
        ] {
            expect(protocols.contains(&expected), || {
                format!("{expected} missing from {protocols:?}")
            })?;
        }
        let protocol = self.transport.port_protocol();
        let port = listener
            .addr
            .split(&format!("/{protocol}/"))
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        let addrs: Vec<&str> = info["listen_addrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let wanted = format!("/{protocol}/{port}");
        expect(addrs.iter().any(|a| a.contains(&wanted)), || {
            format!("listen addrs {addrs:?} miss {wanted}")
        })
    }

    /// The dialer publishes once the listener is in its mesh and waits for one message; the
    /// runner sees the listener print the dialer's message and has the listener publish back.
    fn gossipsub(&self, listener: &mut Peer) -> Result<(), String> {
        let topic = row_topic(self.row);
        let outbound = format!("to the listener, row {}", self.row);
        let inbound = format!("to the dialer, row {}", self.row);
        let args = with(
            dial_args("dial", listener, self.security, self.muxer),
            &[
                "--topic",
                &topic,
                "--publish",
                &outbound,
                "--expect-messages",
                "1",
            ],
        );
        let child = self
            .dialer()?
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the dialer: {e}"))?;
        // Killed on every early return.
        struct Reap(Option<std::process::Child>);
        impl Drop for Reap {
            fn drop(&mut self) {
                if let Some(mut child) = self.0.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        let mut child = Reap(Some(child));
        listener
            .wait_for(|e| e["event"] == "message" && e["data"] == outbound.as_str())
            .map_err(|e| format!("the listener never received the dialer's message: {e}"))?;
        listener.send_line(&format!("publish {topic} {inbound}"))?;
        let output = child
            .0
            .take()
            .ok_or("no dialer")?
            .wait_with_output()
            .map_err(|e| e.to_string())?;
        let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        expect(output.status.success(), || {
            format!("dialer failed: {events:?}")
        })?;
        let got = events
            .iter()
            .any(|e| e["event"] == "message" && e["data"] == inbound.as_str());
        expect(got, || {
            format!("the dialer never printed the listener's message: {events:?}")
        })
    }

    fn perf(&self, listener: &Peer) -> Result<(), String> {
        let bytes = PERF_BYTES.to_string();
        let args = with(
            dial_args("perf", listener, self.security, self.muxer),
            &["--upload-bytes", &bytes, "--download-bytes", &bytes],
        );
        let events = peers::run_to_end(self.dialer()?, &args)?;
        let perf = events
            .iter()
            .find(|e| e["event"] == "perf")
            .ok_or("no perf event")?;
        expect(
            perf["upload_bytes"] == PERF_BYTES && perf["download_bytes"] == PERF_BYTES,
            || format!("{perf}"),
        )
    }
}

fn known_upstream(
    dialer: Implementation,
    listener: Implementation,
    muxer: &str,
    cell: &str,
) -> Option<&'static str> {
    KNOWN_UPSTREAM
        .iter()
        .find(|k| {
            k.dialer == dialer
                && k.listener == listener
                && k.muxer.is_none_or(|m| m == muxer)
                && k.cell == cell
        })
        .map(|k| k.reason)
}

fn judge(result: Result<(), String>, known: Option<&'static str>) -> Outcome {
    match (result, known) {
        (Ok(()), None) => Outcome::Pass,
        (Err(e), None) => Outcome::Fail(e),
        (Err(error), Some(reason)) => Outcome::XFail { reason, error },
        (Ok(()), Some(reason)) => Outcome::XPass { reason },
    }
}

fn row_label(group: &Group, muxer: &str) -> String {
    match group.transport {
        Transport::Tcp => format!(
            "{} dials {} ({}, {muxer}, {})",
            group.dialer.name(),
            group.listener.name(),
            group.security,
            group.ip.name()
        ),
        Transport::Quic => format!(
            "{} dials {} (quic-v1, {})",
            group.dialer.name(),
            group.listener.name(),
            group.ip.name()
        ),
    }
}

/// Starts the group's listener and runs its rows' cells in order.
fn run_group(programs: &Programs, group: &Group, first_row: usize) -> Vec<Row> {
    let skip = |why: String| {
        group
            .muxers
            .iter()
            .map(|muxer| Row {
                label: row_label(group, muxer),
                outcomes: CELLS.iter().map(|_| Outcome::Skip(why.clone())).collect(),
            })
            .collect::<Vec<_>>()
    };
    for which in [group.dialer, group.listener] {
        if !peers::selected(which) {
            return skip(format!("{} not in LP2P_INTEROP_PEERS", which.key()));
        }
    }
    if group.ip == Ip::V6
        && let Err(why) = peers::ipv6_loopback()
    {
        return skip(why);
    }
    let listener = programs.command(group.listener).and_then(|command| {
        let mut args: Vec<String> = [
            "listen",
            "--addr",
            group.ip.listen_addr(group.transport),
            "--security",
            group.security,
            "--muxer",
            "yamux",
            "--timeout",
            "900",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for row in first_row..first_row + group.muxers.len() {
            args.push("--topic".to_owned());
            args.push(row_topic(row));
        }
        Peer::listen(command, &args, None)
    });
    let mut listener = match listener {
        Ok(listener) => listener,
        Err(e) => {
            return group
                .muxers
                .iter()
                .map(|muxer| Row {
                    label: row_label(group, muxer),
                    outcomes: CELLS
                        .iter()
                        .map(|cell| {
                            judge(
                                Err(format!("listener: {e}")),
                                known_upstream(group.dialer, group.listener, muxer, cell),
                            )
                        })
                        .collect(),
                })
                .collect();
        }
    };
    group
        .muxers
        .iter()
        .enumerate()
        .map(|(i, muxer)| {
            let cell = Cell {
                programs,
                dialer: group.dialer,
                listener_impl: group.listener,
                security: group.security,
                transport: group.transport,
                muxer,
                row: first_row + i,
            };
            let results = [
                cell.ping(&listener),
                cell.echo(&listener),
                cell.identify(&listener),
                cell.gossipsub(&mut listener),
                cell.perf(&listener),
            ];
            Row {
                label: row_label(group, muxer),
                outcomes: results
                    .into_iter()
                    .zip(CELLS)
                    .map(|(result, name)| {
                        judge(
                            result,
                            known_upstream(group.dialer, group.listener, muxer, name),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn groups() -> Vec<Group> {
    let mut groups = Vec::new();
    for peer in [Implementation::Rust, Implementation::Js, Implementation::Py] {
        for (dialer, listener) in [(Implementation::Lp2p, peer), (peer, Implementation::Lp2p)] {
            for security in ["noise", "plaintext"] {
                groups.push(Group {
                    dialer,
                    listener,
                    security,
                    transport: Transport::Tcp,
                    ip: Ip::V4,
                    muxers: peer.muxers().to_vec(),
                });
            }
            groups.push(Group {
                dialer,
                listener,
                security: "noise",
                transport: Transport::Tcp,
                ip: Ip::V6,
                muxers: vec!["yamux"],
            });
            // TLS over TCP: rust-libp2p's libp2p-tls and js-libp2p's @libp2p/tls (the
            // py-libp2p program does not speak it). QUIC: rust-libp2p's libp2p-quic only.
            if peer != Implementation::Py {
                groups.push(Group {
                    dialer,
                    listener,
                    security: "tls",
                    transport: Transport::Tcp,
                    ip: Ip::V4,
                    muxers: vec!["yamux"],
                });
            }
            if peer == Implementation::Rust {
                groups.push(Group {
                    dialer,
                    listener,
                    security: "noise",
                    transport: Transport::Quic,
                    ip: Ip::V4,
                    muxers: vec!["yamux"],
                });
            }
        }
    }
    groups
}

/// A group's index in [`groups`] and the rows it produced.
type GroupRows = (usize, Vec<Row>);

#[test]
fn interop_matrix() {
    let interop_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let programs = Programs::new(
        lp2p_interop::lp2p_node_binary(false),
        PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        interop_dir,
    );
    let groups = groups();
    // Row numbers are fixed up front so gossipsub texts stay unique across workers.
    let mut first_rows = Vec::new();
    let mut next = 0;
    for group in &groups {
        first_rows.push(next);
        next += group.muxers.len();
    }
    // The groups still to run, and each finished group's rows by its index (scoped threads
    // borrow both, so no Arc).
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..groups.len()).collect());
    let results: Mutex<Vec<GroupRows>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            let (queue, results, groups, programs, first_rows) =
                (&queue, &results, &groups, &programs, &first_rows);
            scope.spawn(move || {
                loop {
                    let Some(index) = queue.lock().map(|mut q| q.pop_front()).ok().flatten() else {
                        return;
                    };
                    let rows = run_group(programs, &groups[index], first_rows[index]);
                    if let Ok(mut results) = results.lock() {
                        results.push((index, rows));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(index, _)| *index);
    let rows: Vec<Row> = results.into_iter().flat_map(|(_, rows)| rows).collect();

    let width = rows.iter().map(|row| row.label.len()).max().unwrap_or(0);
    println!(
        "\ninterop matrix: lp2p-node vs {}, {}, {}; TCP on 127.0.0.1 and [::1], QUIC on 127.0.0.1",
        Implementation::Rust.version(),
        Implementation::Js.version(),
        Implementation::Py.version()
    );
    println!("{:width$} | {}", "", CELLS.join(" | "));
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let (mut passed, mut xfailed, mut skipped) = (0, 0, 0);
    for row in &rows {
        let marks: Vec<String> = row
            .outcomes
            .iter()
            .zip(CELLS)
            .map(|(o, cell)| format!("{:^w$}", o.mark(), w = cell.len()))
            .collect();
        println!("{:width$} | {}", row.label, marks.join(" | "));
        for (outcome, cell) in row.outcomes.iter().zip(CELLS) {
            let at = format!("{}, {cell}", row.label);
            match outcome {
                Outcome::Pass => passed += 1,
                Outcome::Fail(e) => failures.push(format!("{at}: {e}")),
                Outcome::XPass { reason } => failures.push(format!(
                    "{at}: passed although listed as an upstream failure ({reason}): remove it from KNOWN_UPSTREAM"
                )),
                Outcome::XFail { reason, error } => {
                    xfailed += 1;
                    notes.push(format!("{at}: xfail, {reason} (saw: {error})"));
                }
                Outcome::Skip(why) => {
                    skipped += 1;
                    notes.push(format!("{}: skipped, {why}", row.label));
                }
            }
        }
    }
    notes.dedup();
    for note in &notes {
        println!("  {note}");
    }
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    println!(
        "matrix: {passed} passed, {} failed, {skipped} skipped ({xfailed} expected upstream failures)",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        rows.len() * CELLS.len(),
        failures.join("\n")
    );
}

/// The bookkeeping that keeps the upstream-failure list honest: a listed cell that fails is
/// an xfail, a listed cell that passes is a failure (XPASS), an unlisted failure is a
/// failure.
#[test]
fn expected_failures_turn_into_failures_when_they_pass() {
    let reason = "upstream does X";
    assert!(matches!(judge(Ok(()), None), Outcome::Pass));
    assert!(matches!(judge(Err("e".into()), None), Outcome::Fail(e) if e == "e"));
    assert!(matches!(
        judge(Err("e".into()), Some(reason)),
        Outcome::XFail { reason: r, error } if r == reason && error == "e"
    ));
    assert!(matches!(judge(Ok(()), Some(reason)), Outcome::XPass { reason: r } if r == reason));
    assert_eq!(judge(Ok(()), Some(reason)).mark(), "XPASS");
}
