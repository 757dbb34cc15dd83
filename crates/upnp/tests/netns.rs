//! Port mappings against a real miniupnpd (the Debian package, nftables backend) acting as
//! the router, in network namespaces this test makes and removes again, also when it fails:
//!
//! ```text
//!   client ns  <veth>  router ns (miniupnpd)  <veth>  wan ns
//!   192.168.77.2       192.168.77.1 | 11.77.0.1       11.77.0.2
//! ```
//!
//! The router forwards and runs miniupnpd with NAT-PMP/PCP and UPnP on its LAN side; the
//! "external" address 11.77.0.1 only exists inside these namespaces (miniupnpd refuses
//! private external addresses, so it is not one of them). Each node runs in a child process
//! (`ip netns exec NS <this test binary>` with `LP2P_UPNP_CHILD=...`), printing JSON lines.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and `/usr/sbin/miniupnpd`; `.ci/run`
//! installs them. Its own harness (`harness = false`) reports a test that cannot run as
//! skipped (`netns: N passed, N failed, N skipped`); with `LP2P_REQUIRE_NETNS=1` (CI) a skip
//! is a failure. Arguments that are not flags filter the tests by name.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lp2p_core::RuntimeHandle;
use lp2p_host::Host;
use lp2p_noise::Noise;
use lp2p_tcp::TcpTransport;
use lp2p_testkit::netns::{self, Netns};
use lp2p_upnp::{
    Action, GatewayClient, MappingConfig, Method, PortMapper, PortMapperConfig, PortMappingEvent,
    Protocol,
};
use lp2p_yamux::Yamux;
use serde_json::{Value, json};

/// How long the parent waits for one expected line: generous for a slow, loaded machine
/// (a mapping takes milliseconds; a failed round a few seconds).
const WAIT: Duration = Duration::from_secs(90);
const MINIUPNPD: &str = "/usr/sbin/miniupnpd";
const ROUTER_LAN: &str = "192.168.77.1";
const EXTERNAL: &str = "11.77.0.1";
/// Lifetime the nodes ask for: above miniupnpd's PCP minimum (120 s) so it is granted as is.
const LIFETIME: u64 = 600;

// ---------------------------------------------------------------------------------------
// Namespaces, the router, skipping.

enum Outcome {
    Passed,
    Skipped(String),
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    netns::run(cmd, args)
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The three namespaces (lp2p-testkit's [`Netns`]: removed with their veths when dropped,
/// also on panic) and, once started, miniupnpd in the router one. Field order is drop order:
/// miniupnpd stops before its namespace goes.
struct Router {
    daemon: Option<Child>,
    ns: Netns,
    dir: TempDir,
    gw_ns: String,
    client: String,
    wan: String,
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// The nftables skeleton miniupnpd's nftables backend adds its rules to (its defaults:
/// table `inet filter`, chains `miniupnpd`, `prerouting_miniupnpd`, `postrouting_miniupnpd`).
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
    /// Namespaces, links, addresses and routes; miniupnpd not started yet.
    fn new(test: u8, extra_conf: &str) -> Result<Router, String> {
        if !Path::new(MINIUPNPD).exists() {
            return Err(format!(
                "{MINIUPNPD} not installed (apt-get install miniupnpd)"
            ));
        }
        run("nft", &["--version"]).map_err(|e| format!("{e} (apt-get install nftables)"))?;
        let mut ns = Netns::new(&format!("up{test}"))?;
        let dir = std::env::temp_dir().join(format!("lp2p-upnp-{}", ns.tag()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let dir = TempDir(dir);
        let gw_ns = ns.add("r")?;
        let client = ns.add("c")?;
        let wan = ns.add("w")?;
        let r = Router {
            daemon: None,
            ns,
            dir,
            gw_ns,
            client,
            wan,
        };
        r.ns.link(
            &r.gw_ns,
            "lan",
            "192.168.77.1/24",
            &r.client,
            "eth0",
            "192.168.77.2/24",
        )?;
        r.ns.link(
            &r.gw_ns,
            "wan",
            "11.77.0.1/24",
            &r.wan,
            "eth0",
            "11.77.0.2/24",
        )?;
        r.ns.default_route(&r.client, ROUTER_LAN)?;
        r.ns.forwarding(&r.gw_ns)?;
        r.ns.nft(&r.gw_ns, RULESET)?;
        let conf = format!(
            "ext_ifname=wan\nlistening_ip=lan\nhttp_port=5555\nenable_natpmp=yes\nenable_upnp=yes\n\
             ipv6_disable=yes\nsecure_mode=yes\nsystem_uptime=no\n\
             uuid=3ee8b4a2-0000-4000-8000-000000000077\n\
             {extra_conf}allow 1024-65535 192.168.77.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
        );
        std::fs::write(r.dir.0.join("miniupnpd.conf"), conf).map_err(|e| e.to_string())?;
        Ok(r)
    }

    /// Starts miniupnpd in the foreground (`-d`) and waits until it answers NAT-PMP.
    fn start_daemon(&mut self) {
        let conf = self.dir.0.join("miniupnpd.conf");
        let pid = self.dir.0.join("miniupnpd.pid");
        let verbose = std::env::var_os("LP2P_UPNP_VERBOSE").is_some();
        let daemon = self
            .ns
            .command(&self.gw_ns, MINIUPNPD)
            .args(["-d", "-f"])
            .arg(&conf)
            .arg("-P")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        self.daemon = Some(daemon);
        // Ready once its HTTP port accepts (NAT-PMP/PCP open before it).
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let probe = run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.gw_ns,
                    "nft",
                    "list",
                    "table",
                    "inet",
                    "filter",
                ],
            );
            let listening = run("ip", &["netns", "exec", &self.gw_ns, "ss", "-ltn"])
                .is_ok_and(|s| s.contains(":5555"));
            if probe.is_ok() && listening {
                return;
            }
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("miniupnpd exited at start with {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("miniupnpd did not start listening");
    }

    /// The DNAT rules miniupnpd installed, as text.
    fn nat_rules(&self) -> String {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.gw_ns,
                "nft",
                "list",
                "chain",
                "inet",
                "filter",
                "prerouting_miniupnpd",
            ],
        )
        .unwrap()
    }

    fn has_rule(&self, proto: &str, port: u16) -> bool {
        let rules = self.nat_rules();
        let number = if proto == "tcp" { "0x6" } else { "0x11" };
        rules.lines().any(|l| {
            l.contains(&format!("dport {port} ")) && l.contains(&format!("@nh,72,8 {number}"))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Child processes.

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
            .env("LP2P_UPNP_CHILD", role)
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
                if std::env::var_os("LP2P_UPNP_VERBOSE").is_some() {
                    eprintln!("[{label}] {line}");
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
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

    fn wait_for(&self, what: &str, mut pick: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pick(&v) => return v,
                Ok(v) => assert_ne!(v["event"], "error", "{}: {v}", self.name),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{}: no {what} within {WAIT:?}", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("{}: exited before printing {what}", self.name)
                }
            }
        }
    }

    /// Closes stdin (the child stops and removes its mappings), returns the lines it
    /// printed until it exited successfully.
    fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                // Everything it printed, up to the end of its stdout.
                let mut rest = Vec::new();
                loop {
                    match self.lines.recv_timeout(WAIT) {
                        Ok(v) => rest.push(v),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return rest,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            panic!("{}: stdout still open after exit", self.name)
                        }
                    }
                }
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

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn child_config() -> PortMapperConfig {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let methods: Vec<Method> = env("LP2P_UPNP_METHODS")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let lifetime = env("LP2P_UPNP_LIFETIME").parse().unwrap_or(LIFETIME);
    PortMapperConfig {
        mapping: MappingConfig {
            methods,
            lifetime: Duration::from_secs(lifetime),
            ..MappingConfig::default()
        },
        gateway: Some(ROUTER_LAN.parse().unwrap()),
        // Unicast to the router, or (LP2P_UPNP_SSDP=multicast) the default: the SSDP group,
        // sent out of the client's default route as at home.
        ssdp_target: if env("LP2P_UPNP_SSDP") == "multicast" {
            PortMapperConfig::default().ssdp_target
        } else {
            format!("{ROUTER_LAN}:1900").parse().unwrap()
        },
        ..PortMapperConfig::default()
    }
}

fn event_json(ev: &PortMappingEvent) -> Value {
    match ev {
        PortMappingEvent::Mapped {
            protocol,
            internal_port,
            method,
            external,
            lifetime,
        } => json!({"event": "mapped", "protocol": protocol.to_string(), "internal": internal_port,
            "method": method.to_string(), "external": external.to_string(), "lifetime": lifetime.as_secs()}),
        PortMappingEvent::Renewed {
            method,
            external,
            lifetime,
            ..
        } => json!({"event": "renewed", "method": method.to_string(),
            "external": external.to_string(), "lifetime": lifetime.as_secs()}),
        PortMappingEvent::Failed { reasons, .. } => json!({"event": "failed", "reasons": reasons}),
        PortMappingEvent::Removed {
            method,
            external,
            error,
            ..
        } => {
            json!({"event": "removed", "method": method.to_string(), "external": external.to_string(),
            "error": error})
        }
        other => json!({"event": "other", "what": format!("{other:?}")}),
    }
}

/// A host listening on TCP 0.0.0.0 with a [`PortMapper`]. Prints `listening`, then each
/// port-mapping event; on stdin EOF stops the mapper (removing the mappings), prints what
/// that produced and closes the host.
fn child_node() {
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
            .transport(TcpTransport::default())
            .security(Noise::new())
            .muxer(Yamux::default())
            .listen_on("/ip4/0.0.0.0/tcp/0".parse().unwrap())
            .build()
            .await
            .unwrap();
        let mapper = PortMapper::new(&host, child_config()).unwrap();
        let mut events = mapper.events();
        emit(
            &json!({"event": "listening", "addrs": host.listen_addrs().iter().map(ToString::to_string).collect::<Vec<_>>()}),
        );
        loop {
            futures::select! {
                ev = events.next().fuse() => match ev {
                    Some(ev) => emit(&event_json(&ev)),
                    None => break,
                },
                line = stdin_rx.next().fuse() => if line.is_none() { break },
            }
        }
        mapper.stop().await;
        while let Some(Some(ev)) = events.next().now_or_never() {
            emit(&event_json(&ev));
        }
        emit(&json!({"event": "mappings-after-stop", "count": mapper.mappings().len()}));
        host.close().await;
    });
}

/// Maps UDP port `LP2P_UPNP_PORT` with `LP2P_UPNP_METHODS`'s one method through a
/// [`GatewayClient`], prints the answer, and at stdin EOF removes it and prints that.
fn child_client() {
    let port: u16 = std::env::var("LP2P_UPNP_PORT").unwrap().parse().unwrap();
    let config = child_config();
    let method = config.mapping.methods[0];
    lp2p_core::runtime::block_on(async move {
        let mut client = GatewayClient::new(RuntimeHandle::default(), config);
        let map = Action::Map {
            method,
            lifetime: u32::try_from(LIFETIME).unwrap(),
            external_port: port,
            renewal: false,
        };
        match client.execute(Protocol::Udp, port, map).await {
            Ok(g) => emit(&json!({
                "event": "mapped",
                "external": g.external.to_string(),
                "lifetime": g.lifetime.as_secs(),
                "service": client.upnp_service().map(|(t, _)| t),
            })),
            Err(e) => emit(&json!({"event": "error", "what": e.to_string()})),
        }
        // Held until the parent closes our stdin (it checks the router's rules meanwhile).
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
        let unmap = Action::Unmap {
            method,
            external_port: port,
        };
        match client.execute(Protocol::Udp, port, unmap).await {
            Ok(g) => emit(&json!({"event": "removed", "lifetime": g.lifetime.as_secs()})),
            Err(e) => emit(&json!({"event": "error", "what": e.to_string()})),
        }
    });
}

/// Opens a TCP connection to `LP2P_UPNP_DIAL` and prints whether it connected.
fn child_dial() {
    let addr: SocketAddr = std::env::var("LP2P_UPNP_DIAL").unwrap().parse().unwrap();
    let ok = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).is_ok();
    emit(&json!({"event": "dialed", "ok": ok}));
}

fn port_of(external: &str) -> u16 {
    external.rsplit('/').next().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// The tests.

/// A host's TCP listen port mapped with each method in turn: the external address is the
/// router's, miniupnpd installed the DNAT rule, a connection from the WAN side reaches the
/// host through it, and the rule is gone after the host stops.
fn host_tcp_port_with_each_method() -> Outcome {
    let mut r = match Router::new(1, "") {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    r.start_daemon();
    for method in ["pcp", "nat-pmp", "upnp"] {
        let node = Proc::start(
            &format!("node ({method})"),
            &r.client,
            "node",
            &[("LP2P_UPNP_METHODS", method.to_owned())],
        );
        let listening = node.wait_for("listening", |v| v["event"] == "listening");
        let listen_port = port_of(listening["addrs"][0].as_str().unwrap());
        let mapped = node.wait_for("mapped", |v| v["event"] == "mapped");
        assert_eq!(mapped["method"], method, "{mapped}");
        assert_eq!(mapped["protocol"], "tcp", "{mapped}");
        assert_eq!(mapped["internal"], listen_port, "{mapped}");
        assert_eq!(mapped["lifetime"], LIFETIME, "{mapped}");
        let external = mapped["external"].as_str().unwrap().to_owned();
        assert!(
            external.starts_with(&format!("/ip4/{EXTERNAL}/tcp/")),
            "{mapped}"
        );
        let ext_port = port_of(&external);
        assert!(
            r.has_rule("tcp", ext_port),
            "{method}: no rule for {ext_port}:\n{}",
            r.nat_rules()
        );

        let dial = Proc::start(
            "dialer",
            &r.wan,
            "dial",
            &[("LP2P_UPNP_DIAL", format!("{EXTERNAL}:{ext_port}"))],
        );
        let dialed = dial.wait_for("dialed", |v| v["event"] == "dialed");
        assert_eq!(
            dialed["ok"], true,
            "{method}: WAN side could not connect through the mapping"
        );
        dial.finish();

        let rest = node.finish();
        let removed = rest
            .iter()
            .find(|v| v["event"] == "removed")
            .unwrap_or_else(|| panic!("{method}: no removal in {rest:?}"));
        assert_eq!(removed["external"], external.as_str(), "{removed}");
        assert_eq!(removed["error"], Value::Null, "{removed}");
        assert!(
            rest.iter()
                .any(|v| v["event"] == "mappings-after-stop" && v["count"] == 0)
        );
        assert!(
            !r.has_rule("tcp", ext_port),
            "{method}: rule left:\n{}",
            r.nat_rules()
        );
    }
    Outcome::Passed
}

/// UDP mappings through the [`GatewayClient`] with each method: granted on the port asked
/// for, with the lifetime asked for, and removed.
fn udp_port_with_each_method() -> Outcome {
    let mut r = match Router::new(2, "") {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    r.start_daemon();
    for (i, method) in ["pcp", "nat-pmp", "upnp"].into_iter().enumerate() {
        let port = 40_001 + u16::try_from(i).unwrap();
        let c = Proc::start(
            &format!("client ({method})"),
            &r.client,
            "client",
            &[
                ("LP2P_UPNP_METHODS", method.to_owned()),
                ("LP2P_UPNP_PORT", port.to_string()),
            ],
        );
        let mapped = c.wait_for("mapped", |v| v["event"] == "mapped");
        if method == "upnp" {
            // miniupnpd is an IGDv2: AddAnyPortMapping on WANIPConnection:2.
            assert_eq!(
                mapped["service"], "urn:schemas-upnp-org:service:WANIPConnection:2",
                "{mapped}"
            );
        }
        assert_eq!(
            mapped["external"],
            format!("{EXTERNAL}:{port}"),
            "{method}: {mapped}"
        );
        assert_eq!(mapped["lifetime"], LIFETIME, "{method}: {mapped}");
        assert!(
            r.has_rule("udp", port),
            "{method}: no rule:\n{}",
            r.nat_rules()
        );
        let rest = c.finish();
        let removed = rest
            .iter()
            .find(|v| v["event"] == "removed")
            .unwrap_or_else(|| panic!("{method}: no removal in {rest:?}"));
        assert_eq!(removed["lifetime"], 0, "{removed}");
        assert!(
            !r.has_rule("udp", port),
            "{method}: rule left:\n{}",
            r.nat_rules()
        );
    }
    Outcome::Passed
}

/// Short leases (6 s; miniupnpd told to allow them) are renewed by each method before they lapse,
/// on the same external address, and removed at the end.
fn short_leases_are_renewed() -> Outcome {
    let mut r = match Router::new(5, "min_lifetime=2\n") {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    r.start_daemon();
    for method in ["pcp", "nat-pmp", "upnp"] {
        let node = Proc::start(
            &format!("node ({method}, 6 s leases)"),
            &r.client,
            "node",
            &[
                ("LP2P_UPNP_METHODS", method.to_owned()),
                ("LP2P_UPNP_LIFETIME", "6".to_owned()),
            ],
        );
        let mapped = node.wait_for("mapped", |v| v["event"] == "mapped");
        assert_eq!(mapped["lifetime"], 6, "{mapped}");
        for _ in 0..2 {
            let renewed = node.wait_for("renewed", |v| v["event"] == "renewed");
            assert_eq!(renewed["method"], method, "{renewed}");
            assert_eq!(renewed["external"], mapped["external"], "{renewed}");
            assert_eq!(renewed["lifetime"], 6, "{renewed}");
        }
        let port = port_of(mapped["external"].as_str().unwrap());
        // (No assertion that nothing lapsed in between: on a loaded machine a renewal may
        // come late; the machine then maps again, and the renewals above still arrive.)
        let rest = node.finish();
        assert!(rest.iter().any(|v| v["event"] == "removed"), "{rest:?}");
        assert!(
            !r.has_rule("tcp", port),
            "{method}: rule left:\n{}",
            r.nat_rules()
        );
    }
    Outcome::Passed
}

/// An IGDv1 router (miniupnpd with `force_igd_desc_v1`), found by SSDP multicast:
/// WANIPConnection:1 and plain AddPortMapping.
fn upnp_on_an_igd_v1_router() -> Outcome {
    let mut r = match Router::new(4, "force_igd_desc_v1=yes\n") {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    r.start_daemon();
    let c = Proc::start(
        "client (upnp v1)",
        &r.client,
        "client",
        &[
            ("LP2P_UPNP_METHODS", "upnp".to_owned()),
            ("LP2P_UPNP_PORT", "40011".to_owned()),
            ("LP2P_UPNP_SSDP", "multicast".to_owned()),
        ],
    );
    let mapped = c.wait_for("mapped", |v| v["event"] == "mapped");
    assert_eq!(mapped["external"], format!("{EXTERNAL}:40011"), "{mapped}");
    assert_eq!(mapped["lifetime"], LIFETIME, "{mapped}");
    assert_eq!(
        mapped["service"], "urn:schemas-upnp-org:service:WANIPConnection:1",
        "{mapped}"
    );
    assert!(r.has_rule("udp", 40011), "{}", r.nat_rules());
    let rest = c.finish();
    assert!(rest.iter().any(|v| v["event"] == "removed"), "{rest:?}");
    assert!(!r.has_rule("udp", 40011), "{}", r.nat_rules());
    Outcome::Passed
}

/// No miniupnpd on the router: every method fails, and the event gives each one's reason.
fn every_method_failing_is_reported() -> Outcome {
    let r = match Router::new(3, "") {
        Ok(r) => r,
        Err(why) => return Outcome::Skipped(why),
    };
    let node = Proc::start(
        "node",
        &r.client,
        "node",
        &[("LP2P_UPNP_METHODS", "pcp,nat-pmp,upnp".to_owned())],
    );
    let failed = node.wait_for("failed", |v| v["event"] == "failed");
    let reasons: Vec<&str> = failed["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{failed}");
    assert!(reasons[0].starts_with("pcp: "), "{failed}");
    assert!(reasons[1].starts_with("nat-pmp: "), "{failed}");
    assert!(reasons[2].starts_with("upnp: "), "{failed}");
    let rest = node.finish();
    assert!(!rest.iter().any(|v| v["event"] == "removed"), "{rest:?}");
    Outcome::Passed
}

// ---------------------------------------------------------------------------------------
// The harness.

type Test = (&'static str, fn() -> Outcome);

fn main() {
    match std::env::var("LP2P_UPNP_CHILD").as_deref() {
        Ok("node") => return child_node(),
        Ok("client") => return child_client(),
        Ok("dial") => return child_dial(),
        _ => {}
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [Test; 5] = [
        (
            "host_tcp_port_with_each_method",
            host_tcp_port_with_each_method,
        ),
        ("udp_port_with_each_method", udp_port_with_each_method),
        ("upnp_on_an_igd_v1_router", upnp_on_an_igd_v1_router),
        ("short_leases_are_renewed", short_leases_are_renewed),
        (
            "every_method_failing_is_reported",
            every_method_failing_is_reported,
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
    println!("netns: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
