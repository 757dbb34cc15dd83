//! Circuit relay v2 against js-libp2p (`@libp2p/circuit-relay-v2` 4.2.13 on js-libp2p 3.3.11,
//! run as `js-libp2p-node` processes), both roles:
//!
//! - lp2p as the client of a js relay: lp2p host A reserves a slot on a js-libp2p relay
//!   (`listen --relay-service`) and checks its voucher; lp2p host B and a js-libp2p dialer
//!   reach A through `<relay>/p2p-circuit/p2p/A` and echo over the circuit, limited at both
//!   ends.
//! - js-libp2p as the client of an lp2p relay: a js listener reserves there (`listen --relay`),
//!   lp2p host B and a js dialer reach it through the lp2p relay and echo (and ping).
//! - Limits: a circuit through the lp2p relay that carries more than the relay's data limit is
//!   reset; the js dialer's echo fails, one under the limit passed just before. And the other
//!   way: a js relay's data limit cuts an lp2p circuit (js counts both directions against one
//!   budget, where the spec and the lp2p relay count each direction). Duration limits both
//!   ways: a 2 s circuit through either relay ends after 2 s, seen at both of its ends.
//!
//! @libp2p/circuit-relay-v2 4.2.13 sends its duration limit in milliseconds where the spec
//! says seconds (120000 for its 2 min): the first test pins what lp2p reads.
//!
//! lp2p runs in this process (TCP + noise + yamux on 127.0.0.1); js-libp2p-node needs
//! `interop/js/setup.sh` first. `LP2P_INTEROP_PEERS` without `js` skips these tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use lp2p_core::{Multiaddr, PeerId, Protocol};
use lp2p_host::{HandlerOptions, Host, HostStream};
use lp2p_interop::peers::{self, Implementation, Peer, Programs};
use lp2p_interop::{init_tracing, run};
use lp2p_relay::client::{self, ClientConfig, RelayClient, RelayClientEvent, ReservationInfo};
use lp2p_relay::{HopConfig, HopStats, Limit, RelayService};
use serde_json::Value;

/// The echo protocol js-libp2p-node serves (NODE-CLI.md).
const ECHO: &str = "/echo/1.0.0";
/// @libp2p/circuit-relay-v2's default data limit per circuit (128 KiB).
const JS_DEFAULT_DATA_LIMIT: u64 = 1 << 17;
/// The data limit of the lp2p relay in the limit test: far below the large echo, far above the
/// small one (noise and yamux framing included).
const SMALL_DATA_LIMIT: u64 = 16 * 1024;
/// An echo under [`SMALL_DATA_LIMIT`] in each direction, over it both directions together.
const UNDER_PER_DIRECTION: usize = 10 * 1024;
/// How long a js process may run at most (its own `--timeout`): generous for a loaded machine,
/// and the processes are killed when the test ends anyway.
const JS_LISTEN_TIMEOUT_S: &str = "300";
const JS_DIAL_TIMEOUT_S: &str = "60";

fn skip_without_js() -> bool {
    if peers::selected(Implementation::Js) {
        return false;
    }
    println!("SKIPPED: LP2P_INTEROP_PEERS leaves out js");
    true
}

/// How js-libp2p-node is started (only the js program is used here).
fn js_command() -> std::process::Command {
    Programs::new(
        PathBuf::new(),
        PathBuf::new(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .command(Implementation::Js)
    .unwrap_or_else(|why| panic!("js-libp2p-node: {why}"))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// A js-libp2p-node `listen` on 127.0.0.1 port 0 with `extra` flags, killed when dropped.
fn js_listen(extra: &[&str]) -> Peer {
    let mut args = strings(&[
        "listen",
        "--addr",
        "/ip4/127.0.0.1/tcp/0",
        "--timeout",
        JS_LISTEN_TIMEOUT_S,
    ]);
    args.extend(strings(extra));
    Peer::listen(js_command(), &args, None).unwrap_or_else(|e| panic!("js-libp2p listener: {e}"))
}

/// Runs a js-libp2p-node `dial` to its end: its events, or its error.
fn js_dial(addr: &str, extra: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = strings(&["dial", "--addr", addr, "--timeout", JS_DIAL_TIMEOUT_S]);
    args.extend(strings(extra));
    peers::run_to_end(js_command(), &args)
}

fn event<'a>(events: &'a [Value], name: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// An lp2p host with TCP and the relay client transport (noise + yamux over circuits), and
/// an echo handler that runs over relayed (limited) connections.
async fn lp2p_client_host(config: ClientConfig) -> (Host, RelayClient) {
    let stack = lp2p_swarm::UpgradeStack::new()
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default());
    let (transport, client) = client::new(stack, config);
    let host = Host::builder()
        .transport(lp2p_tcp::TcpTransport::default())
        .transport(transport)
        .security(lp2p_noise::Noise::new())
        .muxer(lp2p_yamux::Yamux::default())
        .on_start(client.hook())
        .build()
        .await
        .expect("lp2p host");
    host.set_stream_handler_with(
        ECHO,
        HandlerOptions::allow_limited(),
        |mut s: HostStream| async move {
            let mut buf = Vec::new();
            if s.read_to_end(&mut buf).await.is_ok() {
                let _ = s.write_all(&buf).await;
                let _ = s.close().await;
            }
        },
    );
    (host, client)
}

/// `host` listens on `<relay_addr>/p2p-circuit` and returns the reservation its client got.
async fn reserve_on(host: &Host, client: &RelayClient, relay_addr: &Multiaddr) -> ReservationInfo {
    let mut events = client.events();
    host.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit))
        .await
        .expect("reservation on the relay");
    loop {
        match events.next().await {
            Some(RelayClientEvent::ReservationAccepted { reservation, .. }) => {
                return reservation;
            }
            Some(_) => {}
            None => panic!("relay client events ended"),
        }
    }
}

/// An lp2p relay on 127.0.0.1 port 0 with `config`; its address ends in `/p2p/<relay>`.
fn lp2p_relay(config: HopConfig) -> (Host, RelayService, Multiaddr) {
    let relay = run("lp2p relay", async {
        Host::builder()
            .transport(lp2p_tcp::TcpTransport::default())
            .security(lp2p_noise::Noise::new())
            .muxer(lp2p_yamux::Yamux::default())
            .on_start(RelayService::hook(config))
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .build()
            .await
            .expect("lp2p relay host")
    });
    let service = relay.service::<RelayService>().expect("relay service");
    let addr = relay.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(relay.local_peer_id()));
    (relay, service, addr)
}

/// `host` dials `target` (a `/p2p-circuit` address of `peer`), checks the connection is
/// limited, and echoes `len` bytes over it.
async fn echo_through_circuit(host: &Host, target: Multiaddr, peer: PeerId, len: usize) {
    let conn = host.connect_addr(target).await.expect("relayed connection");
    assert!(conn.is_limited(), "a relayed connection is limited");
    let mut s = host
        .new_stream_allow_limited(&peer, [ECHO])
        .await
        .expect("echo stream over the circuit");
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    s.write_all(&payload).await.expect("write");
    s.close().await.expect("close");
    let mut back = Vec::new();
    s.read_to_end(&mut back).await.expect("echo");
    assert_eq!(back.len(), payload.len());
    assert_eq!(back, payload);
}

/// The relay's counters once `done` holds (at most [`lp2p_interop::EXCHANGE_TIMEOUT`]), or
/// the last ones.
fn stats_when(service: &RelayService, done: impl Fn(&HopStats) -> bool) -> HopStats {
    let started = std::time::Instant::now();
    loop {
        let stats = service.stats();
        if done(&stats) || started.elapsed() > lp2p_interop::EXCHANGE_TIMEOUT {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lp2p_clients_reserve_and_connect_through_a_js_relay() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let mut js_relay = js_listen(&["--relay-service"]);
    let relay_id: PeerId = js_relay.peer_id.parse().expect("js relay peer id");
    let relay_addr: Multiaddr = js_relay.addr.parse().expect("js relay address");

    // A reserves on the js relay and insists on a valid voucher (the spec's signed envelope).
    let (a, a_client) = run(
        "lp2p host A",
        lp2p_client_host(ClientConfig {
            require_voucher: true,
            ..ClientConfig::default()
        }),
    );
    let a_id = a.local_peer_id();
    let before = now_unix();
    let reservation = run(
        "A reserves on the js relay",
        reserve_on(&a, &a_client, &relay_addr),
    );
    assert_eq!(reservation.relay, relay_id);
    // @libp2p/circuit-relay-v2 grants 2 h reservations.
    assert!(
        reservation.expire >= before + 7_000 && reservation.expire <= now_unix() + 7_300,
        "expiry {} is not about 2 h after {before}",
        reservation.expire
    );
    assert!(
        reservation
            .addrs
            .iter()
            .any(|addr| addr.iter().any(|p| p == Protocol::P2pCircuit)),
        "our addresses through the relay: {:?}",
        reservation.addrs
    );
    let limit = reservation.limit.expect("the js relay sends limits");
    assert_eq!(limit.data, Some(JS_DEFAULT_DATA_LIMIT));
    // @libp2p/circuit-relay-v2 4.2.13 sends its 2 min duration limit in milliseconds (120000)
    // where the spec's `Limit.duration` is seconds: lp2p reads what is on the wire.
    assert_eq!(limit.duration, Some(Duration::from_secs(120_000)));

    // The js relay reports the reservation it granted, with the same expiry.
    let granted = js_relay
        .wait_for(|e| e["event"] == "relay-reservation" && e["peer"] == a_id.to_string())
        .unwrap_or_else(|e| panic!("js relay: {e}"));
    assert_eq!(granted["ok"], true, "{granted}");
    assert_eq!(granted["expire"], reservation.expire, "{granted}");
    assert_eq!(granted["limit"]["data"], JS_DEFAULT_DATA_LIMIT, "{granted}");

    // B (lp2p) reaches A through the js relay and echoes 10 kB over the circuit.
    let (b, _b_client) = run("lp2p host B", lp2p_client_host(ClientConfig::default()));
    let target = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(a_id));
    run(
        "B echoes with A through the js relay",
        echo_through_circuit(&b, target.clone(), a_id, 10_000),
    );
    // A's side of the circuit is limited too.
    let a_conns = a.connections(&b.local_peer_id());
    assert!(!a_conns.is_empty(), "A has B's relayed connection");
    assert!(a_conns.iter().all(lp2p_swarm::Connection::is_limited));

    // A js-libp2p dialer reaches A through the js relay too (js dialer, js relay, lp2p
    // listener) and echoes.
    let events = js_dial(&target.to_string(), &["--echo", "hello through a js relay"])
        .unwrap_or_else(|e| panic!("js dial through the js relay to lp2p: {e}"));
    let connected = event(&events, "connected");
    assert_eq!(connected["peer"], a_id.to_string());
    assert_eq!(connected["limited"], true, "{connected}");
    let echo = event(&events, "echo");
    assert_eq!(echo["ok"], true);
    assert_eq!(echo["bytes"], "hello through a js relay".len());

    run("close", async {
        b.close().await;
        a.close().await;
    });
    drop(js_relay);
}

#[test]
fn js_client_reserves_on_an_lp2p_relay_and_is_reached_through_it() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let (relay, service, relay_addr) = lp2p_relay(HopConfig::default());
    let relay_id = relay.local_peer_id();

    // The js node reserves on the lp2p relay (it listens on `<relay>/p2p-circuit`).
    let before = now_unix();
    let mut js = js_listen(&["--relay", &relay_addr.to_string()]);
    let js_id: PeerId = js.peer_id.parse().expect("js peer id");
    let reserved = js
        .wait_for(|e| e["event"] == "reservation")
        .unwrap_or_else(|e| panic!("js client: {e}"));
    assert_eq!(reserved["relay"], relay_id.to_string());
    let through = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(js_id));
    let addrs = reserved["addrs"].as_array().expect("addrs");
    assert!(
        addrs.iter().any(|a| *a == through.to_string()),
        "js's addresses through the relay {addrs:?} lack {through}"
    );
    // The lp2p relay grants an hour (DEFAULT_RESERVATION_DURATION), as js read it.
    let expire = reserved["expire"].as_u64().expect("expire");
    assert!(
        expire >= before + 3_500 && expire <= now_unix() + 3_700,
        "expiry {expire} is not about an hour after {before}"
    );
    assert_eq!(service.num_reservations(), 1);
    assert_eq!(service.stats().reservations_accepted, 1);

    // lp2p host B reaches the js node through the lp2p relay and echoes over the circuit.
    let (b, _b_client) = run("lp2p host B", lp2p_client_host(ClientConfig::default()));
    run(
        "B echoes with js through the lp2p relay",
        echo_through_circuit(&b, through.clone(), js_id, 10_000),
    );
    let b_id = b.local_peer_id().to_string();
    let inbound = js
        .wait_for(|e| e["event"] == "connected" && e["peer"] == b_id)
        .unwrap_or_else(|e| panic!("js client: {e}"));
    assert_eq!(inbound["dir"], "in", "{inbound}");
    assert_eq!(inbound["limited"], true, "{inbound}");

    // A js dialer reaches it through the lp2p relay too (js, lp2p relay, js): ping and echo.
    let events = js_dial(
        &through.to_string(),
        &["--ping", "2", "--echo", "hello through an lp2p relay"],
    )
    .unwrap_or_else(|e| panic!("js dial through the lp2p relay: {e}"));
    let connected = event(&events, "connected");
    assert_eq!(connected["limited"], true, "{connected}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "ping").count(),
        2,
        "{events:?}"
    );
    let echo = event(&events, "echo");
    assert_eq!(echo["ok"], true);
    assert_eq!(echo["bytes"], "hello through an lp2p relay".len());

    let stats = stats_when(&service, |s| s.circuits_accepted >= 2);
    assert!(stats.circuits_accepted >= 2, "{stats:?}");
    assert_eq!(stats.circuits_refused_no_reservation, 0, "{stats:?}");
    run("close", async {
        b.close().await;
        relay.close().await;
    });
    drop(js);
}

#[test]
fn lp2p_relay_data_limit_resets_a_js_circuit() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let (relay, service, relay_addr) = lp2p_relay(HopConfig {
        circuit_limit: Limit {
            duration: Some(Duration::from_secs(120)),
            data: Some(SMALL_DATA_LIMIT),
        },
        ..HopConfig::default()
    });
    let mut js = js_listen(&["--relay", &relay_addr.to_string()]);
    let js_id: PeerId = js.peer_id.parse().expect("js peer id");
    js.wait_for(|e| e["event"] == "reservation")
        .unwrap_or_else(|e| panic!("js client: {e}"));
    let through = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(js_id))
        .to_string();

    // Under the limit: an echo of 10 KiB through the relay works. The limit holds per
    // direction (the spec's reading; @libp2p/circuit-relay-v2 counts both together and cuts
    // this same echo, see js_relay_data_limit_resets_an_lp2p_circuit).
    let under = "u".repeat(UNDER_PER_DIRECTION);
    let events = js_dial(&through, &["--echo", &under])
        .unwrap_or_else(|e| panic!("js dial under the data limit: {e}"));
    assert_eq!(event(&events, "echo")["bytes"], UNDER_PER_DIRECTION);
    assert_eq!(service.stats().circuits_over_limit, 0);

    // Over it: 64 KiB each way through a 16 KiB circuit. The relay resets the circuit and
    // the js dialer's echo fails instead of returning the bytes.
    let big = "x".repeat(64 * 1024);
    let why = match js_dial(&through, &["--echo", &big]) {
        Ok(events) => panic!("an echo of 64 KiB through a 16 KiB circuit came back: {events:?}"),
        Err(why) => why,
    };
    eprintln!("the js dialer over the data limit: {why}");
    // js-libp2p ends the echo stream as if closed; the dialer sees its connection aborted.
    assert!(
        why.contains("echo connection aborted after"),
        "the js dialer failed elsewhere: {why}"
    );
    // The relay counts the reset once both streams are down; the js side saw it first.
    let stats = stats_when(&service, |s| s.circuits_over_limit >= 1);
    assert_eq!(stats.circuits_over_limit, 1, "{stats:?}");
    assert_eq!(stats.circuits_accepted, 2, "{stats:?}");

    run("close", relay.close());
    drop(js);
}

#[test]
fn js_relay_data_limit_resets_an_lp2p_circuit() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let limit = SMALL_DATA_LIMIT.to_string();
    let js_relay = js_listen(&["--relay-service", "--relay-data-limit", &limit]);
    let relay_addr: Multiaddr = js_relay.addr.parse().expect("js relay address");

    let (a, a_client) = run("lp2p host A", lp2p_client_host(ClientConfig::default()));
    let a_id = a.local_peer_id();
    let reservation = run(
        "A reserves on the js relay",
        reserve_on(&a, &a_client, &relay_addr),
    );
    assert_eq!(
        reservation.limit.and_then(|l| l.data),
        Some(SMALL_DATA_LIMIT)
    );

    let (b, _b_client) = run("lp2p host B", lp2p_client_host(ClientConfig::default()));
    let target = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(a_id));
    run("B echoes well under the js relay's data limit", async {
        echo_through_circuit(&b, target.clone(), a_id, 1_000).await;
    });
    // 10 KiB each way: under the limit per direction, over it both directions together.
    // @libp2p/circuit-relay-v2 4.2.13 counts the two directions of a circuit against one
    // budget (the spec: "bytes per direction"), so it aborts both halves of the circuit, and
    // B's relayed connection to A goes down with the echo unfinished. (The lp2p relay passes
    // this same echo: lp2p_relay_data_limit_resets_a_js_circuit.)
    run("B echoes 10 KiB through the js relay", async {
        let payload = vec![0x5au8; UNDER_PER_DIRECTION];
        let echoed = async {
            let mut s = b.new_stream_allow_limited(&a_id, [ECHO]).await?;
            s.write_all(&payload).await?;
            s.close().await?;
            let mut back = Vec::new();
            s.read_to_end(&mut back).await?;
            Ok::<_, Box<dyn std::error::Error>>(back)
        }
        .await;
        match echoed {
            Ok(back) => assert!(
                back.len() < payload.len(),
                "10 KiB came back both ways through a js circuit of 16 KiB (per direction now?)"
            ),
            Err(why) => eprintln!("B through the js relay at its data limit: {why}"),
        }
        while !b.connections(&a_id).is_empty() {
            async_std::task::sleep(Duration::from_millis(50)).await;
        }
    });

    run("close", async {
        b.close().await;
        a.close().await;
    });
    drop(js_relay);
}

/// How long the circuits of the duration tests may last.
const SHORT_DURATION: Duration = Duration::from_secs(2);

/// Waits until `host` has no connection to `peer` left.
async fn until_disconnected(host: &Host, peer: &PeerId) {
    while !host.connections(peer).is_empty() {
        async_std::task::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a circuit dialed at `started` ended by its duration limit: not before it, and
/// long before the 60 s idle timeout could have closed the connection instead.
fn ended_by_duration_limit(started: std::time::Instant) {
    let lasted = started.elapsed();
    assert!(
        lasted >= SHORT_DURATION && lasted < SHORT_DURATION + Duration::from_secs(30),
        "the circuit ended after {lasted:?}; its duration limit is {SHORT_DURATION:?}"
    );
}

#[test]
fn lp2p_relay_duration_limit_closes_a_js_circuit() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let (relay, service, relay_addr) = lp2p_relay(HopConfig {
        circuit_limit: Limit {
            duration: Some(SHORT_DURATION),
            data: None,
        },
        ..HopConfig::default()
    });
    let mut js = js_listen(&["--relay", &relay_addr.to_string()]);
    let js_id: PeerId = js.peer_id.parse().expect("js peer id");
    js.wait_for(|e| e["event"] == "reservation")
        .unwrap_or_else(|e| panic!("js client: {e}"));
    let through = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(js_id));

    // B reaches js through the relay and echoes; then leaves the circuit idle until the
    // relay's duration limit ends it.
    let (b, _b_client) = run("lp2p host B", lp2p_client_host(ClientConfig::default()));
    let started = std::time::Instant::now();
    run("B's circuit to js until the duration limit", async {
        echo_through_circuit(&b, through, js_id, 1_000).await;
        until_disconnected(&b, &js_id).await;
    });
    ended_by_duration_limit(started);
    // js saw the relayed connection come and go.
    let b_id = b.local_peer_id().to_string();
    let connected = js
        .wait_for(|e| e["event"] == "connected" && e["peer"] == b_id)
        .unwrap_or_else(|e| panic!("js client: {e}"));
    assert_eq!(connected["limited"], true, "{connected}");
    js.wait_for(|e| e["event"] == "disconnected" && e["peer"] == b_id)
        .unwrap_or_else(|e| panic!("js never saw the circuit end: {e}"));
    let stats = stats_when(&service, |s| s.circuits_over_limit >= 1);
    assert_eq!(stats.circuits_over_limit, 1, "{stats:?}");

    run("close", async {
        b.close().await;
        relay.close().await;
    });
    drop(js);
}

#[test]
fn js_relay_duration_limit_closes_an_lp2p_circuit() {
    init_tracing();
    if skip_without_js() {
        return;
    }
    let secs = SHORT_DURATION.as_secs().to_string();
    let js_relay = js_listen(&["--relay-service", "--relay-duration-limit", &secs]);
    let relay_addr: Multiaddr = js_relay.addr.parse().expect("js relay address");

    let (a, a_client) = run("lp2p host A", lp2p_client_host(ClientConfig::default()));
    let a_id = a.local_peer_id();
    let reservation = run(
        "A reserves on the js relay",
        reserve_on(&a, &a_client, &relay_addr),
    );
    // The wire carries milliseconds (see the first test): 2 s arrives as 2000 "seconds".
    assert_eq!(
        reservation.limit.and_then(|l| l.duration),
        Some(SHORT_DURATION * 1000)
    );

    let (b, _b_client) = run("lp2p host B", lp2p_client_host(ClientConfig::default()));
    let target = relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(a_id));
    let started = std::time::Instant::now();
    run(
        "B's circuit to A until the js relay's duration limit",
        async {
            echo_through_circuit(&b, target, a_id, 1_000).await;
            until_disconnected(&b, &a_id).await;
        },
    );
    ended_by_duration_limit(started);
    run("A loses B too", until_disconnected(&a, &b.local_peer_id()));

    run("close", async {
        b.close().await;
        a.close().await;
    });
    drop(js_relay);
}
