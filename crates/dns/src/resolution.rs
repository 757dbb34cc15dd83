//! The sans-IO resolution of one address: which lookups to make, in which order, and what
//! their answers turn the address into. No socket, no task, no clock.
//!
//! ```text
//! /dnsaddr/example.com/p2p/QmA  --TXT _dnsaddr.example.com-->  dnsaddr=/dns4/a.example.com/tcp/1/p2p/QmA
//!                                                             dnsaddr=/ip4/1.2.3.4/tcp/2/p2p/QmB (dropped: other suffix)
//! /dns4/a.example.com/tcp/1/p2p/QmA  --A a.example.com-->  /ip4/5.6.7.8/tcp/1/p2p/QmA
//! ```
//! Addresses are resolved depth first, so results keep the order of the records that led to
//! them. Each lookup counts against [`Limits::max_lookups`]; each TXT answer contributes at
//! most [`Limits::max_txt_records`] matching records.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;

use lp2p_core::{Multiaddr, PeerId, Protocol};

use crate::DnsError;
use crate::dnsaddr::{DNSADDR_PREFIX, parse_txt};

/// Most DNS lookups for one address: 32, as rust-libp2p's `libp2p-dns` (enough for a
/// bootstrap list of 16 nodes two levels deep).
pub const MAX_LOOKUPS: usize = 32;

/// Most `dnsaddr` records used from one TXT answer: 16, as `libp2p-dns` (the public
/// bootstrap lists publish 4 to 8).
pub const MAX_TXT_RECORDS: usize = 16;

/// Most addresses one resolution yields: 64. The swarm dials at most 3 at a time within its
/// dial timeout, so more would never be tried; a name with a thousand A records costs a
/// bounded list.
pub const MAX_RESULTS: usize = 64;

/// The bounds of one resolution (see the constants for the defaults and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lookups per address ([`MAX_LOOKUPS`]).
    pub max_lookups: usize,
    /// Matching records used per TXT answer ([`MAX_TXT_RECORDS`]).
    pub max_txt_records: usize,
    /// Addresses per resolution ([`MAX_RESULTS`]).
    pub max_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lookups: MAX_LOOKUPS,
            max_txt_records: MAX_TXT_RECORDS,
            max_results: MAX_RESULTS,
        }
    }
}

/// What to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// A and AAAA (for `/dns`): IPv4 addresses first, then IPv6.
    Ip,
    /// A (for `/dns4`).
    Ip4,
    /// AAAA (for `/dns6`).
    Ip6,
    /// TXT (for `/dnsaddr`, at `_dnsaddr.NAME`).
    Txt,
}

impl QueryKind {
    /// The record type(s), for messages.
    pub fn label(self) -> &'static str {
        match self {
            QueryKind::Ip => "A/AAAA",
            QueryKind::Ip4 => "A",
            QueryKind::Ip6 => "AAAA",
            QueryKind::Txt => "TXT",
        }
    }
}

/// One DNS lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The record type(s).
    pub kind: QueryKind,
    /// The name, lowercase (`_dnsaddr.` already prepended for TXT).
    pub name: String,
}

/// The records a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses, in answer order (IPv4 before IPv6 for [`QueryKind::Ip`]).
    Ips(Vec<IpAddr>),
    /// TXT records, each as its character-strings.
    Txt(Vec<Vec<Vec<u8>>>),
}

/// What the resolution needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look this up and call [`Resolution::on_answer`] with the outcome.
    Lookup(Query),
    /// Finished: the addresses, or why there are none.
    Done(Result<Vec<Multiaddr>, DnsError>),
}

/// The resolution of one address.
#[derive(Debug)]
pub struct Resolution {
    original: Multiaddr,
    limits: Limits,
    peer: Option<PeerId>,
    work: VecDeque<Multiaddr>,
    waiting: Option<Waiting>,
    lookups: usize,
    results: Vec<Multiaddr>,
    errors: Vec<DnsError>,
    too_many: bool,
}

#[derive(Debug)]
struct Waiting {
    addr: Multiaddr,
    index: usize,
    query: Query,
}

/// Whether this address contains a name to resolve.
pub fn has_name(addr: &Multiaddr) -> bool {
    first_name(addr).is_some()
}

/// The first name component of `addr` and its index.
fn first_name(addr: &Multiaddr) -> Option<(usize, Protocol<'_>)> {
    addr.iter().enumerate().find(|(_, p)| {
        matches!(
            p,
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_)
        )
    })
}

fn query_for(p: &Protocol<'_>) -> Option<Query> {
    let (kind, name) = match p {
        Protocol::Dns(n) => (QueryKind::Ip, n.to_ascii_lowercase()),
        Protocol::Dns4(n) => (QueryKind::Ip4, n.to_ascii_lowercase()),
        Protocol::Dns6(n) => (QueryKind::Ip6, n.to_ascii_lowercase()),
        Protocol::Dnsaddr(n) => (
            QueryKind::Txt,
            format!("{DNSADDR_PREFIX}{}", n.to_ascii_lowercase()),
        ),
        _ => return None,
    };
    Some(Query { kind, name })
}

impl Resolution {
    /// Starts resolving `addr`. A trailing `/p2p/ID` makes every result carry it: results
    /// that name another peer are dropped.
    pub fn new(addr: Multiaddr, limits: Limits) -> Resolution {
        let peer = lp2p_core::addr::peer_id(&addr);
        Resolution {
            work: VecDeque::from([addr.clone()]),
            original: addr,
            limits,
            peer,
            waiting: None,
            lookups: 0,
            results: Vec::new(),
            errors: Vec::new(),
            too_many: false,
        }
    }

    /// Lookups made so far.
    pub fn lookups(&self) -> usize {
        self.lookups
    }

    /// The next lookup to make, or the outcome. Asking again before answering repeats the
    /// same lookup.
    pub fn poll(&mut self) -> Step {
        if let Some(waiting) = &self.waiting {
            return Step::Lookup(waiting.query.clone());
        }
        while let Some(addr) = self.work.pop_front() {
            if self.results.len() >= self.limits.max_results {
                break;
            }
            let Some((index, proto)) = first_name(&addr) else {
                self.add_result(addr);
                continue;
            };
            let Some(query) = query_for(&proto) else {
                continue;
            };
            if self.lookups >= self.limits.max_lookups {
                if !self.too_many {
                    tracing::debug!(addr = %self.original, "too many DNS lookups; dropping the rest");
                    self.too_many = true;
                    self.errors.push(DnsError::TooManyLookups {
                        max: self.limits.max_lookups,
                    });
                }
                continue;
            }
            self.lookups += 1;
            self.waiting = Some(Waiting {
                addr,
                index,
                query: query.clone(),
            });
            return Step::Lookup(query);
        }
        Step::Done(self.outcome())
    }

    /// Feeds the outcome of the lookup [`poll`](Resolution::poll) asked for.
    pub fn on_answer(&mut self, answer: Result<Answer, DnsError>) {
        let Some(Waiting { addr, index, query }) = self.waiting.take() else {
            return;
        };
        let expanded = match answer {
            Err(err) => {
                tracing::debug!(name = %query.name, %err, "DNS lookup failed");
                self.errors.push(err);
                return;
            }
            Ok(Answer::Ips(ips)) => expand_ips(&addr, index, &ips),
            Ok(Answer::Txt(records)) => match self.expand_txt(&addr, index, &query, &records) {
                Ok(expanded) => expanded,
                Err(err) => {
                    self.errors.push(err);
                    return;
                }
            },
        };
        // Depth first: the new addresses go before the rest, in their order.
        for a in expanded.into_iter().rev() {
            self.work.push_front(a);
        }
    }

    fn expand_txt(
        &self,
        addr: &Multiaddr,
        index: usize,
        query: &Query,
        records: &[Vec<Vec<u8>>],
    ) -> Result<Vec<Multiaddr>, DnsError> {
        let prefix: Multiaddr = addr.iter().take(index).collect();
        let suffix: Multiaddr = addr.iter().skip(index + 1).collect();
        let mut out = Vec::new();
        for record in records {
            let found = match parse_txt(record) {
                Ok(found) => found,
                Err(err) => {
                    tracing::trace!(name = %query.name, %err, "skipping a TXT record");
                    continue;
                }
            };
            if !found.ends_with(&suffix) {
                continue;
            }
            if out.len() >= self.limits.max_txt_records {
                tracing::debug!(name = %query.name, dropped = %found, "too many dnsaddr records; dropping");
                continue;
            }
            out.push(prefix.iter().chain(found.iter()).collect());
        }
        if out.is_empty() {
            return Err(DnsError::NoMatchingRecords {
                name: query
                    .name
                    .strip_prefix(DNSADDR_PREFIX)
                    .unwrap_or(&query.name)
                    .to_owned(),
                suffix: suffix.to_string(),
            });
        }
        Ok(out)
    }

    fn add_result(&mut self, addr: Multiaddr) {
        if let Some(peer) = self.peer
            && lp2p_core::addr::peer_id(&addr).is_some_and(|p| p != peer)
        {
            tracing::debug!(%addr, "dropping a resolved address of another peer");
            return;
        }
        let addr = match self.peer {
            Some(peer) if lp2p_core::addr::peer_id(&addr).is_none() => {
                lp2p_core::addr::with_peer_id(&addr, peer)
            }
            _ => addr,
        };
        if !self.results.contains(&addr) && self.results.len() < self.limits.max_results {
            self.results.push(addr);
        }
    }

    fn outcome(&mut self) -> Result<Vec<Multiaddr>, DnsError> {
        if !self.results.is_empty() {
            return Ok(std::mem::take(&mut self.results));
        }
        let mut errors = std::mem::take(&mut self.errors);
        Err(match errors.len() {
            0 => DnsError::NoAddresses {
                addr: self.original.clone(),
            },
            1 => errors.remove(0),
            _ => DnsError::Several(errors),
        })
    }
}

/// `addr` with its name at `index` replaced by each IP. A name followed by `/tls/ws` (or
/// `/wss`) keeps it as `/tls/sni/NAME/ws`, so the TLS client sends it and checks the
/// certificate against it.
fn expand_ips(addr: &Multiaddr, index: usize, ips: &[IpAddr]) -> Vec<Multiaddr> {
    let parts: Vec<Protocol<'_>> = addr.iter().collect();
    let name = match parts.get(index) {
        Some(Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n)) => n.to_string(),
        _ => return Vec::new(),
    };
    let want = parts.get(index).cloned();
    ips.iter()
        .filter(|ip| match want {
            Some(Protocol::Dns4(_)) => ip.is_ipv4(),
            Some(Protocol::Dns6(_)) => ip.is_ipv6(),
            _ => true,
        })
        .map(|ip| {
            let mut out = Multiaddr::empty();
            let mut iter = parts.iter().enumerate().peekable();
            while let Some((i, p)) = iter.next() {
                if i == index {
                    out.push(match ip {
                        IpAddr::V4(v4) => Protocol::Ip4(*v4),
                        IpAddr::V6(v6) => Protocol::Ip6(*v6),
                    });
                    continue;
                }
                match p {
                    Protocol::Tls if i > index => {
                        out.push(Protocol::Tls);
                        let next_is_ws = matches!(iter.peek(), Some((_, Protocol::Ws(_))));
                        if next_is_ws {
                            out.push(Protocol::Sni(Cow::Owned(name.clone())));
                        }
                    }
                    Protocol::Wss(path) if i > index => {
                        out.push(Protocol::Tls);
                        out.push(Protocol::Sni(Cow::Owned(name.clone())));
                        out.push(Protocol::Ws(path.clone()));
                    }
                    other => out.push(other.clone()),
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    const A: &str = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN";
    const B: &str = "QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb";

    fn txt(records: &[&str]) -> Answer {
        Answer::Txt(
            records
                .iter()
                .map(|r| vec![format!("dnsaddr={r}").into_bytes()])
                .collect(),
        )
    }

    /// Drives a resolution against a table of answers.
    fn run(
        addr: &str,
        limits: Limits,
        answer: impl Fn(&Query) -> Result<Answer, DnsError>,
    ) -> (Result<Vec<Multiaddr>, DnsError>, Vec<Query>) {
        let mut r = Resolution::new(ma(addr), limits);
        let mut asked = Vec::new();
        loop {
            match r.poll() {
                Step::Lookup(q) => {
                    assert_eq!(r.poll(), Step::Lookup(q.clone()), "poll repeats");
                    asked.push(q.clone());
                    r.on_answer(answer(&q));
                }
                Step::Done(out) => return (out, asked),
            }
        }
    }

    fn ips(list: &[&str]) -> Answer {
        Answer::Ips(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn the_spec_example() {
        let (out, asked) = run(
            &format!("/dnsaddr/bootstrap.libp2p.io/p2p/{A}"),
            Limits::default(),
            |q| {
                Ok(match q.name.as_str() {
                    "_dnsaddr.bootstrap.libp2p.io" => txt(&[
                        &format!("/dnsaddr/ams-2.bootstrap.libp2p.io/tcp/4001/p2p/{B}"),
                        &format!("/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/4001/p2p/{A}"),
                    ]),
                    "_dnsaddr.sjc-1.bootstrap.libp2p.io" => txt(&[
                        &format!("/ip4/147.75.69.143/tcp/4001/p2p/{A}"),
                        &format!("/ip6/2604:1380:1000:6000::1/tcp/4001/p2p/{A}"),
                    ]),
                    other => panic!("unexpected lookup {other}"),
                })
            },
        );
        assert_eq!(
            out.unwrap(),
            vec![
                ma(&format!("/ip4/147.75.69.143/tcp/4001/p2p/{A}")),
                ma(&format!("/ip6/2604:1380:1000:6000::1/tcp/4001/p2p/{A}")),
            ]
        );
        assert_eq!(
            asked.len(),
            2,
            "ams-2 is never looked up: its suffix differs"
        );
    }

    #[test]
    fn dns_names_become_ips_and_keep_sni() {
        let answer = |q: &Query| {
            Ok(match q.kind {
                QueryKind::Ip => ips(&["1.2.3.4", "::1"]),
                QueryKind::Ip4 => ips(&["1.2.3.4"]),
                QueryKind::Ip6 => ips(&["::1"]),
                QueryKind::Txt => unreachable!(),
            })
        };
        let (out, asked) = run("/dns/Example.COM/tcp/443/tls/ws", Limits::default(), answer);
        assert_eq!(asked[0].name, "example.com");
        assert_eq!(
            out.unwrap(),
            vec![
                ma("/ip4/1.2.3.4/tcp/443/tls/sni/Example.COM/ws"),
                ma("/ip6/::1/tcp/443/tls/sni/Example.COM/ws"),
            ]
        );
        let (out, _) = run("/dns4/example.com/tcp/443/wss", Limits::default(), answer);
        assert_eq!(
            out.unwrap(),
            vec![ma("/ip4/1.2.3.4/tcp/443/tls/sni/example.com/ws")]
        );
        // An explicit SNI is kept as it is; plain ws and tcp have none.
        let (out, _) = run(
            "/dns6/a.com/tcp/1/tls/sni/b.com/ws",
            Limits::default(),
            answer,
        );
        assert_eq!(out.unwrap(), vec![ma("/ip6/::1/tcp/1/tls/sni/b.com/ws")]);
        let (out, _) = run(
            &format!("/dns4/a.com/tcp/1/ws/p2p/{A}"),
            Limits::default(),
            answer,
        );
        assert_eq!(
            out.unwrap(),
            vec![ma(&format!("/ip4/1.2.3.4/tcp/1/ws/p2p/{A}"))]
        );
    }

    #[test]
    fn records_for_another_peer_are_filtered() {
        let (out, _) = run(&format!("/dnsaddr/x.io/p2p/{A}"), Limits::default(), |_| {
            Ok(txt(&[
                &format!("/ip4/1.1.1.1/tcp/1/p2p/{B}"),
                "/ip4/2.2.2.2/tcp/1",
            ]))
        });
        let err = out.unwrap_err();
        assert!(
            matches!(err, DnsError::NoMatchingRecords { ref name, .. } if name == "x.io"),
            "{err}"
        );
        // Without a peer id every record matches, and results naming different peers are
        // all kept.
        let (out, _) = run("/dnsaddr/x.io", Limits::default(), |_| {
            Ok(txt(&[
                &format!("/ip4/1.1.1.1/tcp/1/p2p/{B}"),
                "/ip4/2.2.2.2/tcp/1",
            ]))
        });
        assert_eq!(out.unwrap().len(), 2);
    }

    #[test]
    fn a_loop_stops_at_the_lookup_limit() {
        let (out, asked) = run("/dnsaddr/loop.io", Limits::default(), |_| {
            Ok(txt(&["/dnsaddr/loop.io", "/dnsaddr/loop.io"]))
        });
        assert_eq!(
            out.unwrap_err(),
            DnsError::TooManyLookups { max: MAX_LOOKUPS }
        );
        assert_eq!(asked.len(), MAX_LOOKUPS);
    }

    #[test]
    fn breadth_is_bounded() {
        let records: Vec<String> = (0..100).map(|i| format!("/ip4/10.0.0.{i}/tcp/1")).collect();
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        let (out, _) = run("/dnsaddr/wide.io", Limits::default(), |_| Ok(txt(&refs)));
        let out = out.unwrap();
        assert_eq!(out.len(), MAX_TXT_RECORDS);
        assert_eq!(out[0], ma("/ip4/10.0.0.0/tcp/1"));
        // And so is the number of results, whatever the records expand to.
        let many: Vec<String> = (0..200)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (out, _) = run("/dns4/big.io/tcp/1", Limits::default(), |_| Ok(ips(&many)));
        assert_eq!(out.unwrap().len(), MAX_RESULTS);
    }

    #[test]
    fn partial_failures_keep_what_resolved_and_total_failures_say_why() {
        let (out, _) = run("/dnsaddr/mixed.io", Limits::default(), |q| {
            match q.name.as_str() {
                "_dnsaddr.mixed.io" => Ok(txt(&["/dns4/gone.io/tcp/1", "/dns4/ok.io/tcp/2"])),
                "gone.io" => Err(DnsError::NoRecords {
                    name: "gone.io".into(),
                    kind: "A",
                }),
                _ => Ok(ips(&["9.9.9.9"])),
            }
        });
        assert_eq!(out.unwrap(), vec![ma("/ip4/9.9.9.9/tcp/2")]);

        let (out, _) = run("/dnsaddr/bad.io", Limits::default(), |q| {
            match q.name.as_str() {
                "_dnsaddr.bad.io" => Ok(txt(&["/dns4/a.io/tcp/1", "/dns4/b.io/tcp/2"])),
                name => Err(DnsError::Timeout {
                    name: name.into(),
                    kind: "A",
                }),
            }
        });
        let err = out.unwrap_err();
        assert!(
            matches!(err, DnsError::Several(ref e) if e.len() == 2),
            "{err}"
        );
        assert!(err.to_string().contains("a.io") && err.to_string().contains("b.io"));

        let (out, _) = run("/dns4/nx.io/tcp/1", Limits::default(), |_| {
            Err(DnsError::NoRecords {
                name: "nx.io".into(),
                kind: "A",
            })
        });
        assert_eq!(out.unwrap_err().to_string(), "no A record for nx.io");
    }

    #[test]
    fn addresses_without_names_pass_through() {
        let (out, asked) = run("/ip4/1.2.3.4/tcp/5", Limits::default(), |_| unreachable!());
        assert_eq!(out.unwrap(), vec![ma("/ip4/1.2.3.4/tcp/5")]);
        assert!(asked.is_empty());
        assert!(!has_name(&ma("/ip4/1.2.3.4/tcp/5")));
        assert!(!has_name(&ma("/ip4/1.2.3.4/tcp/5/tls/sni/x.io/ws")));
        assert!(has_name(&ma("/dnsaddr/x.io")));
    }
}
