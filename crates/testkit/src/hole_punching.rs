//! The hole-punching testbeds of the NAT tests (`crates/node/tests/nat.rs` and
//! `interop/tests/nat.rs`): two hosts behind their own routers, a public namespace between
//! the routers for the relay.
//!
//! IPv4, with NAT routers ([`testbed_v4`]; [`testbed_v4_delayed`] adds a round-trip time
//! on the links between the routers and `p`):
//!
//! ```text
//!  A 10.0.1.2 ── 10.0.1.1 [router ra] 11.0.1.2 ── 11.0.1.1 [p] 11.0.2.1 ── 11.0.2.2 [router rb] 10.0.2.1 ── 10.0.2.2 B
//! ```
//!
//! IPv6, no translation, stateful firewalls ([`testbed_v6`]; [`testbed_v6_delayed`] adds a
//! round-trip time as on IPv4): every host has a global
//! address and a router with a firewall lets in only what belongs to a connection its LAN
//! started, as IPv6 home routers do:
//!
//! ```text
//!  A 2001:db8:11::2 ── [router ra] 2001:db8:1::2 ── 2001:db8:1::1 [p] 2001:db8:2::1 ── 2001:db8:2::2 [router rb] ── 2001:db8:22::2 B
//! ```
//!
//! Namespaces are named by role: `p`, `ra`, `rb`, `a`, `b` ([`Netns::name`]).

use std::time::Duration;

use crate::netns::{Nat, Netns, run};

/// A's address in [`testbed_v4`] as the public side sees it: its router's WAN address.
pub const A_PUBLIC_V4: &str = "11.0.1.2";
/// The relay's address in [`testbed_v4`] (namespace `p`).
pub const RELAY_V4: &str = "11.0.1.1";
/// A's address in [`testbed_v6`] (global: no translation).
pub const A_V6: &str = "2001:db8:11::2";
/// The relay's address in [`testbed_v6`] (namespace `p`).
pub const RELAY_V6: &str = "2001:db8:1::1";

/// The IPv4 testbed with routers of the given kinds; `prefix` starts its namespaces' names
/// (cases that run at the same time use different ones).
pub fn testbed_v4(prefix: &str, nat_a: Nat, nat_b: Nat) -> Result<Netns, String> {
    testbed_v4_delayed(prefix, nat_a, nat_b, Duration::ZERO)
}

/// [`testbed_v4`] with a one-way delay of `wan_one_way` on the links between each router
/// and the public namespace ([`Netns::delayed_link`]; plain links when zero).
///
/// Every path between the peers then crosses both delays once: A to B directly and A to B
/// through the relay alike take `4 * wan_one_way` per round trip, so the relayed and the
/// direct round trip are equal (a relay close to the path between the peers), and
/// `2 * wan_one_way` is the round trip from either host to the relay. Each host reaches its
/// own router at once, as on a real LAN: a packet leaving A passes A's NAT before anything
/// sent at the same time from B can reach it.
pub fn testbed_v4_delayed(
    prefix: &str,
    nat_a: Nat,
    nat_b: Nat,
    wan_one_way: Duration,
) -> Result<Netns, String> {
    run("nft", &["--version"])?;
    let mut bed = Netns::new(prefix)?;
    let public = bed.add("p")?;
    let (ra, rb) = (bed.add("ra")?, bed.add("rb")?);
    let (a, b) = (bed.add("a")?, bed.add("b")?);
    for (dev, hub, router, wan) in [
        ("pa", "11.0.1.1/24", &ra, "11.0.1.2/24"),
        ("pb", "11.0.2.1/24", &rb, "11.0.2.2/24"),
    ] {
        bed.delayed_link(&public, dev, hub, router, "wan", wan, wan_one_way)?;
    }
    bed.link(&ra, "lan", "10.0.1.1/24", &a, "eth0", "10.0.1.2/24")?;
    bed.link(&rb, "lan", "10.0.2.1/24", &b, "eth0", "10.0.2.2/24")?;
    bed.forwarding(&public)?;
    bed.default_route(&ra, "11.0.1.1")?;
    bed.default_route(&rb, "11.0.2.1")?;
    bed.default_route(&a, "10.0.1.1")?;
    bed.default_route(&b, "10.0.2.1")?;
    bed.router(&ra, nat_a, "10.0.1.2")?;
    bed.router(&rb, nat_b, "10.0.2.2")?;
    Ok(bed)
}

/// The stateful IPv6 firewall of a router (interfaces `lan` and `wan`): outbound allowed,
/// inbound only what belongs to a connection the LAN started.
pub const FIREWALL6: &str = "table ip6 lp2p_fw {
    chain input {
        type filter hook input priority filter; policy drop;
        iifname \"lo\" accept
        iifname \"lan\" accept
        ct state established,related accept
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        iifname \"lan\" accept
        ct state established,related accept
        icmpv6 type { packet-too-big, destination-unreachable, time-exceeded } accept
    }
}";

/// The IPv6 testbed; `firewall_a` and `firewall_b` put [`FIREWALL6`] on each router.
pub fn testbed_v6(prefix: &str, firewall_a: bool, firewall_b: bool) -> Result<Netns, String> {
    testbed_v6_delayed(prefix, firewall_a, firewall_b, Duration::ZERO)
}

/// [`testbed_v6`] with a one-way delay of `wan_one_way` on the links between each router and
/// the public namespace, as in [`testbed_v4_delayed`].
pub fn testbed_v6_delayed(
    prefix: &str,
    firewall_a: bool,
    firewall_b: bool,
    wan_one_way: Duration,
) -> Result<Netns, String> {
    run("nft", &["--version"])?;
    let mut bed = Netns::new(prefix)?;
    let public = bed.add("p")?;
    let (ra, rb) = (bed.add("ra")?, bed.add("rb")?);
    let (a, b) = (bed.add("a")?, bed.add("b")?);
    for (dev, hub, router, wan) in [
        ("pa", "2001:db8:1::1/64", &ra, "2001:db8:1::2/64"),
        ("pb", "2001:db8:2::1/64", &rb, "2001:db8:2::2/64"),
    ] {
        bed.delayed_link(&public, dev, hub, router, "wan", wan, wan_one_way)?;
    }
    bed.link(
        &ra,
        "lan",
        "2001:db8:11::1/64",
        &a,
        "eth0",
        "2001:db8:11::2/64",
    )?;
    bed.link(
        &rb,
        "lan",
        "2001:db8:22::1/64",
        &b,
        "eth0",
        "2001:db8:22::2/64",
    )?;
    let route = |ns: &str, dest: &str, via: &str| {
        bed.exec(ns, "ip", &["-6", "route", "add", dest, "via", via])
            .map(drop)
    };
    route(&public, "2001:db8:11::/64", "2001:db8:1::2")?;
    route(&public, "2001:db8:22::/64", "2001:db8:2::2")?;
    route(&ra, "default", "2001:db8:1::1")?;
    route(&rb, "default", "2001:db8:2::1")?;
    route(&a, "default", "2001:db8:11::1")?;
    route(&b, "default", "2001:db8:22::1")?;
    for (ns, firewall) in [(&public, false), (&ra, firewall_a), (&rb, firewall_b)] {
        bed.exec(ns, "sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"])?;
        if firewall {
            bed.nft(ns, FIREWALL6)?;
        }
    }
    Ok(bed)
}
