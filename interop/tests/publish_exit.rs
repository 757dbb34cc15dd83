//! No message lost when a node publishes and exits at once: `lp2p-node dial --topic T
//! --publish TEXT` against a `listen --topic T` peer of another implementation, as separate
//! processes over TCP on 127.0.0.1 (noise, yamux). Each dialer connects, waits for the
//! listener in its mesh, publishes, and exits as soon as `dial` is done; the listener must
//! print every message.
//!
//! - rust-libp2p 0.57 (gossipsub): 100 runs, a few dialers at a time (issue 17's acceptance).
//! - py-libp2p 0.8.1: [`OTHER_RUNS`] runs (py-libp2p never closes its end of an inbound
//!   pubsub stream, so each dialer waits out the host's 5 s close grace; CI time is shared);
//!   left out, visibly, when `LP2P_INTEROP_PEERS` does not select it. Selected but not
//!   installed is a failure, as in the matrix (`interop/py/setup.sh` installs it).
//! - js-libp2p 3.3.11 is not in this test yet: it also never closes its end (every dialer
//!   waits out the grace), and after about a dozen dialers in a row some messages are not
//!   printed by the js listener even though the stream was written and stayed open for the
//!   whole grace (seen 2 of 16 sequential runs, 8 of 20 at four at a time); the cause is not
//!   found yet, so the js runs would fail without telling lp2p's part from js-libp2p's.
//!
//! Before `Host::close` flushed what services queued, most runs lost the message: the host
//! closed the connection before the pubsub stream was written.
//!
//! The lp2p-node binary is taken from `$LP2P_NODE` when set (CI passes the one its test step
//! built); otherwise this test builds it with cargo from the parent workspace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use lp2p_interop::peers::{self, Implementation, Peer, Programs};

/// Publish-and-exit runs against rust-libp2p.
const RUST_RUNS: usize = 100;
/// Publish-and-exit runs against py-libp2p.
const OTHER_RUNS: usize = 20;
/// Dialer processes running at once.
const AT_ONCE: usize = 4;
/// Each dial's own hard stop (`--timeout`), generous for a slow, loaded machine.
const DIAL_TIMEOUT: &str = "90";
const TOPIC: &str = "publish-and-exit";

fn text_of(imp: Implementation, run: usize) -> String {
    format!("last words {} {run}", imp.key())
}

/// Starts one `lp2p-node dial ... --publish` run.
fn dial(lp2p: &Path, addr: &str, text: &str) -> Child {
    Command::new(lp2p)
        .args(["dial", "--addr", addr, "--topic", TOPIC])
        .args(["--publish", text, "--timeout", DIAL_TIMEOUT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lp2p-node")
}

/// `runs` publish-and-exit dials against one `imp` listener; what went wrong, if anything.
fn against(
    programs: &Programs,
    lp2p: &Path,
    imp: Implementation,
    runs: usize,
) -> Result<(), String> {
    let command = programs.command(imp)?;
    let args: Vec<String> = [
        "listen",
        "--addr",
        "/ip4/127.0.0.1/tcp/0",
        "--topic",
        TOPIC,
        "--timeout",
        "900",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut listener = Peer::listen(command, &args, None).map_err(|e| format!("listener: {e}"))?;

    let started = Instant::now();
    let mut failures = Vec::new();
    let all: Vec<usize> = (0..runs).collect();
    for wave in all.chunks(AT_ONCE) {
        let children: Vec<(usize, Child)> = wave
            .iter()
            .map(|&run| (run, dial(lp2p, &listener.addr, &text_of(imp, run))))
            .collect();
        for (run, child) in children {
            let output = child.wait_with_output().expect("wait for lp2p-node");
            if !output.status.success() {
                failures.push(format!(
                    "run {run}: lp2p-node exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    let dialing = started.elapsed();
    if !failures.is_empty() {
        return Err(format!("dial runs failed:\n{}", failures.join("\n")));
    }

    // Every dialer has exited; every message must now arrive at the listener.
    let mut missing: BTreeSet<String> = (0..runs).map(|run| text_of(imp, run)).collect();
    while !missing.is_empty() {
        let event = match listener.wait_for(|e| e["event"] == "message" && e["topic"] == TOPIC) {
            Ok(event) => event,
            Err(e) => {
                return Err(format!(
                    "{} of {runs} messages never reached {} ({e}): {missing:?}",
                    missing.len(),
                    imp.name()
                ));
            }
        };
        if let Some(data) = event["data"].as_str() {
            missing.remove(data);
        }
    }
    println!(
        "publish-and-exit against {}: {runs} of {runs} messages arrived ({AT_ONCE} dialers at a time, {:.1} s)",
        imp.version(),
        dialing.as_secs_f64()
    );
    Ok(())
}

#[test]
fn every_message_published_right_before_exit_arrives() {
    lp2p_interop::init_tracing();
    let lp2p: PathBuf = lp2p_interop::lp2p_node_binary(false);
    let programs = Programs::new(
        lp2p.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_rust-libp2p-node")),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    let mut errors = Vec::new();
    for (imp, runs) in [
        (Implementation::Rust, RUST_RUNS),
        (Implementation::Py, OTHER_RUNS),
    ] {
        if !peers::selected(imp) {
            println!(
                "publish-and-exit against {}: skipped ({} not in LP2P_INTEROP_PEERS)",
                imp.name(),
                imp.key()
            );
            continue;
        }
        if let Err(e) = against(&programs, &lp2p, imp, runs) {
            errors.push(format!("against {}: {e}", imp.name()));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
