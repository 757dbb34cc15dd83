//! The sans-IO core driven by hand in virtual time: every request it sends is answered (or
//! not) by the test, and time only moves when the test says so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::unnecessary_wraps,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId};
use lp2p_kad::validator::{InvalidRecord, NamespacedValidator, UnknownNamespaces, Validator};
use lp2p_kad::wire::{PeerInfo, Request, Response};
use lp2p_kad::{
    Event, KadConfig, KadCore, KadError, Mode, OutboundRequest, PeerReport, Progress, QueryResult,
    Record, RequestFailure, ResponseInfo,
};

fn addr(n: u32) -> Multiaddr {
    format!("/ip4/10.0.{}.{}/tcp/4001", n / 256, n % 256)
        .parse()
        .unwrap()
}

fn config() -> KadConfig {
    KadConfig {
        auto_bootstrap: false,
        bootstrap_interval: None,
        validator: Arc::new(
            NamespacedValidator::default().unknown_namespaces(UnknownNamespaces::Accept),
        ),
        ..KadConfig::default()
    }
}

fn drain(core: &mut KadCore) -> (Vec<OutboundRequest>, Vec<Event>) {
    let requests = std::iter::from_fn(|| core.poll_request()).collect();
    let events = std::iter::from_fn(|| core.poll_event()).collect();
    (requests, events)
}

fn answered(response: Response, dialed: Option<Multiaddr>) -> Result<ResponseInfo, RequestFailure> {
    Ok(ResponseInfo {
        response: Some(response),
        dialed,
    })
}

fn finished(events: &[Event]) -> Option<(QueryResult, lp2p_kad::QueryStats)> {
    events.iter().find_map(|e| match e {
        Event::Finished { result, stats, .. } => Some((result.clone(), *stats)),
        _ => None,
    })
}

#[test]
fn timeouts_fail_peers_and_repeated_failures_evict_them() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    let dead = PeerId::random();
    core.add_address(dead, vec![addr(1)], now);
    assert!(core.routing_table().contains(&dead));
    for round in 0..2u64 {
        let t = now + Duration::from_secs(100 * round);
        core.find_peer(PeerId::random(), t).unwrap();
        let (requests, _) = drain(&mut core);
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].addrs, vec![addr(1)]);
        // No answer: the request times out at request_timeout.
        let deadline = core.poll_timeout().unwrap();
        assert!(deadline <= t + core.config().request_timeout);
        core.handle_timeout(t + core.config().request_timeout);
        let (_, events) = drain(&mut core);
        let (result, stats) = finished(&events).expect("the lookup ran out of peers");
        assert_eq!(result, QueryResult::FindPeer(None));
        assert_eq!((stats.requests, stats.failures), (1, 1));
    }
    // max_failures (2) in a row: out of the table.
    assert!(!core.routing_table().contains(&dead));
    assert_eq!(core.counters().requests_failed, 2);
}

#[test]
fn a_lookup_converges_and_records_rounds() {
    let now = Instant::now();
    let me = PeerId::random();
    let mut core = KadCore::new(me, config(), now);
    let seed = PeerId::random();
    let target = PeerId::random();
    let hop = PeerId::random();
    core.add_address(seed, vec![addr(1)], now);
    let id = core.find_peer(target, now).unwrap();
    let (requests, _) = drain(&mut core);
    assert_eq!(
        requests[0].request,
        Request::FindNode {
            key: target.to_bytes()
        }
    );
    // The seed knows a hop; the hop knows the target.
    core.on_response(
        requests[0].id,
        answered(
            Response::FindNode {
                closer: vec![PeerInfo::new(hop, vec![addr(2)])],
            },
            Some(addr(1)),
        ),
        now,
    );
    let (requests, _) = drain(&mut core);
    assert_eq!(requests[0].peer, hop);
    assert_eq!(requests[0].addrs, vec![addr(2)]);
    core.on_response(
        requests[0].id,
        answered(
            Response::FindNode {
                closer: vec![PeerInfo::new(target, vec![addr(3)])],
            },
            Some(addr(2)),
        ),
        now + Duration::from_millis(50),
    );
    let (_, events) = drain(&mut core);
    assert!(events.iter().any(|e| matches!(e, Event::Progress { id: i, progress: Progress::FoundPeer(p) } if *i == id && p.addrs == vec![addr(3)])));
    let (result, stats) = finished(&events).unwrap();
    assert!(matches!(result, QueryResult::FindPeer(Some(p)) if p.peer == target));
    assert_eq!(stats.rounds, 2);
    assert_eq!(stats.duration(), Duration::from_millis(50));
    // The hop answered at the address we dialed: it is in the table now.
    assert_eq!(core.routing_table().get(&hop).unwrap().addrs, vec![addr(2)]);
    // The target was only named: not in the table (unverified address).
    assert!(!core.routing_table().contains(&target));
}

#[test]
fn alpha_limits_requests_in_flight() {
    let now = Instant::now();
    let cfg = KadConfig {
        alpha: 3,
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    for i in 0..10 {
        core.add_address(PeerId::random(), vec![addr(i)], now);
    }
    core.get_closest_peers(b"key", now).unwrap();
    let (requests, _) = drain(&mut core);
    assert_eq!(requests.len(), 3);
    core.on_response(
        requests[0].id,
        answered(Response::FindNode { closer: vec![] }, None),
        now,
    );
    let (more, _) = drain(&mut core);
    assert_eq!(more.len(), 1, "one answer frees one slot");
}

#[test]
fn the_query_timeout_ends_a_query_with_what_it_has() {
    let now = Instant::now();
    let cfg = KadConfig {
        request_timeout: Duration::from_secs(100),
        query_timeout: Duration::from_secs(5),
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    let (a, b) = (PeerId::random(), PeerId::random());
    core.add_address(a, vec![addr(1)], now);
    core.add_address(b, vec![addr(2)], now);
    core.get_closest_peers(b"k", now).unwrap();
    let (requests, _) = drain(&mut core);
    let to_a = requests.iter().find(|r| r.peer == a).unwrap();
    core.on_response(
        to_a.id,
        answered(Response::FindNode { closer: vec![] }, None),
        now,
    );
    core.handle_timeout(now + Duration::from_secs(5));
    let (_, events) = drain(&mut core);
    let (result, stats) = finished(&events).unwrap();
    assert!(stats.timed_out);
    assert!(matches!(result, QueryResult::ClosestPeers(p) if p.len() == 1 && p[0].peer == a));
    // Counted for monitoring: one closest-peers query, timed out after its 5 s (in the
    // first bucket that holds 5 s).
    let totals = core.query_totals();
    let closest = totals.iter().find(|t| t.kind == "closest_peers").unwrap();
    assert_eq!((closest.finished, closest.timed_out), (1, 1));
    let bucket = lp2p_kad::QUERY_DURATION_BUCKETS
        .iter()
        .position(|b| *b >= 5.0)
        .unwrap();
    assert_eq!(closest.durations.counts()[bucket], 1);
}

/// Values are numbers; the larger wins.
struct Highest;

impl Validator for Highest {
    fn validate(&self, _key: &[u8], value: &[u8]) -> Result<(), InvalidRecord> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|_| ())
            .ok_or_else(|| InvalidRecord::new("not a number"))
    }

    fn select(&self, _key: &[u8], values: &[&[u8]]) -> usize {
        values
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| std::str::from_utf8(v).unwrap().parse::<u64>().unwrap())
            .map_or(0, |(i, _)| i)
    }
}

#[test]
fn get_value_selects_the_best_and_corrects_outdated_peers() {
    let now = Instant::now();
    let cfg = KadConfig {
        quorum: 3,
        validator: Arc::new(NamespacedValidator::empty().with("n", Highest)),
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().enumerate() {
        core.add_address(*p, vec![addr(i as u32)], now);
    }
    core.get_value(b"/n/x", now).unwrap();
    let (requests, _) = drain(&mut core);
    assert_eq!(requests.len(), 4);
    let record = |v: &str| Some(Record::new(b"/n/x".to_vec(), v.as_bytes().to_vec()));
    let answers = [record("5"), record("9"), record("garbage"), record("7")];
    let holders: Vec<PeerId> = requests.iter().map(|r| r.peer).collect();
    for (request, value) in requests.iter().zip(answers) {
        core.on_response(
            request.id,
            answered(
                Response::GetValue {
                    record: value,
                    closer: vec![],
                },
                None,
            ),
            now,
        );
    }
    let (corrections, events) = drain(&mut core);
    let (result, _) = finished(&events).unwrap();
    assert!(matches!(result, QueryResult::GetValue(Some(r)) if r.value == b"9"));
    assert_eq!(core.counters().invalid_records, 1);
    // The holders of 5 and 7 (outdated) and of garbage (no valid record, among the
    // closest) get the best record.
    let fixed: Vec<PeerId> = corrections.iter().map(|r| r.peer).collect();
    assert_eq!(corrections.len(), 3);
    for i in [0, 2, 3] {
        assert!(fixed.contains(&holders[i]));
    }
    assert_eq!(peers.len(), 4);
    assert!(
        corrections
            .iter()
            .all(|r| matches!(&r.request, Request::PutValue { record } if record.value == b"9"))
    );
}

#[test]
fn put_value_stores_at_the_closest_that_answered() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
    for (i, p) in peers.iter().enumerate() {
        core.add_address(*p, vec![addr(i as u32)], now);
    }
    core.put_value(Record::new(b"/a/b".to_vec(), b"v".to_vec()), now)
        .unwrap();
    assert_eq!(core.records().len(), 1, "stored locally first");
    let (lookup, _) = drain(&mut core);
    for r in &lookup {
        let failed = r.peer == peers[2];
        let outcome = if failed {
            Err(RequestFailure::Unreachable)
        } else {
            answered(Response::FindNode { closer: vec![] }, None)
        };
        core.on_response(r.id, outcome, now);
    }
    let (puts, _) = drain(&mut core);
    assert_eq!(puts.len(), 2);
    assert!(
        puts.iter()
            .all(|r| matches!(r.request, Request::PutValue { .. }))
    );
    for r in &puts {
        core.on_response(
            r.id,
            answered(
                Response::PutValue {
                    key: b"/a/b".to_vec(),
                    value: b"v".to_vec(),
                },
                None,
            ),
            now,
        );
    }
    let (_, events) = drain(&mut core);
    assert_eq!(
        finished(&events).unwrap().0,
        QueryResult::PutValue { stored: 2 }
    );
}

#[test]
fn inbound_put_value_validates_and_keeps_the_better_record() {
    let now = Instant::now();
    let cfg = KadConfig {
        validator: Arc::new(NamespacedValidator::empty().with("n", Highest)),
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    let from = PeerId::random();
    let put = |v: &str| Request::PutValue {
        record: Record::new(b"/n/k".to_vec(), v.as_bytes().to_vec()),
    };
    assert!(core.handle_request(from, put("5"), now).unwrap().is_some());
    assert!(matches!(
        core.handle_request(from, put("3"), now),
        Err(KadError::OutdatedRecord { .. })
    ));
    assert!(matches!(
        core.handle_request(from, put("x"), now),
        Err(KadError::InvalidRecord { .. })
    ));
    assert!(core.handle_request(from, put("8"), now).unwrap().is_some());
    let got = core
        .handle_request(
            from,
            Request::GetValue {
                key: b"/n/k".to_vec(),
            },
            now,
        )
        .unwrap();
    assert!(matches!(got, Some(Response::GetValue { record: Some(r), .. }) if r.value == b"8"));
    // Stored records expire at the record TTL at the latest.
    let later = now + core.config().record_ttl;
    let gone = core
        .handle_request(
            from,
            Request::GetValue {
                key: b"/n/k".to_vec(),
            },
            later,
        )
        .unwrap();
    assert!(matches!(
        gone,
        Some(Response::GetValue { record: None, .. })
    ));
}

#[test]
fn providers_expire_and_their_addresses_are_retained_shorter() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    let provider = PeerId::random();
    let key = vec![0x00, 0x03, 1, 2, 3]; // an identity multihash
    let add = Request::AddProvider {
        key: key.clone(),
        providers: vec![PeerInfo::new(provider, vec![addr(9)])],
    };
    assert_eq!(core.handle_request(provider, add, now).unwrap(), None);
    let get = |core: &mut KadCore, at| match core
        .handle_request(
            PeerId::random(),
            Request::GetProviders { key: key.clone() },
            at,
        )
        .unwrap()
    {
        Some(Response::GetProviders { providers, .. }) => providers,
        other => panic!("{other:?}"),
    };
    assert_eq!(get(&mut core, now)[0].addrs, vec![addr(9)]);
    let after_addr_ttl = now + core.config().provider_addr_ttl;
    let providers = get(&mut core, after_addr_ttl);
    assert_eq!(providers.len(), 1);
    assert!(providers[0].addrs.is_empty());
    let after_ttl = now + core.config().provider_ttl;
    assert!(get(&mut core, after_ttl).is_empty());
    core.handle_timeout(after_ttl);
    assert_eq!(core.providers().len(), 0, "swept by the cleanup job");
}

#[test]
fn only_servers_with_verified_addresses_enter_the_table() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    let (client, server, addressless) = (PeerId::random(), PeerId::random(), PeerId::random());
    core.on_peer_report(
        client,
        PeerReport {
            server: false,
            verified_addrs: vec![addr(1)],
        },
        now,
    );
    core.on_peer_report(
        addressless,
        PeerReport {
            server: true,
            verified_addrs: vec![],
        },
        now,
    );
    core.on_peer_report(
        server,
        PeerReport {
            server: true,
            verified_addrs: vec![addr(2)],
        },
        now,
    );
    let table = core.routing_table();
    assert!(!table.contains(&client) && !table.contains(&addressless));
    assert!(table.contains(&server));
    // A server that turns client leaves.
    core.on_peer_report(
        server,
        PeerReport {
            server: false,
            verified_addrs: vec![],
        },
        now,
    );
    assert!(!core.routing_table().contains(&server));
    let (_, events) = drain(&mut core);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RoutingRemoved { peer, .. } if *peer == server))
    );
}

#[test]
fn a_client_answers_nothing() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config().with_mode(Mode::Client), now);
    assert!(matches!(
        core.handle_request(PeerId::random(), Request::Ping, now),
        Err(KadError::ClientMode { .. })
    ));
}

#[test]
fn auto_bootstrap_then_refreshes_and_periodic_jobs() {
    let now = Instant::now();
    let cfg = KadConfig {
        auto_bootstrap: true,
        bootstrap_interval: Some(Duration::from_secs(600)),
        max_refresh_bucket: 4,
        ..config()
    };
    let me = PeerId::random();
    let mut core = KadCore::new(me, cfg, now);
    // Peers spread over the first buckets.
    for i in 0..40 {
        core.add_address(PeerId::random(), vec![addr(i)], now);
    }
    // The first peer scheduled a bootstrap at once.
    assert_eq!(core.poll_timeout(), Some(now));
    core.handle_timeout(now);
    let (requests, _) = drain(&mut core);
    assert!(
        requests
            .iter()
            .all(|r| r.request == Request::FindNode { key: me.to_bytes() })
    );
    // Everybody answers with nothing new: the self-lookup ends, refreshes start.
    for r in requests {
        core.on_response(
            r.id,
            answered(Response::FindNode { closer: vec![] }, None),
            now,
        );
    }
    loop {
        let (requests, events) = drain(&mut core);
        if let Some((QueryResult::Bootstrap { refreshes, .. }, _)) = finished(&events) {
            assert!(refreshes >= 1, "stale buckets are refreshed");
        }
        if requests.is_empty() {
            break;
        }
        for r in requests {
            assert!(matches!(r.request, Request::FindNode { .. }));
            core.on_response(
                r.id,
                answered(Response::FindNode { closer: vec![] }, None),
                now,
            );
        }
    }
    assert_eq!(core.active_queries(), 0);
    // Ten minutes later the periodic bootstrap runs again.
    core.handle_timeout(now + Duration::from_secs(600));
    let (requests, _) = drain(&mut core);
    assert!(!requests.is_empty());
}

#[test]
fn republish_and_reprovide_run_on_their_intervals() {
    let now = Instant::now();
    let cfg = KadConfig {
        republish_interval: Some(Duration::from_secs(3600)),
        reprovide_interval: Some(Duration::from_secs(7200)),
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    core.add_address(PeerId::random(), vec![addr(1)], now);
    core.put_value(Record::new(b"/a/1".to_vec(), b"v".to_vec()), now)
        .unwrap();
    core.start_providing(&[0x00, 0x01, 7], now).unwrap();
    // The peer answers (a peer failing twice would leave the table).
    loop {
        let (requests, _) = drain(&mut core);
        if requests.is_empty() {
            break;
        }
        for r in requests {
            let response = match &r.request {
                Request::PutValue { record } => Some(Response::PutValue {
                    key: record.key.clone(),
                    value: record.value.clone(),
                }),
                Request::AddProvider { .. } => None,
                _ => Some(Response::FindNode { closer: vec![] }),
            };
            core.on_response(
                r.id,
                Ok(ResponseInfo {
                    response,
                    dialed: None,
                }),
                now,
            );
        }
    }
    core.handle_timeout(now + Duration::from_secs(3600));
    let (requests, _) = drain(&mut core);
    assert!(requests.iter().any(|r| r.request
        == Request::FindNode {
            key: b"/a/1".to_vec()
        }));
    core.handle_timeout(now + Duration::from_secs(7200));
    let (requests, _) = drain(&mut core);
    assert!(requests.iter().any(|r| r.request
        == Request::FindNode {
            key: vec![0x00, 0x01, 7]
        }));
}

#[test]
fn disjoint_paths_keep_alpha_overall() {
    let now = Instant::now();
    let cfg = KadConfig {
        alpha: 4,
        disjoint_paths: 2,
        ..config()
    };
    let mut core = KadCore::new(PeerId::random(), cfg, now);
    for i in 0..10 {
        core.add_address(PeerId::random(), vec![addr(i)], now);
    }
    core.get_closest_peers(b"k", now).unwrap();
    let (requests, _) = drain(&mut core);
    assert_eq!(requests.len(), 4);
}

#[test]
fn unsolicited_and_late_answers_change_nothing() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    let peer = PeerId::random();
    core.add_address(peer, vec![addr(1)], now);
    core.get_closest_peers(b"k", now).unwrap();
    let (requests, _) = drain(&mut core);
    core.handle_timeout(now + core.config().request_timeout);
    // The late answer of a timed-out request is ignored.
    core.on_response(
        requests[0].id,
        answered(Response::FindNode { closer: vec![] }, None),
        now + Duration::from_secs(11),
    );
    // An answer of the wrong kind to a FIND_NODE is a failure, not a panic.
    core.get_closest_peers(b"k2", now).unwrap();
    let (requests, _) = drain(&mut core);
    for r in requests {
        core.on_response_bytes(r.id, Ok((Some(vec![0x08, 0x01]), None)), now);
    }
    assert!(core.counters().bad_responses >= 1);
}

#[test]
fn requests_of_an_ended_query_are_no_longer_wanted() {
    let now = Instant::now();
    let mut core = KadCore::new(PeerId::random(), config(), now);
    for n in 0..5 {
        core.add_address(PeerId::random(), vec![addr(n)], now);
    }
    core.get_value(b"/n/x", now).unwrap();
    let (requests, _) = drain(&mut core);
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| core.is_wanted(r.id)));
    // The first answer carries the record: the query ends (quorum one), and the shell may
    // drop the requests it has not sent yet.
    core.on_response(
        requests[0].id,
        answered(
            Response::GetValue {
                record: Some(Record::new(b"/n/x".to_vec(), b"v".to_vec())),
                closer: vec![],
            },
            None,
        ),
        now,
    );
    let (_, events) = drain(&mut core);
    assert!(finished(&events).is_some());
    assert!(requests.iter().all(|r| !core.is_wanted(r.id)));
}
