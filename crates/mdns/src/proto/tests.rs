#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use hickory_proto::op::{Message as HMessage, MessageType};
use hickory_proto::rr::RData as HRData;
use proptest::prelude::*;

use super::*;
use crate::config::{DEFAULT_SERVICE_NAME, MIN_PACKET_SIZE};
use crate::wire::{FLAG_RESPONSE, Record};

const MAX: usize = 256;

fn names(peer_name: &str) -> LocalNames {
    LocalNames::new(DEFAULT_SERVICE_NAME, peer_name).unwrap()
}

fn addrs(peer: PeerId, n: usize) -> Vec<Multiaddr> {
    (0..n)
        .map(|i| {
            format!(
                "/ip4/10.0.{}.{}/tcp/{}/p2p/{peer}",
                i / 250,
                i % 250 + 1,
                4000 + i
            )
            .parse()
            .unwrap()
        })
        .collect()
}

/// What rust-libp2p 0.49 does with a packet (its `MdnsPeer::new`), rebuilt on hickory: PTR
/// answers named `_p2p._udp.local.`, then the TXT additionals owned by the PTR target.
fn rust_libp2p_view(packet: &[u8]) -> Vec<String> {
    let h = HMessage::from_vec(packet).expect("hickory parses our packet");
    assert!(h.queries.is_empty(), "a response carries no question");
    let mut out = Vec::new();
    for answer in &h.answers {
        if answer.name.to_string() != "_p2p._udp.local." {
            continue;
        }
        let HRData::PTR(target) = &answer.data else {
            continue;
        };
        for add in &h.additionals {
            if add.name != target.0 {
                continue;
            }
            if let HRData::TXT(txt) = &add.data {
                for s in &txt.txt_data {
                    out.push(String::from_utf8(s.to_vec()).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn peer_names_are_random_lowercase_and_fit_a_label() {
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..500u64 {
        let mut state = seed;
        let name = random_peer_name(|| crate::core::splitmix(&mut state));
        assert!((PEER_NAME_MIN_LEN..=PEER_NAME_MAX_LEN).contains(&name.len()));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        lengths.insert(name.len());
    }
    assert!(lengths.len() > 20, "lengths vary: {lengths:?}");
}

#[test]
fn the_query_is_what_the_spec_says() {
    let q = query(&Name::new(DEFAULT_SERVICE_NAME).unwrap()).unwrap();
    let h = HMessage::from_vec(&q).unwrap();
    assert_eq!(h.metadata.id, 0);
    assert_eq!(h.metadata.message_type, MessageType::Query);
    assert_eq!(h.queries.len(), 1);
    assert_eq!(h.queries[0].name.to_utf8(), "_p2p._udp.local.");
    assert_eq!(h.queries[0].query_type, hickory_proto::rr::RecordType::PTR);
    assert!(!h.queries[0].mdns_unicast_response);
    assert!(h.answers.is_empty() && h.additionals.is_empty());
}

/// `<service> PTR <name>` answers with these TTLs, for a known-answer list.
fn known(n: usize, ttl: u32) -> Vec<(Name, u32)> {
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    (0..n)
        .map(|i| (service.prepend(&format!("{i:0>63}")).unwrap(), ttl))
        .collect()
}

#[test]
fn a_query_with_known_answers_is_a_query_to_hickory_with_every_ptr() {
    // rust-libp2p 0.49 treats any message with a question as a query (and ignores its
    // answer section), so a known-answer list must not hide the question from hickory.
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    let list = known(3, 300);
    let (q, included) = query_with_known_answers(&service, &list, 1452, 64).unwrap();
    assert_eq!(included, 3);
    let h = HMessage::from_vec(&q).unwrap();
    assert_eq!(h.metadata.message_type, MessageType::Query);
    assert_eq!(h.queries.len(), 1);
    assert_eq!(h.queries[0].name.to_utf8(), "_p2p._udp.local.");
    assert_eq!(h.answers.len(), 3);
    for (record, (name, ttl)) in h.answers.iter().zip(&list) {
        assert_eq!(record.name.to_utf8(), "_p2p._udp.local.");
        assert_eq!(record.ttl, *ttl);
        match &record.data {
            HRData::PTR(ptr) => assert_eq!(ptr.0.to_utf8(), format!("{name}.")),
            other => panic!("{other:?}"),
        }
    }
    // Our parser reads the same.
    let m = Message::parse(&q, MAX).unwrap();
    assert!(!m.header.is_response());
    assert_eq!(m.answers.len(), 3);
    // No known answer: the plain query.
    let (plain, none) = query_with_known_answers(&service, &[], 1452, 64).unwrap();
    assert_eq!((plain, none), (query(&service).unwrap(), 0));
}

#[test]
fn the_known_answer_list_stops_at_the_packet_size_and_the_count() {
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    let list = known(200, 300);
    // 63-character names: 78 bytes per known answer, 18 fit in 1452 bytes.
    let (q, included) = query_with_known_answers(&service, &list, 1452, 64).unwrap();
    assert!(q.len() <= 1452, "{}", q.len());
    assert_eq!(included, 18);
    assert_eq!(Message::parse(&q, MAX).unwrap().answers.len(), 18);
    // A 9000-byte link would hold 115: the count stops it first.
    let (q, included) = query_with_known_answers(&service, &list, 8952, 64).unwrap();
    assert_eq!(included, 64);
    assert_eq!(Message::parse(&q, MAX).unwrap().answers.len(), 64);
    // The list is taken in order: the first ones go in.
    let m = Message::parse(&q, MAX).unwrap();
    assert_eq!(m.answers[0].data, RData::Ptr(list[0].0.clone()));
    // A limit below the minimum packet size is raised to it, never below the question.
    let (q, included) = query_with_known_answers(&service, &list, 10, 64).unwrap();
    assert!(q.len() <= MIN_PACKET_SIZE);
    assert!(included > 0);
}

/// A query for `questions` (name, type) whose answer section holds `answers`.
fn query_listing(questions: &[(&Name, u16)], answers: &[Record]) -> Message {
    let mut w = MessageWriter::new(0, 0, 9000);
    for (name, qtype) in questions {
        w.question(&Question {
            name: (*name).clone(),
            qtype: *qtype,
            qclass: CLASS_IN,
            unicast_response: false,
        })
        .unwrap();
    }
    for record in answers {
        w.record(Section::Answer, record).unwrap();
    }
    Message::parse(&w.finish(), MAX).unwrap()
}

fn ptr(name: &Name, target: &Name, ttl: u32) -> Record {
    Record {
        name: name.clone(),
        class: CLASS_IN,
        cache_flush: false,
        ttl,
        data: RData::Ptr(target.clone()),
    }
}

#[test]
fn known_answers_need_our_exact_ptr_with_half_our_ttl() {
    let n = names("ourpeername0123456789abcdefghijkl");
    let q = |answers: &[Record]| query_listing(&[(&n.service, TYPE_PTR)], answers);
    let peers = Wants {
        peers: true,
        ..Wants::default()
    };
    // Half our TTL or more: known.
    assert_eq!(
        known_answers(&q(&[ptr(&n.service, &n.instance, 180)]), &n, 360),
        peers
    );
    assert_eq!(
        known_answers(&q(&[ptr(&n.service, &n.instance, u32::MAX)]), &n, 360),
        peers
    );
    // Names are case-insensitive.
    let upper = Name::new(&n.instance.to_string().to_uppercase()).unwrap();
    assert_eq!(
        known_answers(&q(&[ptr(&n.service, &upper, 300)]), &n, 360),
        peers
    );
    // Less than half: not known (the querier's copy is about to need a refresh).
    assert!(!known_answers(&q(&[ptr(&n.service, &n.instance, 179)]), &n, 360).any());
    assert!(!known_answers(&q(&[ptr(&n.service, &n.instance, 0)]), &n, 360).any());
    // Another peer's PTR, another service, another class, another type: not ours.
    let other = n.service.prepend("someoneelse").unwrap();
    let elsewhere = Name::new("_other._udp.local").unwrap();
    let mut any_class = ptr(&n.service, &n.instance, 300);
    any_class.class = CLASS_ANY;
    let txt = Record {
        name: n.service.clone(),
        class: CLASS_IN,
        cache_flush: false,
        ttl: 300,
        data: RData::Txt(vec![n.instance.to_string().into_bytes()]),
    };
    for wrong in [
        ptr(&n.service, &other, 300),
        ptr(&elsewhere, &n.instance, 300),
        any_class,
        txt,
    ] {
        assert!(
            !known_answers(&q(std::slice::from_ref(&wrong)), &n, 360).any(),
            "{wrong:?}"
        );
    }
    // Only the answer section counts: the same PTR as an additional record is ignored.
    let mut w = MessageWriter::new(0, 0, 9000);
    w.question(&Question {
        name: n.service.clone(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })
    .unwrap();
    w.record(Section::Additional, &ptr(&n.service, &n.instance, 300))
        .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    assert!(!known_answers(&m, &n, 360).any());
    // A response's answers are announcements, not known answers.
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 9000);
    w.record(Section::Answer, &ptr(&n.service, &n.instance, 300))
        .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    assert!(!known_answers(&m, &n, 360).any());
    // The meta answer is known by its own PTR; ours among many junk records is found.
    let mut junk: Vec<Record> = (0..200)
        .map(|i| {
            ptr(
                &n.service,
                &n.service.prepend(&format!("x{i}")).unwrap(),
                300,
            )
        })
        .collect();
    junk.push(ptr(&n.meta, &n.service, 4500));
    let known = known_answers(&query_listing(&[(&n.meta, TYPE_PTR)], &junk), &n, 4500);
    assert_eq!(
        known,
        Wants {
            meta: true,
            ..Wants::default()
        }
    );
}

#[test]
fn wants_without_known_keeps_the_rest() {
    let all = Wants {
        peers: true,
        meta: true,
        txt: true,
        srv: true,
        a: true,
        aaaa: true,
    };
    let known = Wants {
        peers: true,
        meta: true,
        ..Wants::default()
    };
    let rest = all.without(known);
    assert!(!rest.peers && !rest.meta);
    assert!(rest.txt && rest.srv && rest.a && rest.aaaa);
    assert!(!known.without(all).any());
}

#[test]
fn the_find_all_answer_is_what_rust_libp2p_reads() {
    let peer = PeerId::random();
    let n = names("abcdefghijabcdefghijabcdefghij12");
    let addrs = addrs(peer, 3);
    let (advert, too_long) = Advert::new(&addrs, vec!["10.0.0.1".parse().unwrap()], vec![]);
    assert_eq!(too_long, 0);
    let packets = responses(
        &n,
        Wants {
            peers: true,
            ..Wants::default()
        },
        &advert,
        360,
        1472,
    )
    .unwrap();
    assert_eq!(packets.len(), 1);
    let h = HMessage::from_vec(&packets[0]).unwrap();
    assert_eq!(h.metadata.id, 0);
    assert!(h.metadata.authoritative);
    assert_eq!(h.metadata.message_type, MessageType::Response);
    assert_eq!(h.answers.len(), 1);
    assert_eq!(h.answers[0].ttl, 360);
    let view = rust_libp2p_view(&packets[0]);
    let expected: Vec<String> = addrs.iter().map(|a| format!("dnsaddr={a}")).collect();
    assert_eq!(view, expected);
    // DNS-SD extras: SRV to the host name with the first port, and the A record.
    let srv = h
        .additionals
        .iter()
        .find_map(|r| match &r.data {
            HRData::SRV(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(srv.port, 4000);
    assert_eq!(
        srv.target.to_utf8(),
        "abcdefghijabcdefghijabcdefghij12.p2p.local."
    );
    assert!(h.additionals.iter().any(|r| matches!(r.data, HRData::A(_))));
    // And we read ourselves back.
    let m = Message::parse(&packets[0], MAX).unwrap();
    let found = announcements(&m, &n.service);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, Some(peer));
    assert_eq!(found[0].ttl, 360);
    assert_eq!(found[0].rejected, 0);
    let bare: Vec<Multiaddr> = addrs
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.pop();
            a
        })
        .collect();
    assert_eq!(found[0].addrs, bare);
}

#[test]
fn large_answers_are_split_into_packets_that_each_fit_and_stand_alone() {
    let peer = PeerId::random();
    let n = names(&"q".repeat(63));
    let all = addrs(peer, 200);
    let (advert, _) = Advert::new(&all, vec![], vec![]);
    for limit in [MIN_PACKET_SIZE - 28, 1232, 1452, 1472, 8972] {
        let packets = responses(
            &n,
            Wants {
                peers: true,
                ..Wants::default()
            },
            &advert,
            120,
            limit,
        )
        .unwrap();
        let mut seen = Vec::new();
        for p in &packets {
            assert!(p.len() <= limit, "{} > {limit}", p.len());
            let view = rust_libp2p_view(p);
            assert!(!view.is_empty(), "every packet announces something");
            seen.extend(view);
        }
        let expected: Vec<String> = all.iter().map(|a| format!("dnsaddr={a}")).collect();
        assert_eq!(seen, expected, "limit {limit}");
        if limit < 2000 {
            assert!(packets.len() > 5, "{} packets at {limit}", packets.len());
        }
    }
}

#[test]
fn the_longest_string_fits_the_smallest_packet() {
    let peer = PeerId::random();
    let n = names(&"z".repeat(63));
    // A TXT string of exactly 255 bytes.
    let prefix = format!("{DNSADDR_PREFIX}/dns4/");
    let suffix = format!("/tcp/1/p2p/{peer}");
    let host = "h".repeat(255 - prefix.len() - suffix.len());
    let addr: Multiaddr = format!("/dns4/{host}/tcp/1/p2p/{peer}").parse().unwrap();
    let (advert, too_long) = Advert::new(std::slice::from_ref(&addr), vec![], vec![]);
    assert_eq!(too_long, 0);
    assert_eq!(advert.txt[0].len(), 255);
    let packets = responses(
        &n,
        Wants {
            peers: true,
            txt: true,
            ..Wants::default()
        },
        &advert,
        120,
        MIN_PACKET_SIZE - 48,
    )
    .unwrap();
    assert_eq!(packets.len(), 2);
    assert!(packets.iter().all(|p| p.len() <= MIN_PACKET_SIZE - 48));
    // One byte more cannot be announced at all, and is counted.
    let longer: Multiaddr = format!("/dns4/{host}h/tcp/1/p2p/{peer}").parse().unwrap();
    let (advert, too_long) = Advert::new(&[longer], vec![], vec![]);
    assert_eq!(too_long, 1);
    assert!(advert.txt.is_empty());
}

#[test]
fn no_address_no_answer() {
    let n = names(&"a".repeat(32));
    let packets = responses(
        &n,
        Wants {
            peers: true,
            ..Wants::default()
        },
        &Advert::default(),
        120,
        1472,
    )
    .unwrap();
    assert!(packets.is_empty());
}

#[test]
fn dns_sd_questions_are_answered() {
    let peer = PeerId::random();
    let n = names(&"b".repeat(40));
    let (advert, _) = Advert::new(
        &addrs(peer, 2),
        vec!["10.0.0.1".parse().unwrap()],
        vec!["fe80::1".parse().unwrap()],
    );
    let q = |name: &Name, qtype: u16| {
        let mut w = MessageWriter::new(0, 0, 512);
        w.question(&Question {
            name: name.clone(),
            qtype,
            qclass: CLASS_IN,
            unicast_response: false,
        })
        .unwrap();
        Message::parse(&w.finish(), MAX).unwrap()
    };
    assert_eq!(
        wants(&q(&n.meta, TYPE_PTR), &n),
        Wants {
            meta: true,
            ..Wants::default()
        }
    );
    assert_eq!(
        wants(&q(&n.instance, TYPE_ANY), &n),
        Wants {
            txt: true,
            srv: true,
            ..Wants::default()
        }
    );
    assert_eq!(
        wants(&q(&n.host, TYPE_AAAA), &n),
        Wants {
            aaaa: true,
            ..Wants::default()
        }
    );
    assert!(wants(&q(&Name::new("other._tcp.local").unwrap(), TYPE_PTR), &n) == Wants::default());
    // Any type for the service name counts, as rust-libp2p does.
    assert!(wants(&q(&n.service, TYPE_TXT), &n).peers);

    let all = Wants {
        meta: true,
        txt: true,
        srv: true,
        a: true,
        aaaa: true,
        peers: false,
    };
    let packets = responses(&n, all, &advert, 120, 1472).unwrap();
    let mut kinds = Vec::new();
    for p in &packets {
        let h = HMessage::from_vec(p).unwrap();
        for r in &h.answers {
            kinds.push((r.name.to_utf8(), r.data.record_type().to_string()));
        }
    }
    assert!(kinds.contains(&("_services._dns-sd._udp.local.".into(), "PTR".into())));
    assert!(kinds.contains(&(format!("{}.", n.instance), "TXT".into())));
    assert!(kinds.contains(&(format!("{}.", n.instance), "SRV".into())));
    assert!(kinds.contains(&(format!("{}.", n.host), "A".into())));
    assert!(kinds.contains(&(format!("{}.", n.host), "AAAA".into())));
}

#[test]
fn a_response_asks_nothing_of_us() {
    let n = names(&"c".repeat(32));
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.question(&Question {
        name: n.service.clone(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })
    .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    assert!(!wants(&m, &n).any());
}

#[test]
fn unicast_is_requested_when_every_question_for_us_has_the_qu_bit() {
    let n = names(&"d".repeat(32));
    let other = Name::new("printer.local").unwrap();
    let q = |questions: &[(&Name, u16, bool)]| {
        let mut w = MessageWriter::new(0, 0, 512);
        for (name, qtype, unicast_response) in questions {
            w.question(&Question {
                name: (*name).clone(),
                qtype: *qtype,
                qclass: CLASS_IN,
                unicast_response: *unicast_response,
            })
            .unwrap();
        }
        Message::parse(&w.finish(), MAX).unwrap()
    };
    assert!(unicast_requested(&q(&[(&n.service, TYPE_PTR, true)]), &n));
    assert!(!unicast_requested(&q(&[(&n.service, TYPE_PTR, false)]), &n));
    // Mixed QU and QM questions for us: multicast.
    assert!(!unicast_requested(
        &q(&[(&n.service, TYPE_PTR, true), (&n.host, TYPE_A, false)]),
        &n
    ));
    assert!(unicast_requested(
        &q(&[(&n.service, TYPE_PTR, true), (&n.host, TYPE_A, true)]),
        &n
    ));
    // Questions that are not for us do not count either way.
    assert!(unicast_requested(
        &q(&[(&other, TYPE_A, false), (&n.service, TYPE_PTR, true)]),
        &n
    ));
    assert!(!unicast_requested(&q(&[(&other, TYPE_A, true)]), &n));
    // Nor does a question for our host name of a type we do not have.
    assert!(unicast_requested(
        &q(&[(&n.host, TYPE_TXT, false), (&n.service, TYPE_PTR, true)]),
        &n
    ));
}

#[test]
fn legacy_answers_echo_the_query_and_cap_the_ttl() {
    let peer = PeerId::random();
    let n = names(&"e".repeat(50));
    let all = addrs(peer, 100);
    let (advert, _) = Advert::new(&all, vec!["10.0.0.1".parse().unwrap()], vec![]);
    let mut w = MessageWriter::new(0x1234, crate::wire::FLAG_RECURSION_DESIRED, 512);
    w.question(&Question {
        name: n.service.clone(),
        qtype: TYPE_PTR,
        qclass: CLASS_IN,
        unicast_response: false,
    })
    .unwrap();
    let query = Message::parse(&w.finish(), MAX).unwrap();
    let legacy = LegacyQuery::new(&query);
    assert_eq!(legacy.id, 0x1234);
    assert!(legacy.recursion_desired);
    let peers = Wants {
        peers: true,
        ..Wants::default()
    };
    let packets = legacy_responses(&n, peers, &advert, 360, 1472, &legacy).unwrap();
    assert!(packets.len() > 1);
    let mut seen = 0;
    for p in &packets {
        assert!(p.len() <= 1472);
        let h = HMessage::from_vec(p).unwrap();
        assert_eq!(h.metadata.id, 0x1234);
        assert_eq!(h.metadata.message_type, MessageType::Response);
        assert!(h.metadata.authoritative && h.metadata.recursion_desired);
        assert_eq!(h.queries.len(), 1);
        assert_eq!(h.queries[0].name.to_utf8(), "_p2p._udp.local.");
        assert!(
            h.answers
                .iter()
                .chain(&h.additionals)
                .all(|r| r.ttl == LEGACY_MAX_TTL)
        );
        let m = Message::parse(p, MAX).unwrap();
        assert_eq!(m.questions, query.questions);
        seen += announcements(&m, &n.service)[0].addrs.len();
    }
    assert_eq!(seen, 100);
    // A TTL already under the cap is kept; a goodbye stays a goodbye.
    for ttl in [0, 3] {
        let packets = legacy_responses(&n, peers, &advert, ttl, 1472, &legacy).unwrap();
        let m = Message::parse(&packets[0], MAX).unwrap();
        assert!(m.answers_and_additionals().all(|r| r.ttl == ttl));
    }
    // Questions that leave no room for an answer: an error, not a loop.
    let huge = LegacyQuery {
        questions: vec![query.questions[0].clone(); 300],
        ..legacy
    };
    assert!(legacy_responses(&n, peers, &advert, 360, 1472, &huge).is_err());
}

fn response_with_txt(
    service: &Name,
    instance: &str,
    ptr_ttl: Option<u32>,
    strings: &[&[u8]],
) -> Message {
    let instance = Name::new(instance).unwrap();
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 9000);
    if let Some(ttl) = ptr_ttl {
        w.record(
            Section::Answer,
            &Record {
                name: service.clone(),
                class: CLASS_IN,
                cache_flush: false,
                ttl,
                data: RData::Ptr(instance.clone()),
            },
        )
        .unwrap();
    }
    w.record(
        Section::Additional,
        &Record {
            name: instance,
            class: CLASS_IN,
            cache_flush: true,
            ttl: 77,
            data: RData::Txt(strings.iter().map(|s| s.to_vec()).collect()),
        },
    )
    .unwrap();
    Message::parse(&w.finish(), MAX).unwrap()
}

#[test]
fn bad_txt_strings_are_rejected_and_counted() {
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    let a = PeerId::random();
    let b = PeerId::random();
    let good = format!("dnsaddr=/ip4/10.0.0.9/tcp/1/p2p/{a}");
    let quoted = format!("\"dnsaddr=/ip4/10.0.0.9/tcp/2/p2p/{a}\"");
    let other_peer = format!("dnsaddr=/ip4/10.0.0.9/tcp/3/p2p/{b}");
    let upper = format!("DNSADDR=/ip4/10.0.0.9/tcp/4/p2p/{a}");
    let strings: Vec<&[u8]> = vec![
        good.as_bytes(),
        quoted.as_bytes(),
        other_peer.as_bytes(),
        upper.as_bytes(),
        b"dnsaddr=/ip4/10.0.0.9/tcp/5",        // no /p2p
        b"dnsaddr=/ip4/999.0.0.1/tcp/5/p2p/x", // not a multiaddr
        b"dnsaddr=\xff\xfe",                   // not UTF-8
        b"path=/x",                            // another key
        b"",
        b"dnsaddr=",
        format!("dnsaddr=/p2p/{a}").leak().as_bytes(), // nothing but the id
    ];
    let m = response_with_txt(&service, "peer._p2p._udp.local", Some(300), &strings);
    let found = announcements(&m, &service);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, Some(a));
    assert_eq!(found[0].addrs.len(), 3);
    assert_eq!(found[0].rejected, 8);
    assert_eq!(found[0].ttl, 300);
}

#[test]
fn txt_without_ptr_and_goodbyes() {
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    let a = PeerId::random();
    let s = format!("dnsaddr=/ip4/10.0.0.9/tcp/1/p2p/{a}");
    // A TXT record under the service without a PTR: still an announcement, with its TTL.
    let m = response_with_txt(&service, "x._p2p._udp.local", None, &[s.as_bytes()]);
    let found = announcements(&m, &service);
    assert_eq!(found[0].peer, Some(a));
    assert_eq!(found[0].ttl, 77);
    // A TXT record of another service is not ours.
    let m = response_with_txt(&service, "x._other._udp.local", None, &[s.as_bytes()]);
    assert!(announcements(&m, &service).is_empty());
    // Goodbye: PTR with TTL 0.
    let m = response_with_txt(&service, "x._p2p._udp.local", Some(0), &[s.as_bytes()]);
    assert_eq!(announcements(&m, &service)[0].ttl, 0);
    // A bare PTR goodbye names only the instance.
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(
        Section::Answer,
        &Record {
            name: service.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: 0,
            data: RData::Ptr(Name::new("x._p2p._udp.local").unwrap()),
        },
    )
    .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    let found = announcements(&m, &service);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, None);
    assert_eq!(found[0].ttl, 0);
    // A PTR to the root names nobody.
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(
        Section::Answer,
        &Record {
            name: service.clone(),
            class: CLASS_IN,
            cache_flush: false,
            ttl: 10,
            data: RData::Ptr(Name::root()),
        },
    )
    .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    assert!(announcements(&m, &service).is_empty());
}

/// rust-libp2p 0.49's answer, byte for byte as its `build_query_response` lays it out: the
/// PTR points at a bare one-label name, which also owns the TXT records (class IN with the
/// cache-flush bit), one string each.
#[test]
fn rust_libp2p_answers_are_read() {
    let service = Name::new(DEFAULT_SERVICE_NAME).unwrap();
    let peer = PeerId::random();
    let label = b"Zq3xVb7rT0aaaaaaaaaaaaaaaaaaaaaa1234";
    let mut bare = vec![u8::try_from(label.len()).unwrap()];
    bare.extend_from_slice(label);
    bare.push(0);
    let addrs = ["/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.2/udp/4001/quic-v1"];
    let mut p = vec![
        0x12,
        0x34,
        0x84,
        0x00,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        u8::try_from(addrs.len()).unwrap(),
    ];
    p.extend_from_slice(b"\x04_p2p\x04_udp\x05local\x00");
    p.extend_from_slice(&[0x00, 0x0c, 0x00, 0x01]);
    p.extend_from_slice(&360u32.to_be_bytes());
    p.extend_from_slice(&u16::try_from(bare.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&bare);
    for a in addrs {
        let txt = format!("dnsaddr={a}/p2p/{}", peer.to_base58());
        p.extend_from_slice(&bare);
        p.extend_from_slice(&[0x00, 0x10, 0x80, 0x01]);
        p.extend_from_slice(&360u32.to_be_bytes());
        p.extend_from_slice(&u16::try_from(txt.len() + 1).unwrap().to_be_bytes());
        p.push(u8::try_from(txt.len()).unwrap());
        p.extend_from_slice(txt.as_bytes());
    }
    let m = Message::parse(&p, MAX).unwrap();
    let found = announcements(&m, &service);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].peer, Some(peer));
    assert_eq!(found[0].ttl, 360);
    let got: Vec<String> = found[0].addrs.iter().map(ToString::to_string).collect();
    assert_eq!(got, addrs);
}

#[test]
fn a_private_network_has_its_own_service() {
    let config = crate::MdnsConfig::default().with_private_network(&[0xab, 0x01]);
    assert_eq!(config.service_name, "_p2p-ab01._udp.local");
    let n = LocalNames::new(&config.service_name, &"d".repeat(32)).unwrap();
    let q = Message::parse(&query(&n.service).unwrap(), MAX).unwrap();
    let public = names(&"e".repeat(32));
    assert!(!wants(&q, &public).peers);
    assert!(wants(&q, &n).peers);
}

proptest! {
    #[test]
    fn any_advert_splits_within_the_limit(
        count in 0usize..120,
        name_len in 32usize..=63,
        limit in (MIN_PACKET_SIZE - 48)..4000,
        extra in "[a-z]{0,120}",
    ) {
        let peer = PeerId::random();
        let n = names(&"p".repeat(name_len));
        let all: Vec<Multiaddr> = (0..count)
            .map(|i| format!("/dns4/{extra}h{i}.example/tcp/{i}/p2p/{peer}").parse().unwrap())
            .collect();
        let (advert, too_long) = Advert::new(&all, vec![], vec![]);
        let packets = responses(&n, Wants { peers: true, ..Wants::default() }, &advert, 60, limit).unwrap();
        let mut seen = 0;
        for p in &packets {
            prop_assert!(p.len() <= limit);
            let m = Message::parse(p, MAX).unwrap();
            let found = announcements(&m, &n.service);
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(found[0].peer, Some(peer));
            seen += found[0].addrs.len();
        }
        prop_assert_eq!(seen + too_long, count);
    }
}
