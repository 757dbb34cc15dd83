//! The command-line peers the multi-process tests drive: `lp2p-node` and one program per
//! other implementation that follows the same contract (NODE-CLI.md):
//! `rust-libp2p-node` (this package, rust-libp2p 0.57), `js-libp2p-node` (`interop/js`,
//! js-libp2p 3.3.11 from npm) and `py-libp2p-node` (`interop/py`, py-libp2p 0.8.1 from PyPI).
//! The js and py programs need their dependencies installed first by `interop/js/setup.sh`
//! and `interop/py/setup.sh` (CI runs both before the interop step).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long a runner waits for an expected line from a long-running peer. Generous: py-libp2p
/// alone takes seconds to import on a loaded machine.
pub const LINE_WAIT: Duration = Duration::from_secs(90);

/// An implementation of libp2p the tests run as a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// `lp2p-node`.
    Lp2p,
    /// `rust-libp2p-node` (rust-libp2p 0.57).
    Rust,
    /// `js-libp2p-node` (js-libp2p 3.3.11).
    Js,
    /// `py-libp2p-node` (py-libp2p 0.8.1).
    Py,
}

impl Implementation {
    /// The name the tables print.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p",
            Implementation::Rust => "rust-libp2p",
            Implementation::Js => "js-libp2p",
            Implementation::Py => "py-libp2p",
        }
    }

    /// The short name `LP2P_INTEROP_PEERS` uses.
    pub fn key(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p",
            Implementation::Rust => "rust",
            Implementation::Js => "js",
            Implementation::Py => "py",
        }
    }

    /// How its agent version in identify starts.
    pub fn agent_prefix(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p/",
            Implementation::Rust => "rust-libp2p/",
            Implementation::Js => "js-libp2p/",
            Implementation::Py => "py-libp2p/",
        }
    }

    /// The stream muxers its program supports (rust-libp2p 0.57 dropped mplex).
    pub fn muxers(self) -> &'static [&'static str] {
        match self {
            Implementation::Rust => &["yamux"],
            _ => &["yamux", "mplex"],
        }
    }

    /// The exact version under test, for the tables.
    pub fn version(self) -> &'static str {
        match self {
            Implementation::Lp2p => "lp2p (this tree)",
            Implementation::Rust => "rust-libp2p 0.57.1",
            Implementation::Js => "js-libp2p 3.3.11",
            Implementation::Py => "py-libp2p 0.8.1",
        }
    }
}

/// Whether `LP2P_INTEROP_PEERS` (a comma-separated list of rust, js, py; default all) selects
/// `which`. lp2p itself is always selected.
pub fn selected(which: Implementation) -> bool {
    match std::env::var("LP2P_INTEROP_PEERS") {
        Err(_) => true,
        Ok(list) => {
            which == Implementation::Lp2p || list.split(',').any(|k| k.trim() == which.key())
        }
    }
}

/// How to start each implementation's program.
#[derive(Clone, Debug)]
pub struct Programs {
    lp2p: PathBuf,
    rust: PathBuf,
    root: PathBuf,
}

impl Programs {
    /// The programs: `lp2p` and `rust` binaries as given, js and py from `interop/js` and
    /// `interop/py` under `interop_dir`.
    pub fn new(lp2p: PathBuf, rust: PathBuf, interop_dir: &Path) -> Programs {
        Programs {
            lp2p,
            rust,
            root: interop_dir.to_path_buf(),
        }
    }

    /// A command that runs `which`'s program (arguments still to add), or why it cannot run.
    pub fn command(&self, which: Implementation) -> Result<Command, String> {
        match which {
            Implementation::Lp2p => Ok(Command::new(&self.lp2p)),
            Implementation::Rust => Ok(Command::new(&self.rust)),
            Implementation::Js => {
                let dir = self.root.join("js");
                if !dir.join("node_modules/libp2p/package.json").exists() {
                    return Err(format!(
                        "js-libp2p is not installed: run {}",
                        dir.join("setup.sh").display()
                    ));
                }
                let mut command = Command::new("node");
                command.arg(dir.join("bin/js-libp2p-node.js"));
                Ok(command)
            }
            Implementation::Py => {
                let dir = self.root.join("py");
                if !dir.join(".venv/bin/python").exists() {
                    return Err(format!(
                        "py-libp2p is not installed: run {}",
                        dir.join("setup.sh").display()
                    ));
                }
                Ok(Command::new(dir.join("py-libp2p-node")))
            }
        }
    }
}

/// A running long-lived peer (usually `listen`), killed when dropped. Its stdout events are
/// read on a thread and handed over through a channel.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Value>,
    /// The first address from its `listening` event (empty before [`Peer::wait_listening`]).
    pub addr: String,
    /// Its peer id from the `listening` event.
    pub peer_id: String,
    /// Every address from its `listening` event.
    pub addrs: Vec<String>,
}

impl Peer {
    /// Starts `command` with `args` (stdin piped, stdout read as JSON lines, stderr to `log`
    /// when given, otherwise discarded).
    pub fn spawn(
        mut command: Command,
        args: &[String],
        log: Option<&Path>,
    ) -> Result<Peer, String> {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
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
        Ok(Peer {
            child,
            stdin,
            events,
            addr: String::new(),
            peer_id: String::new(),
            addrs: Vec::new(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts a `listen` peer and waits for its `listening` event.
    pub fn listen(command: Command, args: &[String], log: Option<&Path>) -> Result<Peer, String> {
        let mut peer = Peer::spawn(command, args, log)?;
        peer.wait_listening()?;
        Ok(peer)
    }

    /// Waits for the `listening` event and records its addresses.
    pub fn wait_listening(&mut self) -> Result<(), String> {
        let listening = self.wait_for(|e| e["event"] == "listening")?;
        self.addrs = listening["addrs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        self.addr = self
            .addrs
            .first()
            .cloned()
            .ok_or("no address in the listening event")?;
        self.peer_id = listening["peer_id"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }

    /// The next event `matches` accepts, skipping others; an `error` event or
    /// [`LINE_WAIT`] without a match is an error.
    pub fn wait_for(&mut self, mut matches: impl FnMut(&Value) -> bool) -> Result<Value, String> {
        loop {
            match self.events.recv_timeout(LINE_WAIT) {
                Ok(event) if event["event"] == "error" => {
                    return Err(format!("the peer failed: {event}"));
                }
                Ok(event) if matches(&event) => return Ok(event),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "the peer printed nothing expected within {LINE_WAIT:?}"
                    ));
                }
            }
        }
    }

    /// Every event printed so far, without waiting.
    pub fn drain(&mut self) -> Vec<Value> {
        self.events.try_iter().collect()
    }

    /// Every event until `wait` has passed with nothing new.
    pub fn drain_quiet(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.recv_timeout(wait) {
            out.push(event);
        }
        out
    }

    /// Writes one line to its stdin.
    pub fn send_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the peer: {e}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a short-lived command (dial, perf) to completion: its events, or an error with the
/// `error` event's text or its exit status and last line of stderr.
pub fn run_to_end(mut command: Command, args: &[String]) -> Result<Vec<Value>, String> {
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    if let Some(error) = events.iter().find(|e| e["event"] == "error") {
        return Err(error["what"].as_str().unwrap_or("error").to_owned());
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "exit {:?}: {}",
            output.status.code(),
            stderr.lines().last().unwrap_or("")
        ));
    }
    Ok(events)
}

/// Whether this machine can bind TCP on the IPv6 loopback `[::1]`; the error when not.
pub fn ipv6_loopback() -> Result<(), String> {
    std::net::TcpListener::bind("[::1]:0")
        .map(drop)
        .map_err(|e| format!("no IPv6 loopback on this machine ({e})"))
}
