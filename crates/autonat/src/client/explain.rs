//! Why an address is, or is not, confirmed: [`Explanation`], what
//! [`AutonatClient::explain`](crate::AutonatClient::explain) answers. Pure: the shell gathers
//! the facts (the core's [`CandidateReport`], the host's external addresses, the servers
//! connected), [`Explanation::new`] turns them into one sentence a user can act on.

use std::fmt::{self, Write as _};

use lp2p_core::addr::{first_ip, is_public_ip};
use lp2p_core::{Multiaddr, Protocol};

use crate::client::core::{CandidateReport, Reachability};

/// Why an address is not one the client tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTracked {
    /// It names no literal IP (a DNS name, a memory address): servers dial IPs.
    NoIp,
    /// `0.0.0.0` or `::`: a listening wildcard names no host; its interface addresses are
    /// tested instead.
    Unspecified,
    /// A `/p2p-circuit` address: the relay's, not ours to test.
    Relayed,
    /// A loopback or private IP, which no server on the internet can dial (test networks
    /// use [`AutonatClient::new_allowing_private_addrs`](crate::AutonatClient::new_allowing_private_addrs)).
    PrivateIp,
    /// The candidate list is full ([`ClientConfig::max_candidates`](crate::ClientConfig::max_candidates)).
    ListFull,
    /// Neither a listen address, an external address nor one where peers see us;
    /// [`AutonatClient::add_candidate`](crate::AutonatClient::add_candidate) tracks it.
    NotOurs,
}

impl NotTracked {
    /// Why `addr` would not be a candidate by its form alone, or `None` when it could be
    /// one. `allow_private`: loopback and private IPs are candidates too.
    pub fn by_form(addr: &Multiaddr, allow_private: bool) -> Option<NotTracked> {
        let Some(ip) = first_ip(addr) else {
            return Some(NotTracked::NoIp);
        };
        if ip.is_unspecified() {
            return Some(NotTracked::Unspecified);
        }
        if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return Some(NotTracked::Relayed);
        }
        if !allow_private && !is_public_ip(ip) {
            return Some(NotTracked::PrivateIp);
        }
        None
    }

    fn sentence(self) -> &'static str {
        match self {
            NotTracked::NoIp => "it names no literal IP, and servers dial IPs",
            NotTracked::Unspecified => {
                "a wildcard (0.0.0.0 or ::) names no host; the addresses of its interfaces are tested instead"
            }
            NotTracked::Relayed => "a relayed address is the relay's, not ours to test",
            NotTracked::PrivateIp => {
                "a loopback or private IP cannot be dialed from the internet (test networks allow them explicitly)"
            }
            NotTracked::ListFull => "the candidate list is full (max_candidates)",
            NotTracked::NotOurs => {
                "it is neither a listen address, an external address nor one where peers see us (add_candidate tracks it)"
            }
        }
    }
}

/// Why an address has the status it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The address asked about (its `/p2p` suffix dropped).
    pub addr: Multiaddr,
    /// Its verdict (`Unknown` when not tracked).
    pub status: Reachability,
    /// What the client knows, when it tracks the address.
    pub report: Option<CandidateReport>,
    /// Why it is not tracked, when it is not.
    pub not_tracked: Option<NotTracked>,
    /// Whether the host advertises it as an external address now.
    pub external: bool,
    /// Connected peers that serve AutoNAT v2 (and, apart, v1 only) now.
    pub servers: (usize, usize),
    /// The whole answer in one sentence.
    pub reason: String,
}

impl Explanation {
    /// Puts the facts together and words them.
    pub fn new(
        addr: Multiaddr,
        report: Option<CandidateReport>,
        not_tracked: Option<NotTracked>,
        external: bool,
        servers: (usize, usize),
    ) -> Explanation {
        let status = report.as_ref().map_or(Reachability::Unknown, |r| r.status);
        let reason = word(report.as_ref(), not_tracked, external, servers);
        Explanation {
            addr,
            status,
            report,
            not_tracked,
            external,
            servers,
            reason,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.addr,
            self.status.as_str(),
            self.reason
        )
    }
}

fn word(
    report: Option<&CandidateReport>,
    not_tracked: Option<NotTracked>,
    external: bool,
    (v2, v1): (usize, usize),
) -> String {
    let Some(r) = report else {
        let why = not_tracked.unwrap_or(NotTracked::NotOurs).sentence();
        let mut s = format!("not tested: {why}");
        if external {
            s.push_str("; it is advertised as an external address all the same (configured, or confirmed by another service)");
        }
        return s;
    };
    let (yes, no, need) = (r.reachable_by.len(), r.unreachable_by.len(), r.confidence);
    let mut s = match r.status {
        Reachability::Public => format!(
            "{yes} distinct {} reached it by dialing back and {no} could not; {need} agreeing and outnumbering the rest make a verdict",
            servers(yes)
        ),
        Reachability::Private => format!(
            "{no} distinct {} could not reach it and {yes} could; {need} agreeing and outnumbering the rest make a verdict",
            servers(no)
        ),
        Reachability::Unknown if yes + no == 0 => {
            if v2 + v1 == 0 {
                "not tested yet: no connected peer serves AutoNAT (v2 or v1)".to_owned()
            } else if r.last_probed.is_some() {
                "no verdict yet: every probe so far ended without one".to_owned()
            } else {
                format!(
                    "not tested yet: {v2} v2 and {v1} v1 {} connected; probes run one at a time",
                    servers(v2 + v1)
                )
            }
        }
        Reachability::Unknown => format!(
            "no verdict yet: {yes} reachable and {no} unreachable answers from distinct servers; a verdict needs {need} agreeing and outnumbering the rest"
        ),
    };
    if let Some((server, why)) = &r.last_inconclusive {
        let _ = write!(s, "; the last probe without a verdict ({server}): {why}");
    }
    if let Some(ago) = r.last_probed {
        let _ = write!(s, "; last probed {}s ago", ago.as_secs());
    }
    match (r.status, external) {
        (Reachability::Public, true) => s.push_str("; advertised as an external address"),
        (Reachability::Public, false) => {
            s.push_str("; not advertised (update_external_addrs is off, or it was removed)");
        }
        (_, true) => s.push_str(
            "; advertised as an external address all the same (configured, or confirmed by another service)",
        ),
        _ => {}
    }
    s
}

fn servers(n: usize) -> &'static str {
    if n == 1 { "server" } else { "servers" }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lp2p_core::PeerId;

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn report(status: Reachability, yes: usize, no: usize) -> CandidateReport {
        CandidateReport {
            status,
            reachable_by: (0..yes).map(|_| PeerId::random()).collect(),
            unreachable_by: (0..no).map(|_| PeerId::random()).collect(),
            confidence: 3,
            last_probed: Some(Duration::from_secs(7)),
            last_inconclusive: None,
        }
    }

    #[test]
    fn addresses_that_cannot_be_candidates_say_why() {
        let cases = [
            ("/dns4/example.com/tcp/1", NotTracked::NoIp),
            ("/ip4/0.0.0.0/tcp/1", NotTracked::Unspecified),
            ("/ip4/192.168.1.2/tcp/1", NotTracked::PrivateIp),
            ("/ip4/127.0.0.1/tcp/1", NotTracked::PrivateIp),
        ];
        for (a, why) in cases {
            assert_eq!(NotTracked::by_form(&addr(a), false), Some(why), "{a}");
        }
        let relay = PeerId::random();
        let circuit = addr(&format!("/ip4/8.8.8.8/tcp/1/p2p/{relay}/p2p-circuit"));
        assert_eq!(
            NotTracked::by_form(&circuit, false),
            Some(NotTracked::Relayed)
        );
        assert_eq!(
            NotTracked::by_form(&addr("/ip4/8.8.8.8/tcp/1"), false),
            None
        );
        assert_eq!(
            NotTracked::by_form(&addr("/ip4/127.0.0.1/tcp/1"), true),
            None
        );
        let e = Explanation::new(
            addr("/ip4/10.0.0.1/tcp/1"),
            None,
            Some(NotTracked::PrivateIp),
            false,
            (1, 0),
        );
        assert_eq!(e.status, Reachability::Unknown);
        assert!(
            e.reason.starts_with("not tested: a loopback or private IP"),
            "{e}"
        );
    }

    #[test]
    fn verdicts_name_the_votes_and_the_rule() {
        let e = Explanation::new(
            addr("/ip4/8.8.8.8/tcp/1"),
            Some(report(Reachability::Public, 3, 1)),
            None,
            true,
            (3, 0),
        );
        assert_eq!(e.status, Reachability::Public);
        assert!(
            e.reason.starts_with(
                "3 distinct servers reached it by dialing back and 1 could not; 3 agreeing"
            ),
            "{e}"
        );
        assert!(e.reason.contains("last probed 7s ago"), "{e}");
        assert!(
            e.reason.ends_with("advertised as an external address"),
            "{e}"
        );
        let e = Explanation::new(
            addr("/ip4/8.8.8.8/tcp/1"),
            Some(report(Reachability::Private, 0, 3)),
            None,
            false,
            (3, 0),
        );
        assert!(
            e.reason
                .starts_with("3 distinct servers could not reach it"),
            "{e}"
        );
        let e = Explanation::new(
            addr("/ip4/8.8.8.8/tcp/1"),
            Some(report(Reachability::Unknown, 2, 1)),
            None,
            false,
            (3, 0),
        );
        assert!(
            e.reason
                .starts_with("no verdict yet: 2 reachable and 1 unreachable"),
            "{e}"
        );
    }

    #[test]
    fn an_untested_address_says_what_it_waits_for() {
        let mut fresh = report(Reachability::Unknown, 0, 0);
        fresh.last_probed = None;
        let e = Explanation::new(
            addr("/ip4/8.8.8.8/tcp/1"),
            Some(fresh.clone()),
            None,
            false,
            (0, 0),
        );
        assert_eq!(
            e.reason,
            "not tested yet: no connected peer serves AutoNAT (v2 or v1)"
        );
        let e = Explanation::new(
            addr("/ip4/8.8.8.8/tcp/1"),
            Some(fresh.clone()),
            None,
            false,
            (0, 2),
        );
        assert!(
            e.reason
                .starts_with("not tested yet: 0 v2 and 2 v1 servers"),
            "{e}"
        );
        fresh.last_probed = Some(Duration::from_secs(1));
        let server = PeerId::random();
        fresh.last_inconclusive = Some((server, "the server answered EDialRefused".into()));
        let e = Explanation::new(addr("/ip4/8.8.8.8/tcp/1"), Some(fresh), None, false, (1, 0));
        assert!(
            e.reason.starts_with("no verdict yet: every probe so far"),
            "{e}"
        );
        assert!(
            e.reason
                .contains(&format!("({server}): the server answered EDialRefused")),
            "{e}"
        );
    }
}
