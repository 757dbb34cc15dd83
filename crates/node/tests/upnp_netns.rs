//! `lp2p-node listen --upnp` behind a real miniupnpd (Debian package, nftables backend) in
//! network namespaces this test makes and removes, also when it fails:
//!
//! ```text
//!   client ns (the node)  <veth>  router ns (miniupnpd)  <veth>  wan ns
//!   192.168.77.2                  192.168.77.1 | 11.77.0.1       11.77.0.2
//! ```
//!
//! The node finds the gateway as it would at home: the default route (NAT-PMP, PCP) and SSDP
//! multicast (UPnP). Needs root, iproute2, nftables and miniupnpd (`.ci/run` installs them);
//! its own harness reports a test that cannot run as skipped, and `LP2P_REQUIRE_NETNS=1`
//! makes that a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lp2p_testkit::netns::{self, Netns};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_lp2p-node");
const MINIUPNPD: &str = "/usr/sbin/miniupnpd";
/// Generous for a slow, loaded machine (a mapping takes milliseconds, a failed round of
/// the three methods about 11 s).
const WAIT: Duration = Duration::from_secs(90);

enum Outcome {
    Passed,
    Skipped(String),
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The namespaces (removed when dropped, after miniupnpd is stopped) and a temp directory.
struct Router {
    daemon: Option<Guard>,
    netns: Netns,
    dir: PathBuf,
    gw_ns: String,
    client_ns: String,
}

impl Drop for Router {
    fn drop(&mut self) {
        drop(self.daemon.take());
        let _ = std::fs::remove_dir_all(&self.dir);
        // `netns` drops next: the namespaces go.
    }
}

const RULESET: &str = "table inet filter {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
}
";

impl Router {
    fn new(test: u8) -> Result<Router, String> {
        if !Path::new(MINIUPNPD).exists() {
            return Err(format!("{MINIUPNPD} not installed"));
        }
        netns::run("nft", &["--version"]).map_err(|e| format!("{e} (apt-get install nftables)"))?;
        let mut bed = Netns::new(&format!("nu{test}"))?;
        let dir = std::env::temp_dir().join(format!("lp2p-node-upnp-{}", bed.tag()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let gw_ns = bed.add("r")?;
        let client_ns = bed.add("c")?;
        let wan_ns = bed.add("w")?;
        let r = Router {
            daemon: None,
            netns: bed,
            dir,
            gw_ns,
            client_ns,
        };
        r.netns.link(
            &r.gw_ns,
            "lan",
            "192.168.77.1/24",
            &r.client_ns,
            "eth0",
            "192.168.77.2/24",
        )?;
        r.netns.link(
            &r.gw_ns,
            "wan",
            "11.77.0.1/24",
            &wan_ns,
            "eth0",
            "11.77.0.2/24",
        )?;
        r.netns.default_route(&r.client_ns, "192.168.77.1")?;
        r.netns.nft(&r.gw_ns, RULESET)?;
        let conf = "ext_ifname=wan\nlistening_ip=lan\nhttp_port=5555\nenable_natpmp=yes\nenable_upnp=yes\n\
             ipv6_disable=yes\nsecure_mode=yes\nsystem_uptime=no\n\
             uuid=3ee8b4a2-0000-4000-8000-000000000078\n\
             allow 1024-65535 192.168.77.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n";
        std::fs::write(r.dir.join("miniupnpd.conf"), conf).map_err(|e| e.to_string())?;
        Ok(r)
    }

    fn start_daemon(&mut self) {
        let child = self
            .netns
            .command(&self.gw_ns, MINIUPNPD)
            .args(["-d", "-f"])
            .arg(self.dir.join("miniupnpd.conf"))
            .arg("-P")
            .arg(self.dir.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.daemon = Some(Guard(child));
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self
                .netns
                .exec(&self.gw_ns, "ss", &["-ltn"])
                .is_ok_and(|s| s.contains(":5555"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("miniupnpd did not start");
    }

    fn has_rule(&self, port: u64) -> bool {
        self.netns
            .exec(
                &self.gw_ns,
                "nft",
                &["list", "chain", "inet", "filter", "prerouting_miniupnpd"],
            )
            .unwrap()
            .contains(&format!("dport {port} "))
    }
}

/// `lp2p-node listen --upnp` in `ns` on TCP and QUIC wildcard addresses; its JSON lines
/// arrive on the channel.
struct Node {
    guard: Guard,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
}

impl Node {
    fn start(ns: &str) -> Node {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, NODE, "listen", "--upnp"])
            .args([
                "--addr",
                "/ip4/0.0.0.0/tcp/0",
                "--addr",
                "/ip4/0.0.0.0/udp/0/quic-v1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
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
            guard: Guard(child),
            stdin,
            lines,
        }
    }

    fn wait_for(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pick(&v) => return v,
                Ok(v) => assert_ne!(v["event"], "error", "{v}"),
                Err(e) => panic!("no {what}: {e}"),
            }
        }
    }

    /// Closes stdin and waits for the node to stop (it removes its mappings first).
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.guard.0.try_wait().unwrap() {
                assert!(status.success(), "node exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not stop");
    }
}

fn listen_port(listening: &Value, proto: &str) -> u64 {
    listening["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .find_map(|a| {
            let parts: Vec<&str> = a.split('/').collect();
            (parts.get(3) == Some(&proto)).then(|| parts[4].parse().unwrap())
        })
        .unwrap()
}

/// Both listen ports mapped with PCP (the first method) on the router's address, and the
/// rules removed when the node stops.
fn listen_ports_are_mapped_and_removed() -> Outcome {
    let mut r = match Router::new(1) {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    r.start_daemon();
    let node = Node::start(&r.client_ns);
    let listening = node.wait_for("listening", |v| v["event"] == "listening");
    let mut ext_ports = Vec::new();
    for _ in 0..2 {
        let m = node.wait_for("port-mapping", |v| v["event"] == "port-mapping");
        assert_eq!(m["ok"], true, "{m}");
        assert_eq!(m["method"], "pcp", "{m}");
        assert_eq!(m["lifetime"], 7200, "{m}");
        let proto = m["protocol"].as_str().unwrap();
        assert_eq!(m["internal"], listen_port(&listening, proto), "{m}");
        let external = m["external"].as_str().unwrap();
        let want = if proto == "tcp" {
            "/ip4/11.77.0.1/tcp/"
        } else {
            "/ip4/11.77.0.1/udp/"
        };
        assert!(external.starts_with(want), "{m}");
        if proto == "udp" {
            assert!(external.ends_with("/quic-v1"), "{m}");
        }
        let port: u64 = external.split('/').nth(4).unwrap().parse().unwrap();
        assert!(r.has_rule(port), "no rule for {m}");
        ext_ports.push(port);
    }
    node.finish();
    for port in ext_ports {
        assert!(
            !r.has_rule(port),
            "rule for {port} left after the node stopped"
        );
    }
    Outcome::Passed
}

/// A router without a mapping service: one event per port with ok false and every
/// method's reason.
fn no_gateway_service_is_reported() -> Outcome {
    let r = match Router::new(2) {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    let node = Node::start(&r.client_ns);
    let m = node.wait_for("port-mapping", |v| v["event"] == "port-mapping");
    assert_eq!(m["ok"], false, "{m}");
    let reason = m["reason"].as_str().unwrap();
    for method in ["pcp: ", "nat-pmp: ", "upnp: "] {
        assert!(reason.contains(method), "{m}");
    }
    node.finish();
    Outcome::Passed
}

/// `--upnp` is for `listen` only (a `dial` node has no listen port): a usage error, one
/// `error` event, no namespace needed.
fn upnp_on_dial_is_a_usage_error() -> Outcome {
    let out = Command::new(NODE)
        .args(["dial", "--upnp", "--addr", "/ip4/127.0.0.1/tcp/1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "error", "{events:?}");
    let what = events[0].to_string();
    assert!(what.contains("--upnp does not apply to `dial`"), "{what}");
    Outcome::Passed
}

type Test = (&'static str, fn() -> Outcome);

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [Test; 3] = [
        (
            "upnp_on_dial_is_a_usage_error",
            upnp_on_dial_is_a_usage_error,
        ),
        (
            "listen_ports_are_mapped_and_removed",
            listen_ports_are_mapped_and_removed,
        ),
        (
            "no_gateway_service_is_reported",
            no_gateway_service_is_reported,
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
                    "test {name} ... FAILED (cannot set up the router: {why}; LP2P_REQUIRE_NETNS is set)"
                );
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                println!("test {name} ... SKIPPED (cannot set up the router: {why})");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("upnp_netns: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
