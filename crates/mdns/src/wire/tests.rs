#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message as HMessage, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name as HName, RData as HRData, Record as HRecord, RecordType};
use proptest::prelude::*;

use super::*;
use crate::MdnsError;

const MAX: usize = 256;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record {
        name: name(owner),
        class: CLASS_IN,
        cache_flush: false,
        ttl,
        data,
    }
}

fn sample() -> Vec<u8> {
    let mut w = MessageWriter::new(0, FLAG_RESPONSE | FLAG_AUTHORITATIVE, 1500);
    w.record(
        Section::Answer,
        &rec(
            "_p2p._udp.local",
            120,
            RData::Ptr(name("abc._p2p._udp.local")),
        ),
    )
    .unwrap();
    w.record(
        Section::Additional,
        &rec(
            "abc._p2p._udp.local",
            120,
            RData::Txt(vec![b"dnsaddr=/ip4/1.2.3.4/tcp/1".to_vec(), Vec::new()]),
        ),
    )
    .unwrap();
    w.record(
        Section::Additional,
        &rec(
            "abc._p2p._udp.local",
            120,
            RData::Srv(Srv {
                priority: 1,
                weight: 2,
                port: 4001,
                target: name("abc.p2p.local"),
            }),
        ),
    )
    .unwrap();
    w.record(
        Section::Additional,
        &Record {
            cache_flush: true,
            ..rec("abc.p2p.local", 120, RData::A(Ipv4Addr::new(10, 0, 0, 1)))
        },
    )
    .unwrap();
    w.record(
        Section::Additional,
        &rec("abc.p2p.local", 120, RData::Aaaa(Ipv6Addr::LOCALHOST)),
    )
    .unwrap();
    w.finish()
}

#[test]
fn round_trip_with_compression() {
    let bytes = sample();
    let m = Message::parse(&bytes, MAX).unwrap();
    assert!(m.header.is_response());
    assert_eq!(m.header.flags, FLAG_RESPONSE | FLAG_AUTHORITATIVE);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.additionals.len(), 4);
    assert_eq!(m.answers[0].data, RData::Ptr(name("abc._p2p._udp.local")));
    assert_eq!(m.additionals[0].name, name("abc._p2p._udp.local"));
    assert!(m.additionals[2].cache_flush);
    // The PTR target and the TXT owner were compressed to pointers: far below the
    // uncompressed size.
    let uncompressed =
        12 + (17 + 10 + 21) + (21 + 10 + 28) + (21 + 10 + 6 + 15) + (15 + 14) + (15 + 26);
    assert!(bytes.len() < uncompressed - 40, "{} bytes", bytes.len());
}

#[test]
fn hickory_reads_what_we_write() {
    let bytes = sample();
    let h = HMessage::from_vec(&bytes).unwrap();
    assert_eq!(h.metadata.message_type, MessageType::Response);
    assert!(h.metadata.authoritative);
    assert_eq!(h.answers[0].name.to_utf8(), "_p2p._udp.local.");
    let HRData::PTR(ptr) = &h.answers[0].data else {
        panic!("not a PTR: {:?}", h.answers[0].data)
    };
    assert_eq!(ptr.0.to_utf8(), "abc._p2p._udp.local.");
    let HRData::TXT(txt) = &h.additionals[0].data else {
        panic!()
    };
    assert_eq!(&*txt.txt_data[0], b"dnsaddr=/ip4/1.2.3.4/tcp/1");
    assert_eq!(&*txt.txt_data[1], b"");
    let HRData::SRV(srv) = &h.additionals[1].data else {
        panic!()
    };
    assert_eq!(srv.port, 4001);
    assert_eq!(srv.target.to_utf8(), "abc.p2p.local.");
    assert!(h.additionals[2].mdns_cache_flush);
    assert!(matches!(h.additionals[3].data, HRData::AAAA(_)));
}

#[test]
fn we_read_what_hickory_writes() {
    let mut h = HMessage::new(7, MessageType::Response, OpCode::Query);
    h.metadata.authoritative = true;
    let service = HName::from_ascii("_p2p._udp.local.").unwrap();
    let instance = HName::from_ascii("XyZ._p2p._udp.local.").unwrap();
    h.add_answer(HRecord::from_rdata(
        service.clone(),
        300,
        HRData::PTR(PTR(instance.clone())),
    ));
    let mut txt = HRecord::from_rdata(
        instance.clone(),
        300,
        HRData::TXT(TXT::new(vec![
            "dnsaddr=/ip4/10.0.0.2/tcp/7".into(),
            "x".into(),
        ])),
    );
    txt.mdns_cache_flush = true;
    h.add_additional(txt);
    h.add_additional(HRecord::from_rdata(
        instance.clone(),
        300,
        HRData::SRV(SRV::new(0, 0, 9, HName::from_ascii("h.local.").unwrap())),
    ));
    h.add_additional(HRecord::from_rdata(
        HName::from_ascii("h.local.").unwrap(),
        300,
        HRData::A(A(Ipv4Addr::new(10, 0, 0, 2))),
    ));
    h.add_additional(HRecord::from_rdata(
        HName::from_ascii("h.local.").unwrap(),
        300,
        HRData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
    ));
    let bytes = h.to_vec().unwrap();
    let m = Message::parse(&bytes, MAX).unwrap();
    assert_eq!(m.header.id, 7);
    assert_eq!(m.answers[0].name, name("_p2p._udp.local"));
    assert_eq!(m.answers[0].data, RData::Ptr(name("xyz._p2p._udp.local")));
    assert_eq!(
        m.additionals[0].data,
        RData::Txt(vec![b"dnsaddr=/ip4/10.0.0.2/tcp/7".to_vec(), b"x".to_vec()])
    );
    assert!(m.additionals[0].cache_flush);
    assert_eq!(m.additionals[0].class, CLASS_IN);
    assert!(matches!(&m.additionals[1].data, RData::Srv(s) if s.port == 9));
    assert_eq!(m.additionals[2].data, RData::A(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(m.additionals[3].data, RData::Aaaa(Ipv6Addr::LOCALHOST));

    let mut q = HMessage::new(0, MessageType::Query, OpCode::Query);
    let mut query = Query::query(service, RecordType::PTR);
    query.mdns_unicast_response = true;
    query.query_class = DNSClass::IN;
    q.add_query(query);
    let m = Message::parse(&q.to_vec().unwrap(), MAX).unwrap();
    assert!(!m.header.is_response());
    assert_eq!(m.questions.len(), 1);
    assert_eq!(m.questions[0].qtype, TYPE_PTR);
    assert_eq!(m.questions[0].qclass, CLASS_IN);
    assert!(m.questions[0].unicast_response);
}

#[test]
fn unknown_record_types_are_kept_raw() {
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(
        Section::Answer,
        &rec(
            "x.local",
            1,
            RData::Other {
                rtype: 47,
                data: vec![1, 2, 3],
            },
        ),
    )
    .unwrap();
    let m = Message::parse(&w.finish(), MAX).unwrap();
    assert_eq!(
        m.answers[0].data,
        RData::Other {
            rtype: 47,
            data: vec![1, 2, 3]
        }
    );
}

#[test]
fn a_record_that_does_not_fit_leaves_the_packet_intact() {
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 100);
    w.record(
        Section::Answer,
        &rec("_p2p._udp.local", 1, RData::Ptr(name("a._p2p._udp.local"))),
    )
    .unwrap();
    let before = w.len();
    let big = rec("a._p2p._udp.local", 1, RData::Txt(vec![vec![b'x'; 200]]));
    assert!(matches!(
        w.record(Section::Additional, &big),
        Err(MdnsError::PacketFull { .. })
    ));
    assert_eq!(w.len(), before);
    // Compression state was rolled back too: the next record still parses.
    w.record(
        Section::Additional,
        &rec("a._p2p._udp.local", 1, RData::Txt(vec![b"ok".to_vec()])),
    )
    .unwrap();
    let bytes = w.finish();
    assert!(bytes.len() <= 100);
    let m = Message::parse(&bytes, MAX).unwrap();
    assert_eq!(m.additionals[0].data, RData::Txt(vec![b"ok".to_vec()]));
}

#[test]
fn txt_strings_over_255_bytes_are_refused() {
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 9000);
    let err = w
        .record(
            Section::Answer,
            &rec("a.local", 1, RData::Txt(vec![vec![b'x'; 256]])),
        )
        .unwrap_err();
    assert!(matches!(err, MdnsError::TxtTooLong { len: 256 }));
    assert!(w.is_empty());
}

#[test]
fn an_empty_txt_record_gets_one_empty_string() {
    // RFC 6763 §6.1: TXT data is never empty.
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(Section::Answer, &rec("a.local", 1, RData::Txt(Vec::new())))
        .unwrap();
    let bytes = w.finish();
    let m = Message::parse(&bytes, MAX).unwrap();
    assert_eq!(m.answers[0].data, RData::Txt(vec![Vec::new()]));
    assert!(HMessage::from_vec(&bytes).is_ok());
}

#[test]
fn sections_must_come_in_order() {
    let mut w = MessageWriter::new(0, FLAG_RESPONSE, 512);
    w.record(
        Section::Additional,
        &rec("a.local", 1, RData::A(Ipv4Addr::LOCALHOST)),
    )
    .unwrap();
    assert!(
        w.record(
            Section::Answer,
            &rec("a.local", 1, RData::A(Ipv4Addr::LOCALHOST))
        )
        .is_err()
    );
}

/// A header followed by `body`.
fn packet(flags: u16, counts: [u16; 4], body: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0];
    p.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        p.extend_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(body);
    p
}

#[test]
fn malformed_packets_are_errors() {
    // Short header.
    assert!(matches!(
        Message::parse(&[0; 11], MAX),
        Err(MdnsError::Truncated { .. })
    ));
    // Counts the packet cannot hold.
    assert!(matches!(
        Message::parse(&packet(0x8000, [0, 100, 0, 0], &[0; 20]), MAX),
        Err(MdnsError::Truncated { .. })
    ));
    // More entries than the limit, refused before allocation.
    assert!(matches!(
        Message::parse(&packet(0x8000, [0xffff, 0xffff, 0xffff, 0xffff], &[]), MAX),
        Err(MdnsError::TooManyRecords { count: 262_140, .. })
    ));
    // Non-zero opcode and rcode (RFC 6762 §18.3, §18.11).
    assert!(matches!(
        Message::parse(&packet(0x2800, [0; 4], &[]), MAX),
        Err(MdnsError::Unsupported { opcode: 5, .. })
    ));
    assert!(matches!(
        Message::parse(&packet(0x8003, [0; 4], &[]), MAX),
        Err(MdnsError::Unsupported { rcode: 3, .. })
    ));
    // A record whose data length runs past the end.
    let mut body = vec![0]; // root name
    body.extend_from_slice(&TYPE_TXT.to_be_bytes());
    body.extend_from_slice(&CLASS_IN.to_be_bytes());
    body.extend_from_slice(&120u32.to_be_bytes());
    body.extend_from_slice(&200u16.to_be_bytes());
    body.extend_from_slice(b"\x05short");
    assert!(matches!(
        Message::parse(&packet(0x8000, [0, 1, 0, 0], &body), MAX),
        Err(MdnsError::Truncated { .. })
    ));
    // A TXT string that overruns its record.
    let mut body = vec![0];
    body.extend_from_slice(&TYPE_TXT.to_be_bytes());
    body.extend_from_slice(&CLASS_IN.to_be_bytes());
    body.extend_from_slice(&120u32.to_be_bytes());
    body.extend_from_slice(&3u16.to_be_bytes());
    body.extend_from_slice(b"\x09ab");
    assert!(matches!(
        Message::parse(&packet(0x8000, [0, 1, 0, 0], &body), MAX),
        Err(MdnsError::BadRecord { .. })
    ));
    // An A record of 5 bytes, an AAAA of 4.
    for (rtype, len) in [(TYPE_A, 5u16), (TYPE_AAAA, 4)] {
        let mut body = vec![0];
        body.extend_from_slice(&rtype.to_be_bytes());
        body.extend_from_slice(&CLASS_IN.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&vec![1; usize::from(len)]);
        assert!(matches!(
            Message::parse(&packet(0x8000, [0, 1, 0, 0], &body), MAX),
            Err(MdnsError::BadRecord { .. })
        ));
    }
    // A PTR whose name runs past its data length.
    let mut body = vec![0];
    body.extend_from_slice(&TYPE_PTR.to_be_bytes());
    body.extend_from_slice(&CLASS_IN.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&2u16.to_be_bytes());
    body.extend_from_slice(b"\x03abc\x00");
    assert!(matches!(
        Message::parse(&packet(0x8000, [0, 1, 0, 0], &body), MAX),
        Err(MdnsError::BadRecord { .. })
    ));
    // A question whose name points at itself.
    let body = [0xC0, 12, 0, 12, 0, 1];
    assert!(matches!(
        Message::parse(&packet(0, [1, 0, 0, 0], &body), MAX),
        Err(MdnsError::BadName { .. })
    ));
    // Two pointers that point at each other.
    let body = [0xC0, 14, 0xC0, 12, 0, 12, 0, 1];
    assert!(Message::parse(&packet(0, [1, 0, 0, 0], &body), MAX).is_err());
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0xde, 0xad]);
    assert!(Message::parse(&bytes, MAX).is_ok());
}

#[test]
fn every_truncation_of_a_valid_packet_is_an_error_not_a_panic() {
    let bytes = sample();
    for len in 0..bytes.len() {
        assert!(Message::parse(&bytes[..len], MAX).is_err(), "prefix {len}");
    }
}

fn arb_label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{1,20}"
}

fn arb_name() -> impl Strategy<Value = Name> {
    prop::collection::vec(arb_label(), 0..5)
        .prop_map(|labels| Name::new(&labels.join(".")).unwrap())
}

fn arb_rdata() -> impl Strategy<Value = RData> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| RData::A(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| RData::Aaaa(Ipv6Addr::from(b))),
        arb_name().prop_map(RData::Ptr),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..4).prop_map(RData::Txt),
        (any::<u16>(), any::<u16>(), any::<u16>(), arb_name()).prop_map(
            |(priority, weight, port, target)| {
                RData::Srv(Srv {
                    priority,
                    weight,
                    port,
                    target,
                })
            }
        ),
        (100u16..200, prop::collection::vec(any::<u8>(), 1..30))
            .prop_map(|(rtype, data)| RData::Other { rtype, data }),
    ]
}

fn arb_record() -> impl Strategy<Value = Record> {
    (arb_name(), any::<bool>(), any::<u32>(), arb_rdata()).prop_map(
        |(name, cache_flush, ttl, data)| Record {
            name,
            class: CLASS_IN,
            cache_flush,
            ttl,
            data,
        },
    )
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::parse(&bytes, MAX);
    }

    #[test]
    fn parse_never_panics_after_a_valid_header(
        counts in any::<[u8; 4]>(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let bytes = packet(0x8400, counts.map(u16::from), &body);
        let _ = Message::parse(&bytes, MAX);
    }

    #[test]
    fn written_messages_parse_back(
        questions in prop::collection::vec((arb_name(), any::<u16>(), any::<bool>()), 0..3),
        answers in prop::collection::vec(arb_record(), 0..5),
        additionals in prop::collection::vec(arb_record(), 0..5),
    ) {
        let mut w = MessageWriter::new(9, 0x8400, 9000);
        let questions: Vec<Question> = questions
            .into_iter()
            .map(|(name, qtype, unicast_response)| Question { name, qtype, qclass: CLASS_IN, unicast_response })
            .collect();
        for q in &questions {
            w.question(q).unwrap();
        }
        for r in &answers {
            w.record(Section::Answer, r).unwrap();
        }
        for r in &additionals {
            w.record(Section::Additional, r).unwrap();
        }
        let bytes = w.finish();
        let m = Message::parse(&bytes, MAX).unwrap();
        prop_assert_eq!(&m.questions, &questions);
        prop_assert_eq!(&m.answers, &answers);
        prop_assert_eq!(&m.additionals, &additionals);
        // And the independent decoder agrees on the shape.
        let h = HMessage::from_vec(&bytes).unwrap();
        prop_assert_eq!(h.answers.len(), m.answers.len());
        prop_assert_eq!(h.additionals.len(), m.additionals.len());
    }
}
