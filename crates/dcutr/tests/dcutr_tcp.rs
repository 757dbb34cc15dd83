//! DCUtR between lp2p hosts on 127.0.0.1 over TCP + noise + yamux, on the real runtime: R
//! runs the relay service, B reserves on R and listens through it, A dials B through R.
//! B (which received the relayed connection) starts the exchange; both dial from their
//! listening port; a direct connection replaces the relayed one, which is closed after the
//! grace period. On loopback there is no NAT, so A's dial reaches B's listener directly:
//! what this proves is the exchange, the roles, the events and the clean-up, not the
//! traversal of a NAT.
//!
//! A does not listen (except in the unilateral-upgrade test): with both listening, B's dial (as the handshake's server) can reach
//! A's listener before A dials, and both ends of that connection would wait as servers. No
//! NAT lets such an unsolicited connection through; on loopback it would make the test
//! depend on which dial wins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, Protocol, RuntimeHandle};
use lp2p_dcutr::{Dcutr, DcutrConfig, DcutrEvent};
use lp2p_host::{Host, HostBuilder};
use lp2p_identify::{Identify, IdentifyConfig};
use lp2p_noise::Noise;
use lp2p_relay::client::{self, ClientConfig, RelayClientEvent};
use lp2p_relay::{HopConfig, RelayService};
use lp2p_swarm::UpgradeStack;
use lp2p_tcp::TcpTransport;
use lp2p_yamux::Yamux;

/// Generous: CI machines are slow and loaded. Only a bound against hangs, never a timing
/// assertion.
const LIMIT: Duration = Duration::from_secs(120);

fn tcp_builder() -> HostBuilder {
    unlisted_tcp_builder().listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
}

fn unlisted_tcp_builder() -> HostBuilder {
    Host::builder()
        .transport(TcpTransport::default())
        .security(Noise::new())
        .muxer(Yamux::default())
}

fn config() -> DcutrConfig {
    DcutrConfig {
        close_relayed_after: Some(Duration::from_millis(200)),
        ..DcutrConfig::default().allowing_private_addrs()
    }
}

async fn peer_behind_relays(listen: bool) -> (Host, client::RelayClient) {
    peer_behind_relays_with(listen, config()).await
}

async fn peer_behind_relays_with(listen: bool, config: DcutrConfig) -> (Host, client::RelayClient) {
    let stack = UpgradeStack::new()
        .security(Noise::new())
        .muxer(Yamux::default());
    let (transport, relay_client) = client::new(stack, ClientConfig::default());
    let builder = if listen {
        tcp_builder()
    } else {
        unlisted_tcp_builder()
    };
    let host = builder
        .transport(transport)
        .on_start(relay_client.hook())
        .on_start(Dcutr::hook(config))
        .build()
        .await
        .unwrap();
    (host, relay_client)
}

/// R running the relay service, and B (listening on 127.0.0.1, with identify when asked)
/// holding a reservation on it. Returns R, R's address ending in `/p2p/R`, and B.
async fn relay_and_b_behind_it(identify: bool) -> (Host, Multiaddr, Host) {
    relay_and_b_behind_it_with(identify, config()).await
}

async fn relay_and_b_behind_it_with(
    identify: bool,
    config: DcutrConfig,
) -> (Host, Multiaddr, Host) {
    let relay = tcp_builder()
        .on_start(RelayService::hook(HopConfig::default()))
        .build()
        .await
        .unwrap();
    let relay_addr = relay.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(relay.local_peer_id()));
    let (b, b_relay) = peer_behind_relays_with(true, config).await;
    if identify {
        let _identify = Identify::new(&b, IdentifyConfig::default());
    }
    let mut reservations = b_relay.events();
    b.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
        .await
        .unwrap();
    while !matches!(
        reservations.next().await,
        Some(RelayClientEvent::ReservationAccepted { .. })
    ) {}
    (relay, relay_addr, b)
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    block_on(async {
        RuntimeHandle::try_default()
            .unwrap()
            .timeout(LIMIT, test)
            .await
            .expect("the test hung");
    });
}

/// A connects to B through the relay at `relay_addr` (ending in `/p2p/R`): a limited
/// connection.
async fn connect_through(a: &Host, relay_addr: Multiaddr, b: &Host) {
    let circuit = relay_addr
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(b.local_peer_id()));
    let relayed = a.connect_addr(circuit).await.unwrap();
    assert!(relayed.is_limited());
}

async fn next_upgrade(events: &mut lp2p_core::events::EventStream<DcutrEvent>) -> DcutrEvent {
    events.next().await.expect("events end with the host")
}

#[test]
fn a_relayed_connection_is_upgraded_to_a_direct_one_and_then_closed() {
    run(async {
        let (relay, relay_addr, b) = relay_and_b_behind_it(false).await;
        let b_dcutr: Dcutr = b.service().unwrap();
        let mut b_events = b_dcutr.events();

        let (a, _a_relay) = peer_behind_relays(false).await;
        let a_dcutr: Dcutr = a.service().unwrap();
        let mut a_events = a_dcutr.events();
        connect_through(&a, relay_addr, &b).await;

        // B initiated, A answered; both see the direct connection.
        let DcutrEvent::Upgraded {
            peer,
            attempts,
            unilateral,
            addr,
            ..
        } = next_upgrade(&mut b_events).await
        else {
            panic!("B's upgrade failed");
        };
        assert_eq!(peer, a.local_peer_id());
        assert_eq!(attempts, 1);
        assert!(!unilateral, "A does not listen: only a hole punch can work");
        assert!(
            !addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)),
            "{addr}"
        );
        let DcutrEvent::Upgraded { peer, .. } = next_upgrade(&mut a_events).await else {
            panic!("A's upgrade failed");
        };
        assert_eq!(peer, b.local_peer_id());
        assert_eq!(b_dcutr.stats().initiated, 1);
        assert_eq!(a_dcutr.stats().answered, 1);

        // The relayed connection goes after the grace period; a direct one stays.
        let deadline = a.runtime().now() + LIMIT;
        while a
            .connections(&b.local_peer_id())
            .iter()
            .any(lp2p_swarm::Connection::is_limited)
        {
            assert!(a.runtime().now() < deadline);
            a.runtime().sleep(Duration::from_millis(20)).await;
        }
        assert!(
            a.connections(&b.local_peer_id())
                .iter()
                .any(|c| !c.is_limited())
        );
        for h in [a, b, relay] {
            h.close().await;
        }
    });
}

/// A peer that dialed through the relay but listens where the other can reach it needs no
/// hole punch: B learns A's listen address from identify over the relayed connection and
/// dials it plainly (the spec's unilateral upgrade). The CONNECT exchange B began beside the
/// identify request (D54) is reset, never followed by SYNC or dials, and A reports the
/// upgrade once B's connection arrives.
#[test]
fn a_peer_that_listens_is_reached_by_a_plain_dial_without_hole_punching() {
    run(async {
        // The whole 250 ms head start: the hole punch must not race the plain dial, even on a
        // machine so loaded that the handshake takes longer than the 25 ms floor (D56).
        let whole_head_start = DcutrConfig {
            unilateral_head_start_rtts: 0,
            ..config()
        };
        let (relay, relay_addr, b) = relay_and_b_behind_it_with(true, whole_head_start).await;
        let b_dcutr: Dcutr = b.service().unwrap();
        let mut b_events = b_dcutr.events();

        // A listens on 127.0.0.1 and answers identify over the relayed connection.
        let (a, _a_relay) = peer_behind_relays(true).await;
        let _a_identify = Identify::new(&a, IdentifyConfig::default());
        let a_dcutr: Dcutr = a.service().unwrap();
        let mut a_events = a_dcutr.events();
        connect_through(&a, relay_addr, &b).await;

        let DcutrEvent::Upgraded {
            peer,
            attempts,
            unilateral,
            addr,
            ..
        } = next_upgrade(&mut b_events).await
        else {
            panic!("B's upgrade failed");
        };
        assert_eq!(peer, a.local_peer_id());
        assert!(unilateral);
        assert_eq!(attempts, 0);
        assert!(a.listen_addrs().contains(&addr), "{addr}");
        let stats = b_dcutr.stats();
        assert_eq!(
            (
                stats.initiated,
                stats.attempts,
                stats.succeeded,
                stats.unilateral
            ),
            (1, 0, 1, 1)
        );
        // B's direct connection is its own dial; A never took part in an exchange.
        assert!(
            b.connections(&a.local_peer_id())
                .iter()
                .any(|c| !c.is_limited() && c.direction() == lp2p_swarm::Direction::Outbound)
        );
        // A answered B's CONNECT (it arrives half a round trip after the relayed connection,
        // B's plain dial takes more) and its side ends in the upgrade too: B's connection,
        // not a dial of its own.
        let answered = a_dcutr.stats().answered;
        assert!(answered <= 1);
        if answered == 1 {
            let DcutrEvent::Upgraded {
                peer, unilateral, ..
            } = next_upgrade(&mut a_events).await
            else {
                panic!("A's side of the upgrade failed");
            };
            assert_eq!((peer, unilateral), (b.local_peer_id(), false));
        }
        assert!(
            !a.connections(&b.local_peer_id())
                .iter()
                .any(|c| !c.is_limited() && c.direction() == lp2p_swarm::Direction::Outbound),
            "A dialed B directly"
        );
        for h in [a, b, relay] {
            h.close().await;
        }
    });
}

#[test]
fn a_dcutr_stream_over_a_direct_connection_is_refused() {
    run(async {
        let a = tcp_builder()
            .on_start(Dcutr::hook(config()))
            .build()
            .await
            .unwrap();
        let b = tcp_builder().build().await.unwrap();
        b.connect(a.local_peer_id(), a.listen_addrs())
            .await
            .unwrap();
        // The stream is reset, not answered: during the negotiation or at the first read.
        if let Ok(mut s) = b
            .new_stream(&a.local_peer_id(), [lp2p_dcutr::PROTOCOL])
            .await
        {
            let mut buf = [0u8; 1];
            let read = futures::AsyncReadExt::read(&mut s, &mut buf).await;
            assert!(matches!(read, Ok(0) | Err(_)), "answered: {read:?}");
        }
        let dcutr: Dcutr = a.service().unwrap();
        // The refusal is counted once the handler ran.
        let deadline = a.runtime().now() + LIMIT;
        while dcutr.stats().refused == 0 {
            assert!(a.runtime().now() < deadline);
            a.runtime().sleep(Duration::from_millis(20)).await;
        }
        for h in [a, b] {
            h.close().await;
        }
    });
}

/// With no head start, the plain dial and the hole punch race from the start (D53). Whichever
/// wins, B reports an upgrade, and A never reports a failure: when B's plain dial wins and B
/// resets the exchange, A finds the direct connection and reports it as its upgrade.
#[test]
fn a_plain_dial_racing_the_hole_punch_ends_in_an_upgrade_on_both_sides() {
    run(async {
        let racing = DcutrConfig {
            unilateral_head_start: Duration::ZERO,
            ..config()
        };
        let (relay, relay_addr, b) = relay_and_b_behind_it_with(true, racing.clone()).await;
        let b_dcutr: Dcutr = b.service().unwrap();
        let mut b_events = b_dcutr.events();
        let (a, _a_relay) = peer_behind_relays_with(true, racing).await;
        let _a_identify = Identify::new(&a, IdentifyConfig::default());
        let a_dcutr: Dcutr = a.service().unwrap();
        let mut a_events = a_dcutr.events();
        connect_through(&a, relay_addr, &b).await;

        let event = next_upgrade(&mut b_events).await;
        assert!(matches!(event, DcutrEvent::Upgraded { .. }), "B: {event:?}");
        // A's side of an exchange B gave up ends within REMOTE_DIRECT_WAIT (1 s).
        a.runtime().sleep(Duration::from_secs(3)).await;
        if a_dcutr.stats().answered == 1 {
            let event = next_upgrade(&mut a_events).await;
            assert!(matches!(event, DcutrEvent::Upgraded { .. }), "A: {event:?}");
        }
        assert_eq!(a_dcutr.stats().failed, 0, "{:?}", a_dcutr.stats());
        assert!(
            b.connections(&a.local_peer_id())
                .iter()
                .any(|c| !c.is_limited())
        );
        for h in [a, b, relay] {
            h.close().await;
        }
    });
}
