//! The command line: subcommands and options of docs/node-cli.md, parsed by hand so every
//! mistake becomes one clear `error` event.

use std::path::PathBuf;
use std::time::Duration;

use lp2p::Multiaddr;

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
    /// `--mdns` (listen, dial): mDNS discovery, printing `discovered` events.
    pub mdns: bool,
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
            mdns: false,
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
  dial --addr MULTIADDR/p2p/ID [--ping N] [--echo TEXT] [--identify]
       [--topic T --publish TEXT] [--expect-messages K]
  perf --addr MULTIADDR --upload-bytes N --download-bytes M
  conn-bench --addr MULTIADDR --count N
  hold --addr MULTIADDR --count N [--concurrency C]
  demo [--nodes N]
  keygen [--out PATH]

options (any command):
  --security noise|plaintext   default noise
  --muxer yamux|mplex          default yamux (the other is offered second unless --only)
  --only                       offer only the chosen muxer
  --key-seed N                 deterministic Ed25519 identity from a u64 seed
  --key-file PATH              load (or create, mode 0600) a protobuf-encoded private key
  --timeout SECS               hard stop (default 30 for dial and perf, none otherwise)
  --json | --human             output format (default --json)
  --bare                       serve and use only ping, echo and perf
  --mdns                       (listen, dial) discover peers on the local network with mDNS
                               and print a `discovered` event per new peer
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
                    "plaintext" => Security::Plaintext,
                    other => {
                        return Err(usage(format!(
                            "unknown security `{other}`; use noise or plaintext"
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
    common.mdns = raw.mdns;
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
    mdns: bool,
}

impl Raw {
    fn into_command(self, name: &str) -> Result<Command, UsageError> {
        let allowed: &[&str] = match name {
            "listen" => &["addr", "topic", "connect", "mdns"],
            "dial" => &[
                "addr",
                "ping",
                "echo",
                "identify",
                "topic",
                "publish",
                "expect-messages",
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
            ("mdns", self.mdns),
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
            (&["dial", "--security", "tls"], "unknown security `tls`"),
            (&["dial", "--timeout", "-1"], "non-negative"),
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
