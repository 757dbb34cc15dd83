//! The libp2p mDNS messages (spec `discovery/mdns.md`): the find-all-peers query, our
//! responses (split into packets that fit the interface; multicast, or unicast to a legacy
//! querier as RFC 6762 §6.7 asks), and the announcements we read out of other peers'
//! responses.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::net::{Ipv4Addr, Ipv6Addr};

use lp2p_core::multiaddr::Protocol;
use lp2p_core::{Multiaddr, PeerId};

use crate::MdnsError;
use crate::config::META_QUERY_NAME;
use crate::wire::{
    CLASS_ANY, CLASS_IN, FLAG_AUTHORITATIVE, FLAG_RECURSION_DESIRED, FLAG_RESPONSE, Message,
    MessageWriter, Name, Question, RData, Record, Section, Srv, TYPE_A, TYPE_AAAA, TYPE_ANY,
    TYPE_PTR, TYPE_SRV, TYPE_TXT,
};

/// The prefix of a libp2p TXT string.
pub const DNSADDR_PREFIX: &str = "dnsaddr=";

/// Length of our random peer names: the spec asks for at least 32 characters, a DNS label
/// allows 63.
pub const PEER_NAME_MIN_LEN: usize = 32;
/// See [`PEER_NAME_MIN_LEN`].
pub const PEER_NAME_MAX_LEN: usize = 63;

/// The top-level domain of our host name (`<peer-name>.p2p.local`, spec: `host-name`).
const HOST_DOMAIN: &str = "p2p.local";

/// The longest TTL, in seconds, in a legacy unicast answer: RFC 6762 §6.7 says it SHOULD NOT
/// be over ten seconds whatever the record's real TTL, since a one-shot resolver caches it
/// like any unicast DNS answer and never hears the multicast goodbye or update that would
/// correct it.
pub const LEGACY_MAX_TTL: u32 = 10;

/// A random lower-case alphanumeric peer name of 32 to 63 characters, drawn from `next`.
pub fn random_peer_name(mut next: impl FnMut() -> u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let spread = u64::try_from(PEER_NAME_MAX_LEN.saturating_sub(PEER_NAME_MIN_LEN))
        .unwrap_or(0)
        .saturating_add(1);
    let extra = usize::try_from(next().checked_rem(spread).unwrap_or(0)).unwrap_or(0);
    let len = PEER_NAME_MIN_LEN.saturating_add(extra);
    let modulus = u64::try_from(ALPHABET.len()).unwrap_or(1);
    (0..len)
        .map(|_| {
            let i = usize::try_from(next().checked_rem(modulus).unwrap_or(0)).unwrap_or(0);
            char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
        })
        .collect()
}

/// The names we answer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNames {
    /// `_p2p._udp.local` (or the private network's service).
    pub service: Name,
    /// `_services._dns-sd._udp.local`.
    pub meta: Name,
    /// `<peer-name>.<service>`.
    pub instance: Name,
    /// `<peer-name>.p2p.local`.
    pub host: Name,
}

impl LocalNames {
    /// The names for `service_name` and our `peer_name`.
    pub fn new(service_name: &str, peer_name: &str) -> Result<LocalNames, MdnsError> {
        let service = Name::new(service_name)?;
        Ok(LocalNames {
            instance: service.prepend(peer_name)?,
            host: Name::new(HOST_DOMAIN)?.prepend(peer_name)?,
            meta: Name::new(META_QUERY_NAME)?,
            service,
        })
    }
}

/// The find-all-peers query: `<service> PTR`, id 0, no flags (RFC 6762 §18.1).
pub fn query(service: &Name) -> Result<Vec<u8>, MdnsError> {
    query_with_known_answers(service, &[], crate::config::MIN_PACKET_SIZE, 0).map(|(q, _)| q)
}

/// The find-all-peers query with a known-answer list (RFC 6762 §7.1): after the question,
/// `<service> PTR <instance>` answers for the peers in `known` (instance name, remaining TTL
/// in seconds), in that order, as many as fit in `limit` bytes and at most `max`. Responders
/// that already gave us these answers stay quiet. Returns the packet and how many known
/// answers it holds; the rest are left out (no TC bit, §7.2: their peers simply answer).
pub fn query_with_known_answers(
    service: &Name,
    known: &[(Name, u32)],
    limit: usize,
    max: usize,
) -> Result<(Vec<u8>, usize), MdnsError> {
    let mut writer = MessageWriter::new(0, 0, limit.max(crate::config::MIN_PACKET_SIZE));
    writer.question(&Question {
        name: service.clone(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })?;
    let mut included = 0usize;
    for (instance, ttl) in known.iter().take(max) {
        let record = Record {
            name: service.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: *ttl,
            data: RData::Ptr(instance.clone()),
        };
        match writer.record(Section::Answer, &record) {
            Ok(()) => included = included.saturating_add(1),
            Err(MdnsError::PacketFull { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Ok((writer.finish(), included))
}

/// Which of our answers the querier of `message` lists as known with at least half of
/// `own_ttl` left (RFC 6762 §7.1), so we leave them out: the find-all answer when its answer
/// section holds `<service> PTR <our instance>`, the meta answer for
/// `_services._dns-sd._udp.local PTR <service>`. Only the answer section counts, as the RFC
/// says; records of other types, names or classes, and PTRs to other targets are ignored.
/// One pass over the answers, which the parser caps
/// ([`MdnsConfig::max_records_per_packet`](crate::MdnsConfig::max_records_per_packet)).
pub fn known_answers(message: &Message, names: &LocalNames, own_ttl: u32) -> Wants {
    let mut known = Wants::default();
    if message.header.is_response() {
        return known;
    }
    let half_or_more = |ttl: u32| u64::from(ttl).saturating_mul(2) >= u64::from(own_ttl);
    for record in &message.answers {
        let RData::Ptr(target) = &record.data else {
            continue;
        };
        if record.class != CLASS_IN || !half_or_more(record.ttl) {
            continue;
        }
        if record.name == names.service && *target == names.instance {
            known.peers = true;
        } else if record.name == names.meta && *target == names.service {
            known.meta = true;
        }
    }
    known
}

/// What a query asks of us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// `<service> PTR`: every peer (the libp2p query).
    pub peers: bool,
    /// `_services._dns-sd._udp.local PTR`: which services run here.
    pub meta: bool,
    /// `<instance> TXT`.
    pub txt: bool,
    /// `<instance> SRV`.
    pub srv: bool,
    /// `<host> A`.
    pub a: bool,
    /// `<host> AAAA`.
    pub aaaa: bool,
}

impl Wants {
    /// Whether anything is asked of us.
    pub fn any(&self) -> bool {
        self.peers || self.meta || self.txt || self.srv || self.a || self.aaaa
    }

    /// These questions without those in `known` (answers the querier has already).
    #[must_use]
    pub fn without(self, known: Wants) -> Wants {
        Wants {
            peers: self.peers && !known.peers,
            meta: self.meta && !known.meta,
            txt: self.txt && !known.txt,
            srv: self.srv && !known.srv,
            a: self.a && !known.a,
            aaaa: self.aaaa && !known.aaaa,
        }
    }

    /// Both sets of questions.
    #[must_use]
    pub fn merge(self, other: Wants) -> Wants {
        Wants {
            peers: self.peers || other.peers,
            meta: self.meta || other.meta,
            txt: self.txt || other.txt,
            srv: self.srv || other.srv,
            a: self.a || other.a,
            aaaa: self.aaaa || other.aaaa,
        }
    }
}

/// The questions of `message` that are about us. Like rust-libp2p, a question for the
/// service name counts whatever its type (PTR or ANY in practice).
pub fn wants(message: &Message, names: &LocalNames) -> Wants {
    if message.header.is_response() {
        return Wants::default();
    }
    message.questions.iter().fold(Wants::default(), |wants, q| {
        wants.merge(question_wants(q, names))
    })
}

/// Whether every question of `message` that is about us has the unicast-response ("QU") bit
/// (RFC 6762 §5.4); false when none is about us. A query that mixes QU and QM questions for
/// us is answered by multicast, as the QM questions ask.
pub fn unicast_requested(message: &Message, names: &LocalNames) -> bool {
    if message.header.is_response() {
        return false;
    }
    let mut ours = message
        .questions
        .iter()
        .filter(|q| question_wants(q, names).any())
        .peekable();
    ours.peek().is_some() && ours.all(|q| q.unicast_response)
}

/// What one question asks of us.
fn question_wants(q: &Question, names: &LocalNames) -> Wants {
    let mut wants = Wants::default();
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return wants;
    }
    let is = |t: u16| q.qtype == t || q.qtype == TYPE_ANY;
    if q.name == names.service {
        wants.peers = true;
    } else if q.name == names.meta && is(TYPE_PTR) {
        wants.meta = true;
    } else if q.name == names.instance {
        wants.txt = is(TYPE_TXT);
        wants.srv = is(TYPE_SRV);
    } else if q.name == names.host {
        wants.a = is(TYPE_A);
        wants.aaaa = is(TYPE_AAAA);
    }
    wants
}

/// A query from a conventional ("legacy") resolver, one not sent from port 5353: what its
/// unicast answer repeats (RFC 6762 §6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyQuery {
    /// The query ID, echoed in the answer.
    pub id: u16,
    /// The query's RD bit, copied into the answer as a unicast DNS server does
    /// (RFC 1035 §4.1.1).
    pub recursion_desired: bool,
    /// The query's questions, as asked, repeated in every answer packet.
    pub questions: Vec<Question>,
}

impl LegacyQuery {
    /// What a legacy answer to `message` repeats of it.
    pub fn new(message: &Message) -> LegacyQuery {
        LegacyQuery {
            id: message.header.id,
            recursion_desired: message.header.flags & FLAG_RECURSION_DESIRED != 0,
            questions: message.questions.clone(),
        }
    }
}

/// What we announce on one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advert {
    /// `dnsaddr=<multiaddr>/p2p/<id>` strings, each at most 255 bytes.
    pub txt: Vec<Vec<u8>>,
    /// The interface's IPv4 addresses (for `<host> A`).
    pub ipv4: Vec<Ipv4Addr>,
    /// The interface's IPv6 addresses (for `<host> AAAA`).
    pub ipv6: Vec<Ipv6Addr>,
    /// The port for the SRV record: that of the first advertised address with one.
    pub port: Option<u16>,
}

impl Advert {
    /// The advert of these addresses (each ending in `/p2p/<id>`) and interface IPs. An
    /// address whose TXT string would be over 255 bytes cannot be announced; the second
    /// value counts them.
    pub fn new(addrs: &[Multiaddr], ipv4: Vec<Ipv4Addr>, ipv6: Vec<Ipv6Addr>) -> (Advert, usize) {
        let mut txt = Vec::with_capacity(addrs.len());
        let mut too_long = 0usize;
        for addr in addrs {
            let string = format!("{DNSADDR_PREFIX}{addr}");
            if string.len() > 255 {
                too_long = too_long.saturating_add(1);
                continue;
            }
            txt.push(string.into_bytes());
        }
        let port = addrs.iter().find_map(|a| {
            a.iter().find_map(|p| match p {
                Protocol::Tcp(port) | Protocol::Udp(port) => Some(port),
                _ => None,
            })
        });
        (
            Advert {
                txt,
                ipv4,
                ipv6,
                port,
            },
            too_long,
        )
    }
}

/// Our answers to `wants`, as packets of at most `limit` bytes each. Every packet that
/// carries TXT strings for the find-all query repeats the PTR answer, so each is understood
/// alone (rust-libp2p reads the TXT records only next to a PTR). Nothing is answered for the
/// find-all query while we have no address to announce on this interface.
///
/// These are mDNS answers, multicast or unicast to a QU question (RFC 6762 §5.4): ID 0 and
/// no question. A legacy querier gets [`legacy_responses`].
pub fn responses(
    names: &LocalNames,
    wants: Wants,
    advert: &Advert,
    ttl: u32,
    limit: usize,
) -> Result<Vec<Vec<u8>>, MdnsError> {
    let start = Start {
        id: 0,
        flags: FLAG_RESPONSE | FLAG_AUTHORITATIVE,
        questions: &[],
        limit,
    };
    build(names, wants, advert, ttl, &start)
}

/// Our answers to a legacy query (RFC 6762 §6.7), to send by unicast to where it came from:
/// those of [`responses`], but as a unicast DNS server answers: every packet echoes the
/// query's ID (and RD bit) and repeats its questions, and no TTL is over
/// [`LEGACY_MAX_TTL`]. No record has the cache-flush bit (§6.7 forbids it; we never set it).
pub fn legacy_responses(
    names: &LocalNames,
    wants: Wants,
    advert: &Advert,
    ttl: u32,
    limit: usize,
    query: &LegacyQuery,
) -> Result<Vec<Vec<u8>>, MdnsError> {
    let mut flags = FLAG_RESPONSE | FLAG_AUTHORITATIVE;
    if query.recursion_desired {
        flags |= FLAG_RECURSION_DESIRED;
    }
    let start = Start {
        id: query.id,
        flags,
        questions: &query.questions,
        limit,
    };
    build(names, wants, advert, ttl.min(LEGACY_MAX_TTL), &start)
}

/// How every packet of one answer starts: its header and the questions it repeats.
struct Start<'a> {
    id: u16,
    flags: u16,
    questions: &'a [Question],
    limit: usize,
}

impl Start<'_> {
    /// A new packet with the header and the repeated questions.
    fn packet(&self) -> Result<MessageWriter, MdnsError> {
        let mut w = MessageWriter::new(self.id, self.flags, self.limit);
        for q in self.questions {
            w.question(q)?;
        }
        Ok(w)
    }

    /// Whether `w` holds a record beyond the repeated questions.
    fn has_records(&self, w: &MessageWriter) -> bool {
        w.entries() > self.questions.len()
    }
}

/// The packets of one answer (see [`responses`]), each begun by `start`.
fn build(
    names: &LocalNames,
    wants: Wants,
    advert: &Advert,
    ttl: u32,
    start: &Start<'_>,
) -> Result<Vec<Vec<u8>>, MdnsError> {
    let mut packets = Vec::new();
    let limit = start.limit;
    let record = |name: &Name, data: RData| Record {
        name: name.clone(),
        class: CLASS_IN,
        cache_flush: false,
        ttl,
        data,
    };
    let ptr = record(&names.service, RData::Ptr(names.instance.clone()));
    let srv = advert.port.map(|port| {
        record(
            &names.instance,
            RData::Srv(Srv {
                priority: 0,
                weight: 0,
                port,
                target: names.host.clone(),
            }),
        )
    });
    let addresses: Vec<Record> = advert
        .ipv4
        .iter()
        .map(|ip| record(&names.host, RData::A(*ip)))
        .chain(
            advert
                .ipv6
                .iter()
                .map(|ip| record(&names.host, RData::Aaaa(*ip))),
        )
        .collect();

    if wants.peers && !advert.txt.is_empty() {
        let mut rest: &[Vec<u8>] = &advert.txt;
        let mut first = true;
        while !rest.is_empty() {
            let mut w = start.packet()?;
            w.record(Section::Answer, &ptr)?;
            let before = rest.len();
            rest = push_txt(&mut w, Section::Additional, &names.instance, ttl, rest)?;
            if first {
                // DNS-SD extras (spec "Find All Response"), where they fit.
                for extra in srv.iter().chain(addresses.iter()) {
                    let _ = w.record(Section::Additional, extra);
                }
                first = false;
            }
            if rest.len() == before {
                // Not even one string fitted beside the PTR: impossible with the minimum
                // packet size, but never loop on it.
                return Err(MdnsError::PacketFull {
                    len: w.len(),
                    limit,
                });
            }
            packets.push(w.finish());
        }
    }
    if wants.txt && !advert.txt.is_empty() {
        let mut rest: &[Vec<u8>] = &advert.txt;
        while !rest.is_empty() {
            let mut w = start.packet()?;
            let before = rest.len();
            rest = push_txt(&mut w, Section::Answer, &names.instance, ttl, rest)?;
            if rest.len() == before {
                return Err(MdnsError::PacketFull {
                    len: w.len(),
                    limit,
                });
            }
            packets.push(w.finish());
        }
    }
    let mut w = start.packet()?;
    if wants.meta {
        w.record(
            Section::Answer,
            &record(&names.meta, RData::Ptr(names.service.clone())),
        )?;
    }
    if wants.srv
        && let Some(srv) = &srv
    {
        w.record(Section::Answer, srv)?;
    }
    for a in &addresses {
        let asked = match a.data {
            RData::A(_) => wants.a,
            _ => wants.aaaa,
        };
        if asked {
            push_or_flush(&mut w, &mut packets, Section::Answer, a, start)?;
        }
    }
    if wants.srv && srv.is_some() {
        for a in &addresses {
            let _ = w.record(Section::Additional, a);
        }
    }
    if start.has_records(&w) {
        packets.push(w.finish());
    }
    Ok(packets)
}

/// Adds `record`; when the packet is full, finishes it and starts another.
fn push_or_flush(
    w: &mut MessageWriter,
    packets: &mut Vec<Vec<u8>>,
    section: Section,
    record: &Record,
    start: &Start<'_>,
) -> Result<(), MdnsError> {
    match w.record(section, record) {
        Err(MdnsError::PacketFull { .. }) if start.has_records(w) => {
            let full = std::mem::replace(w, start.packet()?);
            packets.push(full.finish());
            w.record(section, record)
        }
        other => other,
    }
}

/// Writes one TXT record holding as many of `strings` as fit; returns the rest.
fn push_txt<'a>(
    w: &mut MessageWriter,
    section: Section,
    instance: &Name,
    ttl: u32,
    strings: &'a [Vec<u8>],
) -> Result<&'a [Vec<u8>], MdnsError> {
    // Name, type, class, TTL, data length.
    let overhead = w.name_len(instance, true).saturating_add(10);
    let mut room = w.remaining().saturating_sub(overhead);
    let mut take = 0usize;
    for s in strings {
        let need = s.len().saturating_add(1);
        if need > room {
            break;
        }
        room = room.saturating_sub(need);
        take = take.saturating_add(1);
    }
    if take == 0 {
        return Ok(strings);
    }
    let (now, rest) = strings.split_at(take.min(strings.len()));
    w.record(
        section,
        &Record {
            name: instance.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl,
            data: RData::Txt(now.to_vec()),
        },
    )?;
    Ok(rest)
}

/// What one peer announced in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The instance name (`<peer-name>.<service>`), which also identifies a goodbye.
    pub instance: Name,
    /// The peer, from the `/p2p` suffix of its `dnsaddr` strings (absent in a bare PTR
    /// goodbye).
    pub peer: Option<PeerId>,
    /// Its addresses, without the `/p2p` suffix.
    pub addrs: Vec<Multiaddr>,
    /// The record TTL in seconds (0 = goodbye): the PTR's, or the smallest TXT's without one.
    pub ttl: u32,
    /// Whether a `<service> PTR` answer pointed to the instance (only then can we list it as
    /// a known answer in our queries, RFC 6762 §7.1).
    pub ptr: bool,
    /// TXT strings that were not usable `dnsaddr=` entries (no prefix, no valid multiaddr,
    /// no `/p2p` suffix, or another peer id than the first).
    pub rejected: usize,
}

/// An announcement being read: its PTR TTL, and the smallest TXT TTL.
struct Partial {
    found: Announcement,
    ptr_ttl: Option<u32>,
    txt_ttl: Option<u32>,
}

/// The peers announced in a response for `service`: one entry per name a `<service> PTR`
/// answer points to (with the TXT records that name owns), and per TXT record owned by a
/// name under the service without a PTR.
pub fn announcements(message: &Message, service: &Name) -> Vec<Announcement> {
    if !message.header.is_response() {
        return Vec::new();
    }
    let mut partial: Vec<Partial> = Vec::new();
    let index = |partial: &mut Vec<Partial>, instance: &Name| -> usize {
        if let Some(i) = partial.iter().position(|p| p.found.instance == *instance) {
            return i;
        }
        partial.push(Partial {
            found: Announcement {
                instance: instance.clone(),
                peer: None,
                addrs: Vec::new(),
                ttl: 0,
                ptr: false,
                rejected: 0,
            },
            ptr_ttl: None,
            txt_ttl: None,
        });
        partial.len().saturating_sub(1)
    };
    for record in &message.answers {
        // rust-libp2p (0.49) points its PTR at a bare one-label name (`<random>.`) rather
        // than `<peer-name>.<service>`, and owns its TXT records by that name: any target
        // other than the root is accepted.
        if let RData::Ptr(instance) = &record.data
            && record.name == *service
            && !instance.is_root()
        {
            let i = index(&mut partial, instance);
            if let Some(p) = partial.get_mut(i) {
                p.ptr_ttl = Some(p.ptr_ttl.map_or(record.ttl, |t| t.min(record.ttl)));
            }
        }
    }
    for record in message.answers_and_additionals() {
        let RData::Txt(strings) = &record.data else {
            continue;
        };
        let named = partial.iter().any(|p| p.found.instance == record.name);
        if !named && !is_child_of(&record.name, service) {
            continue;
        }
        let i = index(&mut partial, &record.name);
        let Some(p) = partial.get_mut(i) else {
            continue;
        };
        p.txt_ttl = Some(p.txt_ttl.map_or(record.ttl, |t| t.min(record.ttl)));
        let a = &mut p.found;
        for string in strings {
            match dnsaddr(string) {
                Some((peer, addr)) if a.peer.is_none_or(|p| p == peer) => {
                    a.peer = Some(peer);
                    if !a.addrs.contains(&addr) {
                        a.addrs.push(addr);
                    }
                }
                _ => a.rejected = a.rejected.saturating_add(1),
            }
        }
    }
    partial
        .into_iter()
        .map(|p| Announcement {
            // The PTR's TTL when there is one (as rust-libp2p), else the TXT records'.
            ttl: p.ptr_ttl.or(p.txt_ttl).unwrap_or(0),
            ptr: p.ptr_ttl.is_some(),
            ..p.found
        })
        .collect()
}

/// `name` is `<one label>.<service>`.
fn is_child_of(name: &Name, service: &Name) -> bool {
    let mut labels = name.labels();
    if labels.next().is_none() {
        return false;
    }
    let rest = labels.collect::<Vec<_>>();
    let service_labels = service.labels().collect::<Vec<_>>();
    rest.len() == service_labels.len()
        && rest
            .iter()
            .zip(service_labels.iter())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Parses `dnsaddr=<multiaddr>/p2p/<id>` (optionally in double quotes, as rust-libp2p
/// accepts) into the peer and the address without its `/p2p` part.
fn dnsaddr(string: &[u8]) -> Option<(PeerId, Multiaddr)> {
    let string = match string {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    };
    let prefix = string.get(..DNSADDR_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(DNSADDR_PREFIX.as_bytes()) {
        return None;
    }
    let text = std::str::from_utf8(string.get(DNSADDR_PREFIX.len()..)?).ok()?;
    let mut addr: Multiaddr = text.parse().ok()?;
    match addr.pop()? {
        Protocol::P2p(peer) if !addr.is_empty() => Some((peer, addr)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
