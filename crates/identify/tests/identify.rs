//! Identify between hosts over lp2p-memory + plaintext + yamux: both ways, push, observed
//! address adoption at the threshold, peers that send bad answers or pushes, and answers and
//! pushes the resource manager has no memory for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::framing::encode_frame;
use lp2p_core::runtime::block_on;
use lp2p_core::{Keypair, Multiaddr, PeerId, RuntimeHandle};
use lp2p_host::{EventStream, Host, HostBuilder, HostEvent, HostStream};
use lp2p_identify::proto::Identify as Pb;
use lp2p_identify::{
    ID_PROTOCOL, Identify, IdentifyConfig, IdentifyError, IdentifyEvent, IdentifyInfo,
    MEMORY_SERVICE, PUSH_PROTOCOL,
};
use lp2p_memory::MemoryTransport;
use lp2p_noise::Noise;
use lp2p_peerstore::record::{PeerRecord, SignedEnvelope};
use lp2p_plaintext::Plaintext;
use lp2p_rcmgr::{ResourceManager, Scope};
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;
use prost::Message;

/// Generous: CI machines are slow and loaded.
const LIMIT: Duration = Duration::from_secs(120);

fn run<F: std::future::Future>(f: F) -> F::Output {
    let rt = RuntimeHandle::default();
    block_on(async move { rt.timeout(LIMIT, f).await.expect("test timed out") })
}

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn memory() -> HostBuilder {
    Host::builder()
        .transport(MemoryTransport::default())
        .security(Plaintext::new())
        .muxer(Yamux::default())
}

async fn listening() -> Host {
    memory().listen_on(ma("/memory/0")).build().await.unwrap()
}

/// The next `Identified` event about `peer`.
async fn identified(events: &mut EventStream<IdentifyEvent>, peer: PeerId) -> Arc<IdentifyInfo> {
    loop {
        if let IdentifyEvent::Identified { peer: p, info } = events.next().await.unwrap()
            && p == peer
        {
            return info;
        }
    }
}

#[test]
fn both_sides_identify_each_other_and_fill_the_peerstore() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let config_b = IdentifyConfig {
            agent_version: "other-agent/9".into(),
            protocol_version: "test/1".into(),
            ..IdentifyConfig::default()
        };
        let id_b = Identify::new(&b, config_b);
        b.set_stream_handler("/echo/1.0.0", |_s: HostStream| async {});
        let (mut ev_a, mut ev_b) = (id_a.events(), lp2p_identify::subscribe(&b));
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        let about_b = identified(&mut ev_a, b.local_peer_id()).await;
        let about_a = identified(&mut ev_b, a.local_peer_id()).await;

        assert_eq!(about_b.agent_version, "other-agent/9");
        assert_eq!(about_b.protocol_version, "test/1");
        assert_eq!(about_b.public_key, b.keypair().public());
        assert_eq!(about_b.listen_addrs, b.listen_addrs());
        assert!(about_b.signed_record);
        for p in [ID_PROTOCOL, PUSH_PROTOCOL, "/echo/1.0.0"] {
            assert!(about_b.protocols.iter().any(|q| q == p), "{p}");
        }
        // A saw B at B's listen address; B saw A at A's ephemeral dialing address.
        assert_eq!(about_a.observed_addr.as_ref(), b.listen_addrs().first());
        assert!(about_a.agent_version.starts_with("lp2p/"));
        assert_eq!(about_a.listen_addrs, a.listen_addrs());

        let store = a.peerstore();
        let peer = b.local_peer_id();
        assert_eq!(store.agent_version(&peer).as_deref(), Some("other-agent/9"));
        assert_eq!(store.protocol_version(&peer).as_deref(), Some("test/1"));
        assert_eq!(store.public_key(&peer), Some(b.keypair().public()));
        assert_eq!(
            store.supports_protocols(&peer, &["/echo/1.0.0", "/nope"]),
            vec!["/echo/1.0.0"]
        );
        assert!(store.addrs(&peer).contains(&b.listen_addrs()[0]));
        assert_eq!(id_a.info(&peer), Some(about_b));
        assert_eq!(id_b.info(&a.local_peer_id()), Some(about_a));
        assert!(id_a.stats().applied >= 1);

        // Gone with the connection.
        a.disconnect(&peer).await;
        loop {
            if id_a.info(&peer).is_none() {
                break;
            }
            a.runtime().sleep(Duration::from_millis(10)).await;
        }
        a.close().await;
        b.close().await;
        assert_eq!(a.runtime().live_tasks(), 0);
        assert_eq!(b.runtime().live_tasks(), 0);
    });
}

#[test]
fn identify_over_tcp_and_noise() {
    run(async {
        let builder = || {
            Host::builder()
                .transport(TcpTransport::default())
                .security(Noise::new())
                .muxer(Yamux::default())
                .listen_on(ma("/ip4/127.0.0.1/tcp/0"))
        };
        let a = builder().build().await.unwrap();
        let b = builder().build().await.unwrap();
        let ia = Identify::new(&a, IdentifyConfig::default());
        let _ib = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = lp2p_identify::subscribe(&a);
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        let info = identified(&mut ev_a, b.local_peer_id()).await;
        assert_eq!(info.listen_addrs, b.listen_addrs());
        assert!(info.signed_record);
        // B saw A's connection come from an ephemeral port; A's observed address, translated
        // to A's listening port, is A's listen address.
        let observed = info
            .observed_addr
            .clone()
            .expect("B tells what it observed");
        assert_ne!(observed, a.listen_addrs()[0], "A dialed from another port");
        assert_eq!(ia.observed_addrs(), a.listen_addrs());
        a.close().await;
        b.close().await;
    });
}

#[test]
fn a_new_handler_is_pushed_to_connected_peers() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let id_b = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = lp2p_identify::subscribe(&a);
        let mut ev_b = lp2p_identify::subscribe(&b);
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        identified(&mut ev_a, b.local_peer_id()).await;
        // B must know A supports push before it pushes to A.
        identified(&mut ev_b, a.local_peer_id()).await;

        b.set_stream_handler("/new/1.0.0", |_s: HostStream| async {});
        let peer = b.local_peer_id();
        let info = loop {
            let info = identified(&mut ev_a, peer).await;
            if info.protocols.iter().any(|p| p == "/new/1.0.0") {
                break info;
            }
        };
        // A push changes only what it carries.
        assert!(info.agent_version.starts_with("lp2p/"));
        assert_eq!(info.listen_addrs, b.listen_addrs());
        assert_eq!(
            a.peerstore().supports_protocols(&peer, &["/new/1.0.0"]),
            vec!["/new/1.0.0"]
        );
        // (B counts its push once its close completed, which may be just after A applied it.)
        while id_b.stats().pushes_sent == 0 {
            b.runtime().sleep(Duration::from_millis(10)).await;
        }
        assert!(id_a.stats().pushes_received >= 1);

        // And a removal too.
        b.remove_stream_handler("/new/1.0.0");
        loop {
            let info = identified(&mut ev_a, peer).await;
            if !info.protocols.iter().any(|p| p == "/new/1.0.0") {
                break;
            }
        }
        assert!(
            a.peerstore()
                .supports_protocols(&peer, &["/new/1.0.0"])
                .is_empty()
        );
        a.close().await;
        b.close().await;
    });
}

#[test]
fn observed_address_is_adopted_exactly_at_the_threshold() {
    run(async {
        let server = listening().await;
        let config = IdentifyConfig {
            observed_addr_threshold: 3,
            ..IdentifyConfig::default()
        };
        let _id = Identify::new(&server, config);
        let mut events = lp2p_identify::subscribe(&server);
        let mut confirmations = server.events();
        let mut clients = Vec::new();
        for i in 0..3 {
            let client = memory().build().await.unwrap();
            let _client_id = Identify::new(&client, IdentifyConfig::default());
            client
                .connect(server.local_peer_id(), server.listen_addrs())
                .await
                .unwrap();
            // The server learns what this client sees before it emits `Identified`.
            identified(&mut events, client.local_peer_id()).await;
            if i < 2 {
                assert!(
                    server.external_addrs().is_empty(),
                    "adopted after {} observers",
                    i + 1
                );
            }
            clients.push(client);
        }
        assert_eq!(server.external_addrs(), server.listen_addrs());
        // The event went out too.
        loop {
            if let HostEvent::ExternalAddrConfirmed(addr) = confirmations.next().await.unwrap() {
                assert_eq!(addr, server.listen_addrs()[0]);
                break;
            }
        }
        for c in &clients {
            c.close().await;
        }
        server.close().await;
    });
}

/// A host without identify whose `/ipfs/id/1.0.0` handler writes `answer` and closes.
async fn fake_peer(keypair: Keypair, answer: Vec<u8>) -> Host {
    let host = memory()
        .keypair(keypair)
        .listen_on(ma("/memory/0"))
        .build()
        .await
        .unwrap();
    let answer = Arc::new(answer);
    host.set_stream_handler(ID_PROTOCOL, move |mut s: HostStream| {
        let answer = answer.clone();
        async move {
            let _ = s.write_all(&answer).await;
            let _ = s.close().await;
        }
    });
    host
}

/// A bad-input case: its name and how to make the answer from the fake peer's key.
type Case<'a> = (&'static str, Box<dyn Fn(&Keypair) -> Vec<u8> + 'a>);

fn framed(message: &Pb) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&message.encode_to_vec(), &mut out);
    out
}

fn answer_from(key: &Keypair, addrs: &[&str]) -> Pb {
    Pb {
        protocol_version: Some("ipfs/0.1.0".into()),
        agent_version: Some("evil/1".into()),
        public_key: Some(key.public().encode_protobuf()),
        listen_addrs: addrs.iter().map(|a| ma(a).to_vec()).collect(),
        observed_addr: None,
        protocols: vec!["/evil/1.0.0".into()],
        signed_peer_record: None,
    }
}

/// Connects a victim with identify to a fake peer; waits until identify finished with it
/// (applied or failed) and returns the victim, its identify and the fake.
async fn victim_of(fake: Host, config: IdentifyConfig) -> (Host, Identify, Host) {
    let victim = memory().build().await.unwrap();
    let identify = Identify::new(&victim, config);
    victim
        .connect(fake.local_peer_id(), fake.listen_addrs())
        .await
        .unwrap();
    loop {
        let s = identify.stats();
        if s.applied + s.failed >= 1 {
            break;
        }
        victim.runtime().sleep(Duration::from_millis(10)).await;
    }
    (victim, identify, fake)
}

/// Nothing of what the fake said reached the victim's peerstore.
fn assert_nothing_stored(victim: &Host, fake: PeerId) {
    let store = victim.peerstore();
    assert_eq!(store.agent_version(&fake), None);
    assert_eq!(store.protocol_version(&fake), None);
    assert!(store.protocols(&fake).is_empty());
    assert!(
        !store
            .addrs(&fake)
            .iter()
            .any(|a| a.to_string().contains("6.6.6.6"))
    );
}

#[test]
fn bad_answers_fail_and_store_nothing() {
    run(async {
        let stranger = Keypair::generate_ed25519();
        let oversized = {
            let mut m = answer_from(&Keypair::generate_ed25519(), &[]);
            m.agent_version = Some("x".repeat(9000));
            m
        };
        let cases: Vec<Case<'_>> = vec![
            (
                "key of another peer",
                Box::new(|_| framed(&answer_from(&stranger, &["/ip4/6.6.6.6/tcp/1"]))),
            ),
            ("oversized", Box::new(move |_| framed(&oversized))),
            (
                "malformed protobuf",
                Box::new(|_| {
                    let mut out = Vec::new();
                    encode_frame(&[0x0a, 0x40, 0x01, 0x02], &mut out);
                    out
                }),
            ),
            (
                "truncated",
                Box::new(|key| {
                    let mut out = framed(&answer_from(key, &["/ip4/6.6.6.6/tcp/1"]));
                    out.truncate(out.len() - 3);
                    out
                }),
            ),
            ("nothing at all", Box::new(|_| Vec::new())),
            (
                "too many messages",
                Box::new(|key| {
                    let one = framed(&answer_from(key, &["/ip4/6.6.6.6/tcp/1"]));
                    one.repeat(11)
                }),
            ),
        ];
        for (what, make) in cases {
            let key = Keypair::generate_ed25519();
            let fake = fake_peer(key.clone(), make(&key)).await;
            let fake_id = fake.local_peer_id();
            let (victim, identify, fake) = victim_of(fake, IdentifyConfig::default()).await;
            let s = identify.stats();
            assert_eq!((s.applied, s.failed), (0, 1), "{what}");
            assert_nothing_stored(&victim, fake_id);
            assert!(identify.info(&fake_id).is_none(), "{what}");
            // The connection itself is fine.
            assert_eq!(victim.connected_peers(), vec![fake_id], "{what}");
            victim.close().await;
            fake.close().await;
        }
    });
}

#[test]
fn a_silent_peer_times_out_and_stores_nothing() {
    run(async {
        let fake = memory().listen_on(ma("/memory/0")).build().await.unwrap();
        fake.set_stream_handler(ID_PROTOCOL, |mut s: HostStream| async move {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink).await;
        });
        let fake_id = fake.local_peer_id();
        let config = IdentifyConfig {
            timeout: Duration::from_millis(300),
            ..IdentifyConfig::default()
        };
        let (victim, identify, fake) = victim_of(fake, config).await;
        assert_eq!(identify.stats().failed, 1);
        assert_nothing_stored(&victim, fake_id);
        victim.close().await;
        fake.close().await;
    });
}

#[test]
fn bad_signed_records_are_ignored_and_plain_addresses_used() {
    run(async {
        let thief = Keypair::generate_ed25519();
        let cases: Vec<Case<'_>> = vec![
            (
                "record of another peer",
                Box::new(|_| {
                    PeerRecord {
                        peer_id: thief.public().to_peer_id(),
                        seq: 1,
                        addresses: vec![ma("/ip4/6.6.6.6/tcp/1")],
                    }
                    .seal(&thief)
                    .unwrap()
                    .encode()
                }),
            ),
            (
                "record naming the peer, signed by another key",
                Box::new(|key| {
                    let record = PeerRecord {
                        peer_id: key.public().to_peer_id(),
                        seq: 1,
                        addresses: vec![ma("/ip4/6.6.6.6/tcp/1")],
                    };
                    SignedEnvelope::seal(
                        &thief,
                        lp2p_peerstore::record::PEER_RECORD_DOMAIN,
                        lp2p_peerstore::record::PEER_RECORD_PAYLOAD_TYPE,
                        record.encode(),
                    )
                    .unwrap()
                    .encode()
                }),
            ),
            (
                "bad signature",
                Box::new(|key| {
                    let good = PeerRecord {
                        peer_id: key.public().to_peer_id(),
                        seq: 1,
                        addresses: vec![ma("/ip4/6.6.6.6/tcp/1")],
                    }
                    .seal(key)
                    .unwrap();
                    let mut sig = good.signature().to_vec();
                    sig[0] ^= 1;
                    // Re-assemble the envelope protobuf with the damaged signature.
                    let mut out = Vec::new();
                    for (tag, bytes) in [
                        (0x0a, key.public().encode_protobuf()),
                        (0x12, good.payload_type().to_vec()),
                        (0x1a, good.payload().to_vec()),
                        (0x2a, sig),
                    ] {
                        out.push(tag);
                        lp2p_core::varint::encode_into(bytes.len() as u64, &mut out);
                        out.extend_from_slice(&bytes);
                    }
                    out
                }),
            ),
            ("garbage", Box::new(|_| vec![0xff, 0x01, 0x02])),
        ];
        for (what, make) in cases {
            let key = Keypair::generate_ed25519();
            let mut answer = answer_from(&key, &["/ip4/10.1.2.3/tcp/7"]);
            answer.signed_peer_record = Some(make(&key));
            let fake = fake_peer(key.clone(), framed(&answer)).await;
            let fake_id = fake.local_peer_id();
            let (victim, identify, fake) = victim_of(fake, IdentifyConfig::default()).await;
            let s = identify.stats();
            assert_eq!((s.applied, s.records_rejected), (1, 1), "{what}");
            let info = identify.info(&fake_id).unwrap();
            assert!(!info.signed_record, "{what}");
            assert_eq!(info.listen_addrs, vec![ma("/ip4/10.1.2.3/tcp/7")], "{what}");
            let addrs = victim.peerstore().addrs(&fake_id);
            assert!(addrs.contains(&ma("/ip4/10.1.2.3/tcp/7")), "{what}");
            assert!(
                !addrs.iter().any(|a| a.to_string().contains("6.6.6.6")),
                "{what}: {addrs:?}"
            );
            victim.close().await;
            fake.close().await;
        }
    });
}

#[test]
fn a_valid_signed_record_wins_over_plain_addresses() {
    run(async {
        let key = Keypair::generate_ed25519();
        let mut answer = answer_from(&key, &["/ip4/10.1.2.3/tcp/7"]);
        answer.signed_peer_record = Some(
            PeerRecord {
                peer_id: key.public().to_peer_id(),
                seq: 5,
                addresses: vec![ma("/ip4/10.9.9.9/tcp/9")],
            }
            .seal_as(&key, lp2p_peerstore::record::RecordFormat::Legacy)
            .unwrap()
            .encode(),
        );
        let fake = fake_peer(key, framed(&answer)).await;
        let fake_id = fake.local_peer_id();
        let (victim, identify, fake) = victim_of(fake, IdentifyConfig::default()).await;
        let info = identify.info(&fake_id).unwrap();
        assert!(info.signed_record);
        assert_eq!(info.listen_addrs, vec![ma("/ip4/10.9.9.9/tcp/9")]);
        assert_eq!(info.agent_version, "evil/1");
        assert!(
            !victim
                .peerstore()
                .addrs(&fake_id)
                .contains(&ma("/ip4/10.1.2.3/tcp/7"))
        );
        victim.close().await;
        fake.close().await;
    });
}

#[test]
fn a_push_with_a_foreign_key_changes_nothing() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let _id_b = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = lp2p_identify::subscribe(&a);
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        let before = identified(&mut ev_a, b.local_peer_id()).await;
        // B (by hand) pushes a message carrying a stranger's key and other data.
        let stranger = Keypair::generate_ed25519();
        let mut s = b
            .new_stream(&a.local_peer_id(), [PUSH_PROTOCOL])
            .await
            .unwrap();
        s.write_all(&framed(&answer_from(&stranger, &["/ip4/6.6.6.6/tcp/1"])))
            .await
            .unwrap();
        // A refuses the push by resetting the stream, which may reach B while its (lazy)
        // close still waits for A's negotiation answer: then the close fails, rightly.
        let _ = s.close().await;
        loop {
            if id_a.stats().failed >= 1 {
                break;
            }
            a.runtime().sleep(Duration::from_millis(10)).await;
        }
        let peer = b.local_peer_id();
        assert_eq!(id_a.info(&peer), Some(before));
        assert!(
            a.peerstore()
                .agent_version(&peer)
                .unwrap()
                .starts_with("lp2p/")
        );
        assert!(
            a.peerstore()
                .supports_protocols(&peer, &["/evil/1.0.0"])
                .is_empty()
        );
        a.close().await;
        b.close().await;
    });
}

#[test]
fn too_many_protocols_and_addresses_are_trimmed_to_the_peerstore_limits() {
    run(async {
        let key = Keypair::generate_ed25519();
        let mut answer = answer_from(&key, &[]);
        answer.protocols = (0..200).map(|i| format!("/p/{i}")).collect();
        answer.listen_addrs = (0..100u16)
            .map(|i| ma(&format!("/ip4/10.0.0.1/tcp/{}", 1000 + i)).to_vec())
            .collect();
        let fake = fake_peer(key, framed(&answer)).await;
        let fake_id = fake.local_peer_id();
        let (victim, identify, fake) = victim_of(fake, IdentifyConfig::default()).await;
        assert_eq!(identify.stats().applied, 1);
        let store = victim.peerstore();
        let limits = store.config();
        let protocols = store.protocols(&fake_id);
        assert_eq!(protocols.len(), limits.max_protocols_per_peer());
        assert!(protocols.iter().any(|p| p == "/p/0"));
        let addrs = store.addrs(&fake_id);
        assert!(addrs.contains(&ma("/ip4/10.0.0.1/tcp/1000")), "{addrs:?}");
        assert!(addrs.len() <= limits.max_addrs_per_peer());
        assert_eq!(store.agent_version(&fake_id).as_deref(), Some("evil/1"));
        // The event carries everything the peer said.
        assert_eq!(identify.info(&fake_id).unwrap().protocols.len(), 200);
        victim.close().await;
        fake.close().await;
    });
}

#[test]
fn identify_event_streams_end_when_the_host_closes() {
    run(async {
        // One subscriber from before the service starts, one from the service, one from a
        // host that never runs identify: all end with their host.
        let a = listening().await;
        let early = lp2p_identify::subscribe(&a);
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let late = id_a.events();
        let b = listening().await;
        let without = lp2p_identify::subscribe(&b);
        a.close().await;
        b.close().await;
        for events in [early, late, without] {
            let seen: Vec<IdentifyEvent> = events.collect().await;
            assert!(seen.is_empty(), "{seen:?}");
        }
        // After the close, a new subscription ends at once.
        assert!(id_a.events().next().await.is_none());
        assert!(lp2p_identify::subscribe(&a).next().await.is_none());
    });
}

#[test]
fn connections_made_before_identify_started_are_identified() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let _id_b = Identify::new(&b, IdentifyConfig::default());
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        let mut events = lp2p_identify::subscribe(&a);
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let info = identified(&mut events, b.local_peer_id()).await;
        assert_eq!(info.listen_addrs, b.listen_addrs());
        assert!(id_a.info(&b.local_peer_id()).is_some());
        a.close().await;
        b.close().await;
    });
}

#[test]
fn a_peer_gets_two_pushes_in_flight_at_most() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let _id_b = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = lp2p_identify::subscribe(&a);
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        identified(&mut ev_a, b.local_peer_id()).await;
        // B opens three push streams by hand and sends nothing yet. Offering a second
        // protocol makes each negotiation take the full round trip (a single announced
        // protocol would be proposed lazily and reach A only with its first bytes, and A's
        // handlers could then start in any order): A has taken each stream before B opens
        // the next, so the third is the one over the limit.
        let not_announced = "/not-announced/1.0.0";
        let mut streams = Vec::new();
        for _ in 0..2 {
            let s = b
                .new_stream(&a.local_peer_id(), [PUSH_PROTOCOL, not_announced])
                .await
                .unwrap();
            streams.push(s);
        }
        // (The reset may arrive during negotiation or after it.)
        let third = b
            .new_stream(&a.local_peer_id(), [PUSH_PROTOCOL, not_announced])
            .await;
        // The third is reset and counted as failed.
        while id_a.stats().failed == 0 {
            a.runtime().sleep(Duration::from_millis(10)).await;
        }
        drop(third);
        // The first two still work: push a valid message on each.
        let key = b.keypair().clone();
        let mut ok = 0;
        for mut s in streams {
            let mut msg = answer_from(&key, &["/ip4/10.7.7.7/tcp/7"]);
            msg.agent_version = Some("pusher/1".into());
            let sent = s.write_all(&framed(&msg)).await.is_ok() && s.close().await.is_ok();
            if sent {
                ok += 1;
            }
        }
        assert!(ok >= 2);
        while identified(&mut ev_a, b.local_peer_id()).await.agent_version != "pusher/1" {}
        loop {
            let s = id_a.stats();
            if s.pushes_received == 2 {
                assert_eq!(s.failed, 1);
                break;
            }
            a.runtime().sleep(Duration::from_millis(10)).await;
        }
        a.close().await;
        b.close().await;
    });
}

/// A change not yet pushed when the host closes is pushed before the connections close: with
/// a debounce far longer than the test (the push is waiting it out), and right after the
/// change (its event may not even have reached the service).
#[test]
fn a_change_not_yet_pushed_is_pushed_on_close() {
    for late in [false, true] {
        run(async {
            let a = listening().await;
            let b = listening().await;
            let id_a = Identify::new(&a, IdentifyConfig::default());
            let slow = IdentifyConfig {
                push_debounce: Duration::from_secs(3600),
                ..IdentifyConfig::default()
            };
            let _id_b = Identify::new(&b, slow);
            let (mut ev_a, mut ev_b) = (id_a.events(), lp2p_identify::subscribe(&b));
            a.connect(b.local_peer_id(), b.listen_addrs())
                .await
                .unwrap();
            identified(&mut ev_a, b.local_peer_id()).await;
            identified(&mut ev_b, a.local_peer_id()).await;

            b.set_stream_handler("/late/1.0.0", |_s: HostStream| async {});
            if !late {
                // Let the service see the change and start waiting out its debounce.
                b.runtime().sleep(Duration::from_millis(100)).await;
            }
            b.close().await;
            let peer = b.local_peer_id();
            loop {
                let info = identified(&mut ev_a, peer).await;
                if info.protocols.iter().any(|p| p == "/late/1.0.0") {
                    break;
                }
            }
            assert!(id_a.stats().pushes_received >= 1);
            a.close().await;
        });
    }
}

/// A memory transport that claims its listener is bound to `0.0.0.0` (the test must not bind
/// a real socket to every interface): what a host listening on `/ip4/0.0.0.0/tcp/N` shows
/// identify, with the real memory address kept aside for dialing.
struct AllInterfaces {
    memory: MemoryTransport,
    bound: Arc<std::sync::Mutex<Option<Multiaddr>>>,
}

struct AllInterfacesListener {
    inner: Box<dyn lp2p_core::RawListener>,
    port: u16,
}

#[lp2p_core::async_trait]
impl lp2p_core::RawTransport for AllInterfaces {
    fn name(&self) -> &'static str {
        "all-interfaces"
    }
    fn can_dial(&self, addr: &Multiaddr) -> bool {
        self.memory.can_dial(addr)
    }
    fn can_listen(&self, addr: &Multiaddr) -> bool {
        addr.to_string().starts_with("/ip4/0.0.0.0/tcp/")
    }
    async fn dial(
        &self,
        addr: &Multiaddr,
        opts: &lp2p_core::DialOpts,
    ) -> Result<Box<dyn lp2p_core::Connection>, lp2p_core::Error> {
        self.memory.dial(addr, opts).await
    }
    async fn listen(
        &self,
        _addr: &Multiaddr,
    ) -> Result<Box<dyn lp2p_core::RawListener>, lp2p_core::Error> {
        let inner = self.memory.listen(&ma("/memory/0")).await?;
        *self.bound.lock().unwrap() = Some(inner.local_addr());
        Ok(Box::new(AllInterfacesListener { inner, port: 4001 }))
    }
}

#[lp2p_core::async_trait]
impl lp2p_core::RawListener for AllInterfacesListener {
    async fn accept(&mut self) -> Result<Box<dyn lp2p_core::Connection>, lp2p_core::Error> {
        self.inner.accept().await
    }
    fn local_addr(&self) -> Multiaddr {
        ma(&format!("/ip4/0.0.0.0/tcp/{}", self.port))
    }
}

/// A host listening on 0.0.0.0 advertises its interface addresses (loopback among them) with
/// the listener's port, and never 0.0.0.0; its signed record carries the same.
#[test]
fn a_listener_on_all_interfaces_is_advertised_per_interface() {
    run(async {
        let bound = Arc::new(std::sync::Mutex::new(None));
        let b = Host::builder()
            .transport(AllInterfaces {
                memory: MemoryTransport::default(),
                bound: bound.clone(),
            })
            .security(Plaintext::new())
            .muxer(Yamux::default())
            .listen_on(ma("/ip4/0.0.0.0/tcp/4001"))
            .build()
            .await
            .unwrap();
        assert_eq!(b.listen_addrs(), vec![ma("/ip4/0.0.0.0/tcp/4001")]);
        let a = memory().build().await.unwrap();
        let _ia = Identify::new(&a, IdentifyConfig::default());
        let _ib = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = lp2p_identify::subscribe(&a);
        let memory_addr = bound.lock().unwrap().clone().unwrap();
        a.connect(b.local_peer_id(), vec![memory_addr])
            .await
            .unwrap();
        let info = identified(&mut ev_a, b.local_peer_id()).await;
        assert!(
            info.listen_addrs.contains(&ma("/ip4/127.0.0.1/tcp/4001")),
            "{:?}",
            info.listen_addrs
        );
        assert!(
            info.listen_addrs
                .iter()
                .all(|addr| addr.to_string().starts_with("/ip4/")
                    && addr.to_string().ends_with("/tcp/4001")
                    && !addr.to_string().starts_with("/ip4/0.0.0.0")),
            "{:?}",
            info.listen_addrs
        );
        assert!(
            info.signed_record,
            "the addresses came from the signed record"
        );
        a.close().await;
        b.close().await;
    });
}

/// Polls `check` every 10 ms until it holds (the whole test is bounded by [`LIMIT`]).
async fn eventually(host: &Host, mut check: impl FnMut() -> bool) {
    while !check() {
        host.runtime().sleep(Duration::from_millis(10)).await;
    }
}

/// Bytes identify holds in `host`'s resource manager now.
fn identify_memory(host: &Host) -> usize {
    let stats = host.resource_manager().stats();
    stats
        .service_memory
        .get(MEMORY_SERVICE)
        .copied()
        .unwrap_or(0)
}

#[test]
fn an_answer_or_push_the_resource_manager_has_no_memory_for_fails_the_exchange() {
    run(async {
        // Each service may hold 64 bytes on `a`; an identify answer is hundreds.
        let manager = ResourceManager::builder()
            .system_memory(64 << 20)
            .peer_memory(16 << 20)
            .connection_memory(16 << 20)
            .service_memory(64)
            .build()
            .unwrap();
        let a = memory()
            .resource_manager(manager)
            .listen_on(ma("/memory/0"))
            .build()
            .await
            .unwrap();
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let id_b = Identify::new(&b, IdentifyConfig::default());
        let peer = b.local_peer_id();
        a.connect(peer, b.listen_addrs()).await.unwrap();
        // The automatic exchange fails on `a`, counted; nothing of `b` is stored.
        eventually(&a, || id_a.stats().out_of_memory >= 1).await;
        let stats = id_a.stats();
        assert!(stats.failed >= 1 && stats.applied == 0, "{stats:?}");
        assert!(a.resource_manager().stats().denied(Scope::Service) >= 1);
        assert!(id_a.info(&peer).is_none());
        assert_eq!(a.peerstore().agent_version(&peer), None);
        // Asking again fails the same way, with the peer and the denial in the error.
        let connection = a.connections(&peer).into_iter().next().unwrap();
        match id_a.identify(&connection).await {
            Err(IdentifyError::OutOfMemory { peer: p, denied }) => {
                assert_eq!(*p, peer);
                assert!(denied.requested > 0 && denied.limit == 64, "{denied:?}");
                let text = IdentifyError::OutOfMemory { peer: p, denied }.to_string();
                assert!(text.contains(&peer.to_string()), "{text}");
                assert!(text.contains("memory limit of the service"), "{text}");
            }
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
        // `b` read `a`'s answer with its own (default) budget and knows `a` takes pushes; a
        // push from `b` is refused on `a` the same way.
        eventually(&b, || id_b.info(&a.local_peer_id()).is_some()).await;
        let before = id_a.stats().out_of_memory;
        b.set_stream_handler("/new/1.0.0", |_s: HostStream| async {});
        eventually(&a, || id_a.stats().out_of_memory > before).await;
        assert!(id_a.info(&peer).is_none());
        // The connection survives, and nothing stays reserved.
        assert_eq!(a.connected_peers(), vec![peer]);
        assert_eq!(identify_memory(&a), 0);
        a.close().await;
        b.close().await;
    });
}

#[test]
fn identify_with_default_limits_leaves_nothing_reserved() {
    run(async {
        let a = listening().await;
        let b = listening().await;
        let id_a = Identify::new(&a, IdentifyConfig::default());
        let id_b = Identify::new(&b, IdentifyConfig::default());
        let mut ev_a = id_a.events();
        a.connect(b.local_peer_id(), b.listen_addrs())
            .await
            .unwrap();
        identified(&mut ev_a, b.local_peer_id()).await;
        eventually(&b, || id_b.info(&a.local_peer_id()).is_some()).await;
        // A push too.
        b.set_stream_handler("/new/1.0.0", |_s: HostStream| async {});
        eventually(&a, || id_a.stats().pushes_received >= 1).await;
        eventually(&a, || identify_memory(&a) == 0 && identify_memory(&b) == 0).await;
        for (host, identify) in [(&a, &id_a), (&b, &id_b)] {
            assert_eq!(host.resource_manager().stats().denied(Scope::Service), 0);
            assert_eq!(identify.stats().out_of_memory, 0);
            assert_eq!(identify.stats().failed, 0);
        }
        a.close().await;
        b.close().await;
    });
}
