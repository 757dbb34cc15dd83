//! Network namespaces for tests that need real networks (feature `netns`, Linux, root).
//!
//! [`Netns`] is a set of namespaces joined by veth pairs, made with `ip` (iproute2) and
//! removed, with their links, when the set is dropped: also when the test panics. Routers are
//! nftables rulesets ([`Netns::router`] for the NAT kinds of [`Nat`], or any ruleset with
//! [`Netns::nft`]); [`Netns::command`] runs a program inside a namespace.
//!
//! ```no_run
//! # fn main() -> Result<(), String> {
//! use lp2p_testkit::netns::{Nat, Netns};
//!
//! let mut bed = Netns::new("ex")?; // Err when not root, not Linux or without `ip`
//! let public = bed.add("p")?;
//! let router = bed.add("r")?;
//! let host = bed.add("h")?;
//! bed.link(&public, "pr", "11.0.1.1/24", &router, "wan", "11.0.1.2/24")?;
//! bed.link(&router, "lan", "10.0.1.1/24", &host, "eth0", "10.0.1.2/24")?;
//! bed.forwarding(&public)?;
//! bed.default_route(&router, "11.0.1.1")?;
//! bed.default_route(&host, "10.0.1.1")?;
//! bed.router(&router, Nat::Cone, "10.0.1.2")?;
//! let out = bed.command(&host, "ping").args(["-c1", "11.0.1.1"]).output();
//! # let _ = out;
//! # Ok(())
//! # }
//! // dropped: the three namespaces and their veths are gone
//! ```
//!
//! Errors are one-line strings naming the command that failed and its stderr, so a test can
//! report a testbed it cannot build as skipped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The user-space delay of [`Netns::delayed_link`]: a Python program (this kernel has no
/// netem) that copies frames between two interfaces after a fixed delay.
const DELAY_LINK: &str = include_str!("delay_link.py");

/// Runs `program` with `args` and returns its stdout, or an error naming the command and its
/// stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(drop)
}

/// Ok when this process can make namespaces: Linux, root (CAP_SYS_ADMIN) and `ip` installed.
pub fn check() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("not Linux".into());
    }
    let uid = run("id", &["-u"])?;
    if uid.trim() != "0" {
        return Err("not root".into());
    }
    run("ip", &["-V"]).map(drop)
}

/// The kinds of NAT router [`Netns::router`] builds. Each masquerades the LAN behind the
/// router's WAN address and drops what arrives from the WAN unsolicited (forwarded or for
/// the router itself); they differ in mapping and filtering (RFC 4787 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping (`masquerade` keeps source ports), inbound only from the
    /// exact remote address and port the LAN host sent to (conntrack): the common home
    /// router ("port-restricted cone").
    Cone,
    /// Endpoint-independent mapping, address-dependent filtering: inbound is allowed from
    /// any port of a remote IP the LAN host sent to.
    AddressDependent,
    /// Endpoint-dependent mapping (`masquerade random`: a random port per connection), as
    /// carrier-grade NATs do.
    Symmetric,
}

impl Nat {
    /// A short name for tables: `cone`, `address-dependent`, `symmetric`.
    pub fn name(self) -> &'static str {
        match self {
            Nat::Cone => "cone",
            Nat::AddressDependent => "address-dependent",
            Nat::Symmetric => "symmetric",
        }
    }

    /// The nftables ruleset of this router kind: WAN interface `wan`, LAN interface `lan`,
    /// `host` the LAN host's address (the target of address-dependent inbound traffic).
    pub fn ruleset(self, host: &str) -> String {
        let masquerade = match self {
            Nat::Cone | Nat::AddressDependent => "masquerade",
            Nat::Symmetric => "masquerade random",
        };
        // Address-dependent filtering. Linux conntrack lets in only replies from the exact
        // remote endpoint a mapping was made for; to let in any port of a contacted IP:
        // - `contacted` holds the remote IPs the LAN sent to, filled by the forward rule
        //   `iifname "lan" oifname "wan" update @contacted { ip daddr }` (entries expire 5
        //   minutes after the last packet, like a NAT's mapping timer);
        // - a new inbound packet from a contacted IP (no conntrack entry: another remote port
        //   than the one the mapping was made for) is translated to the LAN host, keeping its
        //   port (`ip saddr @contacted dnat to HOST`): `masquerade` without `random` keeps
        //   source ports, so external port = internal port and this is the host's mapping;
        // - forward accepts it (`ct status dnat accept`); the rest from the WAN is dropped.
        let (set, prerouting, contacted, dnat_ok) = match self {
            Nat::AddressDependent => (
                "set contacted { type ipv4_addr; flags dynamic, timeout; timeout 5m; }",
                format!(
                    "chain prerouting {{
                type nat hook prerouting priority dstnat; policy accept;
                iifname \"wan\" ip saddr @contacted dnat to {host}
            }}"
                ),
                "iifname \"lan\" oifname \"wan\" update @contacted { ip daddr }",
                "ct status dnat accept",
            ),
            _ => ("", String::new(), "", ""),
        };
        format!(
            "table ip lp2p_nat {{
            {set}
            {prerouting}
            chain postrouting {{
                type nat hook postrouting priority srcnat; policy accept;
                oifname \"wan\" {masquerade}
            }}
            chain input {{
                type filter hook input priority filter; policy drop;
                iifname \"lo\" accept
                iifname \"lan\" accept
                ct state established,related accept
            }}
            chain forward {{
                type filter hook forward priority filter; policy drop;
                {contacted}
                iifname \"lan\" accept
                ct state established,related accept
                {dnat_ok}
            }}
        }}"
        )
    }
}

/// A set of network namespaces, deleted (with their veths) when dropped, also on panic.
///
/// Names are `<prefix><pid % 100000><role>`: unique per test process, short enough for
/// interface names (15 bytes), and a leftover of a killed run with the same name is removed
/// first. Processes started in a namespace are the caller's: stop them before the set drops.
#[derive(Debug)]
pub struct Netns {
    names: Vec<String>,
    tag: String,
    /// The delay programs of [`Netns::delayed_link`], stopped before the namespaces go.
    delays: Vec<Child>,
}

impl Netns {
    /// An empty set whose names start with `prefix` (keep it to 2 or 3 characters); Err when
    /// [`check`] fails.
    pub fn new(prefix: &str) -> Result<Netns, String> {
        check()?;
        Ok(Netns {
            names: Vec::new(),
            tag: format!("{prefix}{}", std::process::id() % 100_000),
            delays: Vec::new(),
        })
    }

    /// The prefix of every name in this set (namespaces and temporary link names).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The full name of the namespace for `role` (made or not).
    pub fn name(&self, role: &str) -> String {
        format!("{}{role}", self.tag)
    }

    /// The namespaces made so far, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Makes the namespace for `role` with its loopback up; returns its name.
    pub fn add(&mut self, role: &str) -> Result<String, String> {
        let name = self.name(role);
        let _ = ip(&["netns", "del", &name]); // a leftover of a killed run
        ip(&["netns", "add", &name])?;
        self.names.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// A veth pair between namespaces `a` and `b`, named `a_dev` and `b_dev` there, up, with
    /// the given addresses (CIDR, e.g. `10.0.1.1/24`).
    pub fn link(
        &self,
        a: &str,
        a_dev: &str,
        a_addr: &str,
        b: &str,
        b_dev: &str,
        b_addr: &str,
    ) -> Result<(), String> {
        self.veth(a, a_dev, b, b_dev)?;
        self.configure(a, a_dev, a_addr)?;
        self.configure(b, b_dev, b_addr)
    }

    /// Like [`Netns::link`], but every frame takes `one_way` to cross, in each direction (a
    /// round trip over the link costs twice that). The link runs through a namespace of its
    /// own, role `d<a_dev><b_dev>`, where a user-space program (Python 3, `python3`) holds
    /// each frame for `one_way` and sends it on: this kernel has no netem. The program stops
    /// when the set drops. Meant for delays of a millisecond or more; it adds tens of
    /// microseconds per frame and forwards a few hundred Mbit/s at most. A zero `one_way` is
    /// a plain [`Netns::link`].
    #[allow(clippy::too_many_arguments)] // `link`'s six ends plus the delay, in its order
    pub fn delayed_link(
        &mut self,
        a: &str,
        a_dev: &str,
        a_addr: &str,
        b: &str,
        b_dev: &str,
        b_addr: &str,
        one_way: Duration,
    ) -> Result<(), String> {
        if one_way.is_zero() {
            return self.link(a, a_dev, a_addr, b, b_dev, b_addr);
        }
        let middle = self.add(&format!("d{a_dev}{b_dev}"))?;
        // Nothing in the middle speaks IP: no router solicitations or DAD of its own.
        self.exec(
            &middle,
            "sysctl",
            &["-qw", "net.ipv6.conf.all.disable_ipv6=1"],
        )?;
        self.exec(
            &middle,
            "sysctl",
            &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        self.veth(a, a_dev, &middle, "x")?;
        self.veth(&middle, "y", b, b_dev)?;
        for dev in ["x", "y"] {
            ip(&["-n", &middle, "link", "set", dev, "promisc", "on", "up"])?;
        }
        let mut child = self
            .command(&middle, "python3")
            .args(["-c", DELAY_LINK, "x", "y"])
            .arg(format!("{:.3}", one_way.as_secs_f64() * 1000.0))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the delay program (python3) in {middle}: {e}"))?;
        let ready = child.stdout.take().map(|out| {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            line
        });
        if ready.as_deref().map(str::trim) != Some("ready") {
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            return Err(format!(
                "the delay program in {middle} did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        self.delays.push(child);
        self.configure(a, a_dev, a_addr)?;
        self.configure(b, b_dev, b_addr)
    }

    /// A veth pair between namespaces `a` and `b`, named `a_dev` and `b_dev` there, down and
    /// without addresses.
    fn veth(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) -> Result<(), String> {
        let (ta, tb) = (
            format!("{}{a_dev}", self.tag),
            format!("{}{b_dev}", self.tag),
        );
        ip(&[
            "link", "add", &ta, "netns", a, "type", "veth", "peer", "name", &tb, "netns", b,
        ])?;
        ip(&["-n", a, "link", "set", &ta, "name", a_dev])?;
        ip(&["-n", b, "link", "set", &tb, "name", b_dev])
    }

    /// Gives `dev` in `ns` its address and brings it up.
    fn configure(&self, ns: &str, dev: &str, addr: &str) -> Result<(), String> {
        self.addr(ns, dev, addr)?;
        // The link-local address the kernel makes when the link comes up skips duplicate
        // address detection too: while it is tentative, the kernel answers a link-local peer
        // from another address (an mDNS test saw its answer come from the ULA).
        run(
            "ip",
            &[
                "netns",
                "exec",
                ns,
                "sh",
                "-c",
                &format!("echo 0 > /proc/sys/net/ipv6/conf/{dev}/accept_dad"),
            ],
        )?;
        ip(&["-n", ns, "link", "set", dev, "up"])
    }

    /// Adds address `cidr` to device `dev` in namespace `ns`. IPv6 addresses skip duplicate
    /// address detection (`nodad`), so they are usable at once.
    pub fn addr(&self, ns: &str, dev: &str, cidr: &str) -> Result<(), String> {
        if cidr.contains(':') {
            ip(&["-n", ns, "addr", "add", cidr, "dev", dev, "nodad"])
        } else {
            ip(&["-n", ns, "addr", "add", cidr, "dev", dev])
        }
    }

    /// The default route of namespace `ns` via `gateway`.
    pub fn default_route(&self, ns: &str, gateway: &str) -> Result<(), String> {
        ip(&["-n", ns, "route", "add", "default", "via", gateway])
    }

    /// Turns on IPv4 forwarding in namespace `ns` (a router or the public hub).
    pub fn forwarding(&self, ns: &str) -> Result<(), String> {
        ip(&[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
    }

    /// Makes namespace `ns` a NAT router of kind `nat` ([`Nat::ruleset`]): forwarding on,
    /// interfaces named `wan` and `lan`, `host` the LAN host's address. Needs `nft`.
    pub fn router(&self, ns: &str, nat: Nat, host: &str) -> Result<(), String> {
        self.forwarding(ns)?;
        self.nft(ns, &nat.ruleset(host))
    }

    /// Loads an nftables ruleset (`nft -f -` syntax) in namespace `ns`. Its tables go with
    /// the namespace.
    pub fn nft(&self, ns: &str, rules: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nft: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(rules.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft in {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A command that runs `program` in namespace `ns` (`ip netns exec NS PROGRAM`); add
    /// arguments and spawn it as usual.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// Runs `program` with `args` in namespace `ns` to completion; its stdout, or an error.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for mut delay in self.delays.drain(..) {
            let _ = delay.kill();
            let _ = delay.wait();
        }
        for name in self.names.iter().rev() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
