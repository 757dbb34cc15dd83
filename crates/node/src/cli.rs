//! The command line: subcommands and options of docs/node-cli.md, parsed by hand so every
//! mistake becomes one clear `error` event.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lp2p::kad::Mode as KadMode;
use lp2p::{Multiaddr, PeerId};

/// Default hard stop for `dial` and `perf`.
pub(crate) const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of nodes in `demo`.
pub(crate) const DEFAULT_DEMO_NODES: usize = 5;

/// Default concurrency of `hold`.
pub(crate) const DEFAULT_HOLD_CONCURRENCY: usize = 32;

/// The security channel to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// `/noise`.
    Noise,
    /// `/tls/1.0.0` (QUIC always uses TLS 1.3 and ignores the choice).
    Tls,
    /// `/plaintext/2.0.0`.
    Plaintext,
}

/// The preferred stream muxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Muxer {
    /// `/yamux/1.0.0`.
    Yamux,
    /// `/mplex/6.7.0`.
    Mplex,
}

/// Where the identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// A fresh random Ed25519 key.
    Random,
    /// A deterministic Ed25519 key from a seed (tests).
    Seed(u64),
    /// A protobuf-encoded private key in a file, created (mode 0600) when missing.
    File(PathBuf),
}

/// A Kademlia operation (dial flags, listen stdin lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KadOp {
    /// `--kad-find-peer ID`.
    FindPeer(PeerId),
    /// `--kad-put KEY=VALUE`.
    Put {
        /// The record key (UTF-8 text).
        key: String,
        /// The value (UTF-8 text).
        value: String,
    },
    /// `--kad-get KEY`.
    Get(String),
    /// `--kad-provide KEY`.
    Provide(String),
    /// `--kad-find-providers KEY`.
    FindProviders(String),
}

/// Options every subcommand accepts.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    /// `--security`.
    pub security: Security,
    /// `--muxer`.
    pub muxer: Muxer,
    /// `--only`: offer only the chosen muxer.
    pub only: bool,
    /// `--key-seed` / `--key-file`.
    pub key: KeySource,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--human` (default JSON lines).
    pub human: bool,
    /// `-v` count.
    pub verbose: u8,
    /// `--bare`: only ping, echo and perf.
    pub bare: bool,
    /// `--cert`: PEM certificate chain for `/tls/ws` listeners (self-signed without it).
    pub cert: Option<PathBuf>,
    /// `--cert-key`: PEM private key for `--cert`.
    pub cert_key: Option<PathBuf>,
    /// `--insecure-ws-cert`: `/tls/ws` dials accept any server certificate.
    pub insecure_ws_cert: bool,
    /// `--dns-server IP:PORT`: resolve names with this server only.
    pub dns_server: Option<SocketAddr>,
    /// `--kad server|client|auto` (dial: implied `client` by a Kademlia operation); `auto`
    /// starts as a client and sets `kad_follows_reachability`.
    pub kad: Option<KadMode>,
    /// `--kad auto`: Kademlia is a server while AutoNAT finds one of our addresses public,
    /// a client otherwise (needs `--autonat`).
    pub kad_follows_reachability: bool,
    /// `--relay-auto` (listen): the `--relay` reservations are held while AutoNAT has not
    /// found one of our addresses public and given up while it has (needs `--autonat`).
    pub relay_follows_reachability: bool,
    /// `--mdns` (listen, dial): mDNS discovery, printing `discovered` events.
    pub mdns: bool,
    /// `--metrics IP:PORT` (listen, dial): serve Prometheus metrics there.
    pub metrics: Option<SocketAddr>,
    /// `--relay-service` (listen, dial): serve circuit relay v2 (hop).
    pub relay_service: bool,
    /// `--relay-data-limit BYTES` (with `--relay-service`): bytes each circuit may carry in
    /// each direction; `Some(0)` lifts the limit, `None` keeps the default (128 KiB).
    pub relay_data_limit: Option<u64>,
    /// `--relay-duration-limit SECS` (with `--relay-service`): how long each circuit may
    /// last; `Some(0)` lifts the limit, `None` keeps the default (2 minutes).
    pub relay_duration_limit: Option<u64>,
    /// `--autonat` (listen, dial): AutoNAT v2 client and server, printing `reachability`
    /// events.
    pub autonat: bool,
    /// `--upnp` (listen): map the listen ports on the gateway (PCP, NAT-PMP, UPnP),
    /// printing `port-mapping` events.
    pub upnp: bool,
    /// `--dcutr` (listen, dial): upgrade relayed connections to direct ones, printing
    /// `dcutr` events.
    pub dcutr: bool,
    /// Every `--addr` is a loopback address: a test network on one machine, where AutoNAT
    /// and DCUtR use loopback addresses (not an option; derived from the addresses).
    pub loopback_only: bool,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            security: Security::Noise,
            muxer: Muxer::Yamux,
            only: false,
            key: KeySource::Random,
            timeout: None,
            human: false,
            verbose: 0,
            bare: false,
            cert: None,
            cert_key: None,
            insecure_ws_cert: false,
            dns_server: None,
            kad: None,
            kad_follows_reachability: false,
            relay_follows_reachability: false,
            mdns: false,
            metrics: None,
            relay_service: false,
            relay_data_limit: None,
            relay_duration_limit: None,
            autonat: false,
            upnp: false,
            dcutr: false,
            loopback_only: false,
        }
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// Serve and wait.
    Listen {
        /// `--addr`, at least one.
        addrs: Vec<Multiaddr>,
        /// `--topic`.
        topics: Vec<String>,
        /// `--connect`.
        connect: Vec<Multiaddr>,
        /// `--relay`: relays to reserve a slot on.
        relays: Vec<Multiaddr>,
    },
    /// Connect to one peer and do things.
    Dial {
        /// `--addr` (ends in /p2p/ID).
        addr: Multiaddr,
        /// `--ping N`.
        ping: Option<u32>,
        /// `--echo TEXT`.
        echo: Option<String>,
        /// `--identify`.
        identify: bool,
        /// `--topic`.
        topic: Option<String>,
        /// `--publish`.
        publish: Option<String>,
        /// `--expect-messages`.
        expect_messages: Option<usize>,
        /// `--kad-*` operations, in the order given.
        kad_ops: Vec<KadOp>,
    },
    /// One /perf/1.0.0 exchange.
    Perf {
        /// `--addr`.
        addr: Multiaddr,
        /// `--upload-bytes`.
        upload: u64,
        /// `--download-bytes`.
        download: u64,
    },
    /// Connection setup rate.
    ConnBench {
        /// `--addr`.
        addr: Multiaddr,
        /// `--count`.
        count: usize,
    },
    /// Many idle connections.
    Hold {
        /// `--addr`.
        addr: Multiaddr,
        /// `--count`.
        count: usize,
        /// `--concurrency`.
        concurrency: usize,
    },
    /// Several nodes in one process.
    Demo {
        /// `--nodes`.
        nodes: usize,
    },
    /// A new identity.
    Keygen {
        /// `--out`.
        out: Option<PathBuf>,
    },
    /// `--help`.
    Help,
}

/// The usage text for `--help`.
pub(crate) const USAGE: &str = "\
lp2p-node: a libp2p node speaking JSON lines on stdout

usage: lp2p-node <command> [options]

commands:
  listen --addr MULTIADDR [--addr ...] [--topic T]... [--connect MULTIADDR/p2p/ID]...
         (MULTIADDR: /ip4|ip6/H/tcp/P, .../tcp/P/ws, .../tcp/P/tls/ws; dial addresses may
          also name hosts: /dns|dns4|dns6/NAME/..., /dnsaddr/NAME)
  dial --addr MULTIADDR/p2p/ID [--ping N] [--echo TEXT] [--identify]
       [--topic T --publish TEXT] [--expect-messages K]
       [--kad-find-peer ID] [--kad-put KEY=VALUE] [--kad-get KEY]
       [--kad-provide KEY] [--kad-find-providers KEY]   (in the order given)
  perf --addr MULTIADDR --upload-bytes N --download-bytes M
  conn-bench --addr MULTIADDR --count N
  hold --addr MULTIADDR --count N [--concurrency C]
  demo [--nodes N]
  keygen [--out PATH]

options (any command):
  --security noise|tls|plaintext
                               default noise (/udp/P/quic-v1 always uses TLS 1.3)
  --muxer yamux|mplex          default yamux (the other is offered second unless --only)
  --only                       offer only the chosen muxer
  --key-seed N                 deterministic Ed25519 identity from a u64 seed
  --key-file PATH              load (or create, mode 0600) a protobuf-encoded private key
  --timeout SECS               hard stop (default 30 for dial and perf, none otherwise)
  --json | --human             output format (default --json)
  --bare                       serve and use only ping, echo and perf
  --cert PATH --cert-key PATH  PEM certificate chain and key for /tls/ws listeners
                               (a self-signed certificate without them)
  --insecure-ws-cert           /tls/ws dials accept any server certificate
  --dns-server IP:PORT         resolve /dns* and /dnsaddr names with this server only
  --kad server|client|auto     run Kademlia (/ipfs/kad/1.0.0); auto (with --autonat) is a
                               server while an address of ours is public, else a client;
                               listen's --connect peers are
                               its bootstrap peers; listen reads stdin lines kad-find-peer ID,
                               kad-put KEY VALUE, kad-get KEY, kad-provide KEY,
                               kad-find-providers KEY
  --mdns                       (listen, dial) discover peers on the local network with mDNS
                               and print a `discovered` event per new peer
  --relay-service              (listen, dial) serve circuit relay v2 (hop) to other peers
  --relay-data-limit BYTES     (with --relay-service) bytes each circuit may carry each way
                               (default 131072; 0 = no limit)
  --relay-duration-limit SECS  (with --relay-service) how long each circuit may last
                               (default 120; 0 = no limit)
  --autonat                    (listen, dial) AutoNAT v2 client and server; prints a
                               `reachability` event per address status change (a node that
                               listens on loopback only tests and serves loopback addresses,
                               and one server's answer decides)
  --dcutr                      (listen, dial) upgrade relayed connections to direct ones
                               (hole punching); prints a `dcutr` event per upgrade
  --upnp                       (listen) ask the gateway to forward the listen ports (PCP,
                               NAT-PMP, then UPnP IGD); prints a `port-mapping` event per
                               mapping, or one with ok false when every method failed
  --relay MULTIADDR/p2p/ID     (listen, repeatable) reserve a slot on that relay and print a
                               `reservation` event; dial addresses with /p2p-circuit go
                               through a relay
  --relay-auto                 (listen, with --relay and --autonat) hold the reservations only
                               while no address of ours is confirmed public
  --metrics IP:PORT            (listen, dial) serve Prometheus metrics at
                               http://IP:PORT/metrics (port 0 picks one; listen's
                               `listening` event and dial's `metrics` event name the URL)
  -v, -vv                      logs on stderr (RUST_LOG works too)
";

/// A command line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<(Command, Common), UsageError> {
    let mut args = args.iter();
    let Some(command) = args.next() else {
        return Err(usage(
            "no command given; run `lp2p-node --help` for the list",
        ));
    };
    let name = command.as_str();
    if matches!(name, "--help" | "-h" | "help") {
        return Ok((Command::Help, Common::default()));
    }
    if !matches!(
        name,
        "listen" | "dial" | "perf" | "conn-bench" | "hold" | "demo" | "keygen"
    ) {
        return Err(usage(format!(
            "unknown command `{name}`; run `lp2p-node --help` for the list"
        )));
    }

    let mut common = Common::default();
    let mut raw = Raw::default();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| -> Result<String, UsageError> {
            args.next()
                .cloned()
                .ok_or_else(|| usage(format!("option {arg} needs {what}")))
        };
        match arg.as_str() {
            "--help" | "-h" => return Ok((Command::Help, common)),
            "--security" => {
                common.security = match value("a value")?.as_str() {
                    "noise" => Security::Noise,
                    "tls" => Security::Tls,
                    "plaintext" => Security::Plaintext,
                    other => {
                        return Err(usage(format!(
                            "unknown security `{other}`; use noise, tls or plaintext"
                        )));
                    }
                }
            }
            "--muxer" => {
                common.muxer = match value("a value")?.as_str() {
                    "yamux" => Muxer::Yamux,
                    "mplex" => Muxer::Mplex,
                    other => {
                        return Err(usage(format!(
                            "unknown muxer `{other}`; use yamux or mplex"
                        )));
                    }
                }
            }
            "--only" => common.only = true,
            "--key-seed" => common.key = KeySource::Seed(number(arg, &value("a number")?)?),
            "--key-file" => common.key = KeySource::File(PathBuf::from(value("a path")?)),
            "--timeout" => {
                let secs: f64 = value("a number of seconds")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        usage(format!("{arg} needs a non-negative number of seconds"))
                    })?;
                common.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--json" => common.human = false,
            "--human" => common.human = true,
            "--bare" => common.bare = true,
            "--cert" => common.cert = Some(PathBuf::from(value("a path")?)),
            "--cert-key" => common.cert_key = Some(PathBuf::from(value("a path")?)),
            "--insecure-ws-cert" => common.insecure_ws_cert = true,
            "--relay-service" => common.relay_service = true,
            "--relay-auto" => common.relay_follows_reachability = true,
            "--relay-data-limit" => {
                common.relay_data_limit = Some(number(arg, &value("a number of bytes")?)?);
            }
            "--relay-duration-limit" => {
                common.relay_duration_limit = Some(number(arg, &value("a number of seconds")?)?);
            }
            "--autonat" => common.autonat = true,
            "--upnp" => common.upnp = true,
            "--dcutr" => common.dcutr = true,
            "--relay" => raw
                .relays
                .push(multiaddr(arg, &value("a relay multiaddr/p2p/ID")?)?),
            "--metrics" => {
                let text = value("an IP:PORT")?;
                common.metrics = Some(
                    text.parse()
                        .map_err(|_| usage(format!("{arg} needs an IP:PORT, got `{text}`")))?,
                );
            }
            "--dns-server" => {
                let text = value("an IP:PORT")?;
                common.dns_server = Some(
                    text.parse()
                        .map_err(|_| usage(format!("{arg} needs an IP:PORT, got `{text}`")))?,
                );
            }
            "--kad" => {
                common.kad = Some(match value("server, client or auto")?.as_str() {
                    "server" => KadMode::Server,
                    "client" => KadMode::Client,
                    "auto" => {
                        // A client until AutoNAT finds an address of ours public.
                        common.kad_follows_reachability = true;
                        KadMode::Client
                    }
                    other => {
                        return Err(usage(format!(
                            "unknown kad mode `{other}`; use server, client or auto"
                        )));
                    }
                });
            }
            "--kad-find-peer" => {
                let text = value("a peer id")?;
                let peer = text
                    .parse()
                    .map_err(|e| usage(format!("{arg}: `{text}` is not a peer id ({e})")))?;
                raw.kad_ops.push(KadOp::FindPeer(peer));
            }
            "--kad-put" => {
                let text = value("KEY=VALUE")?;
                let (key, value) = text
                    .split_once('=')
                    .ok_or_else(|| usage(format!("{arg} needs KEY=VALUE, got `{text}`")))?;
                raw.kad_ops.push(KadOp::Put {
                    key: key.to_owned(),
                    value: value.to_owned(),
                });
            }
            "--kad-get" => raw.kad_ops.push(KadOp::Get(value("a key")?)),
            "--kad-provide" => raw.kad_ops.push(KadOp::Provide(value("a key")?)),
            "--kad-find-providers" => raw.kad_ops.push(KadOp::FindProviders(value("a key")?)),
            "-v" => common.verbose = common.verbose.saturating_add(1),
            "-vv" => common.verbose = common.verbose.saturating_add(2),
            "--addr" => raw.addrs.push(multiaddr(arg, &value("a multiaddr")?)?),
            "--connect" => raw.connect.push(multiaddr(arg, &value("a multiaddr")?)?),
            "--topic" => raw.topics.push(value("a topic")?),
            "--ping" => raw.ping = Some(number(arg, &value("a count")?)?),
            "--echo" => raw.echo = Some(value("a text")?),
            "--identify" => raw.identify = true,
            "--publish" => raw.publish = Some(value("a text")?),
            "--expect-messages" => raw.expect_messages = Some(number(arg, &value("a count")?)?),
            "--upload-bytes" => raw.upload = Some(number(arg, &value("a byte count")?)?),
            "--download-bytes" => raw.download = Some(number(arg, &value("a byte count")?)?),
            "--count" => raw.count = Some(number(arg, &value("a count")?)?),
            "--concurrency" => raw.concurrency = Some(number(arg, &value("a count")?)?),
            "--nodes" => raw.nodes = Some(number(arg, &value("a count")?)?),
            "--out" => raw.out = Some(PathBuf::from(value("a path")?)),
            "--mdns" => raw.mdns = true,
            other if other.starts_with('-') => {
                return Err(usage(format!("unknown option `{other}`")));
            }
            other => return Err(usage(format!("unexpected argument `{other}`"))),
        }
    }
    if common.cert.is_some() != common.cert_key.is_some() {
        return Err(usage("--cert and --cert-key go together"));
    }
    if common.kad.is_some() && !matches!(name, "listen" | "dial") {
        return Err(usage(format!("option --kad does not apply to `{name}`")));
    }
    if common.kad_follows_reachability && !common.autonat {
        return Err(usage(
            "--kad auto follows AutoNAT's verdicts: add --autonat",
        ));
    }
    if common.relay_follows_reachability {
        if raw.relays.is_empty() {
            return Err(usage("--relay-auto needs at least one --relay"));
        }
        if !common.autonat {
            return Err(usage(
                "--relay-auto follows AutoNAT's verdicts: add --autonat",
            ));
        }
    }
    if !raw.kad_ops.is_empty() && common.kad.is_none() {
        // Querying needs no server: a dial with operations runs a client by default.
        common.kad = Some(KadMode::Client);
    }
    if common.bare && common.kad.is_some() {
        return Err(usage(
            "--kad does not go with --bare (ping, echo and perf only)",
        ));
    }
    common.mdns = raw.mdns;
    if common.metrics.is_some() && !matches!(name, "listen" | "dial") {
        return Err(usage(format!(
            "option --metrics does not apply to `{name}`"
        )));
    }
    if common.relay_service && !matches!(name, "listen" | "dial") {
        return Err(usage(format!(
            "option --relay-service does not apply to `{name}`"
        )));
    }
    if (common.relay_data_limit.is_some() || common.relay_duration_limit.is_some())
        && !common.relay_service
    {
        return Err(usage(
            "--relay-data-limit and --relay-duration-limit need --relay-service",
        ));
    }
    if common.autonat && !matches!(name, "listen" | "dial") {
        return Err(usage(format!(
            "option --autonat does not apply to `{name}`"
        )));
    }
    if common.upnp && name != "listen" {
        return Err(usage(format!("option --upnp does not apply to `{name}`")));
    }
    if common.dcutr && !matches!(name, "listen" | "dial") {
        return Err(usage(format!("option --dcutr does not apply to `{name}`")));
    }
    common.loopback_only = !raw.addrs.is_empty()
        && raw
            .addrs
            .iter()
            .all(|a| lp2p::core::addr::first_ip(a).is_some_and(|ip| ip.is_loopback()));
    let command = raw.into_command(name)?;
    if common.timeout.is_none() && matches!(command, Command::Dial { .. } | Command::Perf { .. }) {
        common.timeout = Some(DEFAULT_DIAL_TIMEOUT);
    }
    Ok((command, common))
}

/// Options as given, before they are checked against the command.
#[derive(Default)]
struct Raw {
    addrs: Vec<Multiaddr>,
    connect: Vec<Multiaddr>,
    topics: Vec<String>,
    ping: Option<u32>,
    echo: Option<String>,
    identify: bool,
    publish: Option<String>,
    expect_messages: Option<usize>,
    upload: Option<u64>,
    download: Option<u64>,
    count: Option<usize>,
    concurrency: Option<usize>,
    nodes: Option<usize>,
    out: Option<PathBuf>,
    kad_ops: Vec<KadOp>,
    mdns: bool,
    relays: Vec<Multiaddr>,
}

impl Raw {
    fn into_command(self, name: &str) -> Result<Command, UsageError> {
        let allowed: &[&str] = match name {
            "listen" => &["addr", "topic", "connect", "mdns", "relay"],
            "dial" => &[
                "addr",
                "ping",
                "echo",
                "identify",
                "topic",
                "publish",
                "expect-messages",
                "kad-*",
                "mdns",
            ],
            "perf" => &["addr", "upload-bytes", "download-bytes"],
            "conn-bench" => &["addr", "count"],
            "hold" => &["addr", "count", "concurrency"],
            "demo" => &["nodes"],
            _ => &["out"],
        };
        let given = [
            ("addr", !self.addrs.is_empty()),
            ("connect", !self.connect.is_empty()),
            ("topic", !self.topics.is_empty()),
            ("ping", self.ping.is_some()),
            ("echo", self.echo.is_some()),
            ("identify", self.identify),
            ("publish", self.publish.is_some()),
            ("expect-messages", self.expect_messages.is_some()),
            ("upload-bytes", self.upload.is_some()),
            ("download-bytes", self.download.is_some()),
            ("count", self.count.is_some()),
            ("concurrency", self.concurrency.is_some()),
            ("nodes", self.nodes.is_some()),
            ("out", self.out.is_some()),
            ("kad-*", !self.kad_ops.is_empty()),
            ("mdns", self.mdns),
            ("relay", !self.relays.is_empty()),
        ];
        if let Some((option, _)) = given.iter().find(|(o, set)| *set && !allowed.contains(o)) {
            return Err(usage(format!(
                "option --{option} does not apply to `{name}`"
            )));
        }
        let one_addr = |addrs: Vec<Multiaddr>| -> Result<Multiaddr, UsageError> {
            let mut addrs = addrs.into_iter();
            let addr = addrs
                .next()
                .ok_or_else(|| usage(format!("`{name}` needs --addr")))?;
            if addrs.next().is_some() {
                return Err(usage(format!("`{name}` takes one --addr")));
            }
            Ok(addr)
        };
        Ok(match name {
            "listen" => {
                if self.addrs.is_empty() {
                    return Err(usage(
                        "`listen` needs at least one --addr, e.g. --addr /ip4/127.0.0.1/tcp/0",
                    ));
                }
                Command::Listen {
                    addrs: self.addrs,
                    topics: self.topics,
                    connect: self.connect,
                    relays: self.relays,
                }
            }
            "dial" => {
                if self.publish.is_some() != (self.topics.len() == 1) && self.publish.is_some() {
                    return Err(usage("--publish needs exactly one --topic"));
                }
                if self.topics.len() > 1 {
                    return Err(usage("`dial` takes one --topic"));
                }
                if self.expect_messages.is_some() && self.topics.is_empty() {
                    return Err(usage("--expect-messages needs --topic"));
                }
                Command::Dial {
                    addr: one_addr(self.addrs)?,
                    ping: self.ping,
                    echo: self.echo,
                    identify: self.identify,
                    topic: self.topics.into_iter().next(),
                    publish: self.publish,
                    expect_messages: self.expect_messages,
                    kad_ops: self.kad_ops,
                }
            }
            "perf" => Command::Perf {
                addr: one_addr(self.addrs)?,
                upload: self
                    .upload
                    .ok_or_else(|| usage("`perf` needs --upload-bytes"))?,
                download: self
                    .download
                    .ok_or_else(|| usage("`perf` needs --download-bytes"))?,
            },
            "conn-bench" => Command::ConnBench {
                addr: one_addr(self.addrs)?,
                count: self
                    .count
                    .ok_or_else(|| usage("`conn-bench` needs --count"))?,
            },
            "hold" => Command::Hold {
                addr: one_addr(self.addrs)?,
                count: self.count.ok_or_else(|| usage("`hold` needs --count"))?,
                concurrency: self.concurrency.unwrap_or(DEFAULT_HOLD_CONCURRENCY).max(1),
            },
            "demo" => Command::Demo {
                nodes: self.nodes.unwrap_or(DEFAULT_DEMO_NODES),
            },
            _ => Command::Keygen { out: self.out },
        })
    }
}

fn number<T: std::str::FromStr>(option: &str, text: &str) -> Result<T, UsageError> {
    text.parse()
        .map_err(|_| usage(format!("{option} needs a number, got `{text}`")))
}

fn multiaddr(option: &str, text: &str) -> Result<Multiaddr, UsageError> {
    text.parse()
        .map_err(|e| usage(format!("{option}: `{text}` is not a valid multiaddr ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<(Command, Common), UsageError> {
        parse(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn relay_limits() {
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--relay-service",
            "--relay-data-limit",
            "0",
            "--relay-duration-limit",
            "600",
        ])
        .unwrap();
        assert_eq!(common.relay_data_limit, Some(0));
        assert_eq!(common.relay_duration_limit, Some(600));
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--relay-service",
        ])
        .unwrap();
        assert_eq!(common.relay_data_limit, None);
        assert!(
            p(&[
                "listen",
                "--addr",
                "/ip4/127.0.0.1/tcp/0",
                "--relay-data-limit",
                "1"
            ])
            .is_err()
        );
        assert!(p(&["listen", "--relay-service", "--relay-duration-limit", "x"]).is_err());
    }

    #[test]
    fn listen_with_options_anywhere() {
        let (cmd, common) = p(&[
            "listen",
            "--human",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--topic",
            "a",
            "--muxer",
            "mplex",
            "--only",
        ])
        .unwrap();
        assert!(common.human && common.only);
        assert_eq!(common.muxer, Muxer::Mplex);
        assert_eq!(common.timeout, None);
        let Command::Listen {
            addrs,
            topics,
            connect,
            ..
        } = cmd
        else {
            panic!()
        };
        assert_eq!(addrs.len(), 1);
        assert_eq!(topics, ["a"]);
        assert!(connect.is_empty());
    }

    #[test]
    fn dial_defaults_to_a_timeout() {
        let (cmd, common) = p(&["dial", "--addr", "/ip4/127.0.0.1/tcp/1", "--ping", "3"]).unwrap();
        assert_eq!(common.timeout, Some(DEFAULT_DIAL_TIMEOUT));
        assert!(matches!(cmd, Command::Dial { ping: Some(3), .. }));
        let (_, common) =
            p(&["dial", "--addr", "/ip4/127.0.0.1/tcp/1", "--timeout", "2.5"]).unwrap();
        assert_eq!(common.timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn mistakes_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "no command"),
            (&["fly"], "unknown command `fly`"),
            (&["listen"], "needs at least one --addr"),
            (&["listen", "--addr"], "needs a multiaddr"),
            (&["listen", "--addr", "/ip4/nope"], "not a valid multiaddr"),
            (
                &["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--bogus"],
                "unknown option `--bogus`",
            ),
            (
                &["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--ping", "1"],
                "--ping does not apply to `listen`",
            ),
            (
                &["dial", "--addr", "/ip4/127.0.0.1/tcp/1", "--ping", "x"],
                "--ping needs a number",
            ),
            (
                &["dial", "--addr", "/ip4/127.0.0.1/tcp/1", "--publish", "hi"],
                "--publish needs exactly one --topic",
            ),
            (
                &[
                    "perf",
                    "--addr",
                    "/ip4/127.0.0.1/tcp/1",
                    "--upload-bytes",
                    "1",
                ],
                "needs --download-bytes",
            ),
            (&["dial", "--security", "ssl"], "unknown security `ssl`"),
            (&["dial", "--timeout", "-1"], "non-negative"),
            (&["dial", "--dns-server", "localhost"], "needs an IP:PORT"),
            (&["listen", "--cert", "c.pem"], "go together"),
            (&["keygen", "stray"], "unexpected argument `stray`"),
        ];
        for (args, expected) in cases {
            let err = p(args).unwrap_err();
            assert!(
                err.0.contains(expected),
                "{args:?}: {err} (expected {expected})"
            );
        }
    }

    #[test]
    fn websocket_and_dns_options() {
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0/tls/ws",
            "--cert",
            "c.pem",
            "--cert-key",
            "k.pem",
            "--insecure-ws-cert",
            "--dns-server",
            "127.0.0.1:5353",
        ])
        .unwrap();
        assert_eq!(common.cert, Some(PathBuf::from("c.pem")));
        assert_eq!(common.cert_key, Some(PathBuf::from("k.pem")));
        assert!(common.insecure_ws_cert);
        assert_eq!(common.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
    }

    #[test]
    fn metrics_takes_an_address_on_listen_and_dial_only() {
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(common.metrics, Some("127.0.0.1:0".parse().unwrap()));
        let err = p(&["listen", "--metrics", "localhost:9100"]).unwrap_err();
        assert!(err.0.contains("needs an IP:PORT"), "{err}");
        let err = p(&[
            "perf",
            "--metrics",
            "127.0.0.1:0",
            "--addr",
            "/ip4/127.0.0.1/tcp/1",
        ])
        .unwrap_err();
        assert!(
            err.0.contains("--metrics does not apply to `perf`"),
            "{err}"
        );
    }

    #[test]
    fn kad_flags() {
        let peer = PeerId::random();
        let (cmd, common) = p(&[
            "dial",
            "--addr",
            "/ip4/127.0.0.1/tcp/1",
            "--kad-put",
            "k=v=w",
            "--kad-find-peer",
            &peer.to_string(),
            "--kad-get",
            "k",
        ])
        .unwrap();
        assert_eq!(
            common.kad,
            Some(KadMode::Client),
            "implied by the operations"
        );
        let Command::Dial { kad_ops, .. } = cmd else {
            panic!()
        };
        assert_eq!(
            kad_ops,
            vec![
                KadOp::Put {
                    key: "k".into(),
                    value: "v=w".into()
                },
                KadOp::FindPeer(peer),
                KadOp::Get("k".into()),
            ]
        );
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--kad",
            "server",
        ])
        .unwrap();
        assert_eq!(common.kad, Some(KadMode::Server));
        assert!(!common.kad_follows_reachability);
        let (_, common) = p(&[
            "listen",
            "--addr",
            "/ip4/127.0.0.1/tcp/0",
            "--kad",
            "auto",
            "--autonat",
        ])
        .unwrap();
        assert_eq!(
            common.kad,
            Some(KadMode::Client),
            "a client until proven public"
        );
        assert!(common.kad_follows_reachability);
        for (args, expected) in [
            (
                &["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--kad", "both"][..],
                "unknown kad mode",
            ),
            (
                &["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--kad-get", "k"],
                "--kad-* does not apply to `listen`",
            ),
            (
                &["listen", "--addr", "/ip4/127.0.0.1/tcp/0", "--kad", "auto"],
                "--kad auto follows AutoNAT's verdicts: add --autonat",
            ),
            (
                &[
                    "listen",
                    "--addr",
                    "/ip4/127.0.0.1/tcp/0",
                    "--relay-auto",
                    "--autonat",
                ],
                "--relay-auto needs at least one --relay",
            ),
            (
                &[
                    "dial",
                    "--addr",
                    "/ip4/127.0.0.1/tcp/1",
                    "--kad-put",
                    "novalue",
                ],
                "needs KEY=VALUE",
            ),
            (
                &[
                    "dial",
                    "--addr",
                    "/ip4/127.0.0.1/tcp/1",
                    "--kad-find-peer",
                    "xyz",
                ],
                "is not a peer id",
            ),
            (
                &["perf", "--addr", "/ip4/127.0.0.1/tcp/1", "--kad", "client"],
                "--kad does not apply to `perf`",
            ),
            (
                &[
                    "dial",
                    "--addr",
                    "/ip4/127.0.0.1/tcp/1",
                    "--bare",
                    "--kad-get",
                    "k",
                ],
                "--kad does not go with --bare",
            ),
        ] {
            let err = p(args).unwrap_err();
            assert!(err.0.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn mdns_applies_to_listen_and_dial_only() {
        let (_, common) = p(&["listen", "--addr", "/ip4/0.0.0.0/tcp/0", "--mdns"]).unwrap();
        assert!(common.mdns);
        let (_, common) = p(&["dial", "--mdns", "--addr", "/ip4/127.0.0.1/tcp/1"]).unwrap();
        assert!(common.mdns);
        let (_, common) = p(&["listen", "--addr", "/ip4/0.0.0.0/tcp/0"]).unwrap();
        assert!(!common.mdns);
        let err = p(&["perf", "--mdns", "--addr", "/ip4/127.0.0.1/tcp/1"]).unwrap_err();
        assert!(err.0.contains("--mdns does not apply to `perf`"), "{err}");
    }

    #[test]
    fn help() {
        assert!(matches!(p(&["--help"]).unwrap().0, Command::Help));
        assert!(matches!(p(&["dial", "-h"]).unwrap().0, Command::Help));
    }
}
