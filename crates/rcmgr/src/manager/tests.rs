use proptest::prelude::*;

use super::*;

const KIB: usize = 1024;

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn manager(system: usize, peer: usize, connection: usize) -> ResourceManager {
    ResourceManager::builder()
        .system_memory(system)
        .allowlisted_memory(system)
        .peer_memory(peer)
        .connection_memory(connection)
        .build()
        .unwrap()
}

#[test]
fn each_scope_refuses_at_its_limit_and_says_so() {
    let m = manager(1000 * KIB, 300 * KIB, 200 * KIB);
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let a = PeerId::random();

    // Connection scope.
    let mut a1 = m.account(&a, &here);
    a1.try_grow(150 * KIB).unwrap();
    let denied = a1.try_grow(51 * KIB).unwrap_err();
    assert_eq!(denied.scope, format!("connection ({a})"));
    assert_eq!(
        (denied.used, denied.requested, denied.limit),
        (150 * KIB, 51 * KIB, 200 * KIB)
    );
    a1.try_grow(50 * KIB).unwrap();

    // Peer scope: a second connection of the same peer shares the peer's 300 KiB.
    let mut a2 = m.account(&a, &here);
    a2.try_grow(100 * KIB).unwrap();
    let denied = a2.try_grow(1).unwrap_err();
    assert_eq!(denied.scope, format!("peer ({a})"));
    assert_eq!((denied.used, denied.limit), (300 * KIB, 300 * KIB));
    assert_eq!(m.peer_memory(&a), 300 * KIB);

    // System scope: other peers fill the rest.
    let mut others: Vec<_> = (0..4)
        .map(|_| m.account(&PeerId::random(), &here))
        .collect();
    for account in &mut others[..3] {
        account.try_grow(200 * KIB).unwrap();
    }
    let denied = others[3].try_grow(101 * KIB).unwrap_err();
    assert_eq!(denied.scope, "system");
    assert_eq!((denied.used, denied.limit), (900 * KIB, 1000 * KIB));
    others[3].try_grow(100 * KIB).unwrap();

    let stats = m.stats();
    assert_eq!(stats.system_memory, 1000 * KIB);
    assert_eq!(stats.peak_system_memory, 1000 * KIB);
    assert_eq!(stats.peers, 5);
    assert_eq!(stats.connections, 6);
    assert_eq!(stats.largest_peer_memory, 300 * KIB);
    assert_eq!(stats.denied(Scope::Connection), 1);
    assert_eq!(stats.denied(Scope::Peer), 1);
    assert_eq!(stats.denied(Scope::System), 1);
    assert_eq!(stats.denied(Scope::AllowlistedSystem), 0);
}

#[test]
fn dropping_accounts_returns_everything_and_forgets_the_peer() {
    let m = manager(1000 * KIB, 300 * KIB, 300 * KIB);
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let a = PeerId::random();
    let mut a1 = m.account(&a, &here);
    let mut a2 = m.account(&a, &here);
    a1.try_grow(100 * KIB).unwrap();
    a2.try_grow(100 * KIB).unwrap();
    a1.shrink(30 * KIB);
    assert_eq!(a1.reserved(), 70 * KIB);
    // Shrinking more than held returns only what is held: nothing of another account.
    a1.shrink(usize::MAX);
    assert_eq!(a1.reserved(), 0);
    assert_eq!(m.peer_memory(&a), 100 * KIB);
    drop(a1);
    assert_eq!(m.stats().peers, 1, "the peer still has a connection");
    drop(a2);
    let stats = m.stats();
    assert_eq!(
        (stats.system_memory, stats.peers, stats.connections),
        (0, 0, 0)
    );
    assert_eq!(stats.peak_system_memory, 200 * KIB);
}

#[test]
fn allowlisted_peers_and_subnets_use_their_own_scope() {
    let friend = PeerId::random();
    let m = ResourceManager::builder()
        .system_memory(100 * KIB)
        .allowlisted_memory(500 * KIB)
        .peer_memory(100 * KIB)
        .connection_memory(100 * KIB)
        .allow_peer(friend)
        .allow_subnet("10.1.0.0/16".parse().unwrap())
        .build()
        .unwrap();
    let mut stranger = m.account(&PeerId::random(), &addr("/ip4/192.0.2.1/tcp/1"));
    stranger.try_grow(100 * KIB).unwrap();
    assert!(stranger.try_grow(1).is_err(), "the system scope is full");

    // The friend is not held to the full system scope, nor to a peer's 100 KiB.
    let mut by_peer = m.account(&friend, &addr("/ip4/192.0.2.9/tcp/1"));
    by_peer.try_grow(300 * KIB).unwrap();
    let mut by_subnet = m.account(&PeerId::random(), &addr("/ip4/10.1.200.3/udp/1/quic-v1"));
    by_subnet.try_grow(200 * KIB).unwrap();
    let denied = by_subnet.try_grow(1).unwrap_err();
    assert_eq!(denied.scope, "allowlisted_system");
    let stats = m.stats();
    assert_eq!(stats.allowlisted_memory, 500 * KIB);
    assert_eq!(stats.system_memory, 100 * KIB);
    assert_eq!(m.peer_memory(&friend), 0);
    drop((by_peer, by_subnet));
    assert_eq!(m.stats().allowlisted_memory, 0);
}

#[test]
fn dry_run_grants_and_counts_what_it_would_refuse() {
    let m = ResourceManager::builder()
        .system_memory(100 * KIB)
        .peer_memory(50 * KIB)
        .connection_memory(50 * KIB)
        .dry_run(true)
        .build()
        .unwrap();
    let mut account = m.account(&PeerId::random(), &addr("/ip4/192.0.2.1/tcp/1"));
    account.try_grow(80 * KIB).unwrap();
    assert_eq!(account.reserved(), 80 * KIB);
    let stats = m.stats();
    assert!(stats.dry_run);
    assert_eq!(stats.denied(Scope::Connection), 1);
    assert_eq!(stats.system_memory, 80 * KIB);
}

#[test]
fn impossible_limits_are_refused_at_build() {
    let err = ResourceManager::builder()
        .system_memory(0)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        RcmgrError::ZeroLimit {
            scope: Scope::System
        }
    );
    let err = ResourceManager::builder()
        .system_memory(KIB)
        .peer_memory(2 * KIB)
        .connection_memory(KIB)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the peer memory limit of 2048 B is above the system limit of 1024 B"
    );
}

#[test]
fn growth_that_would_overflow_is_refused_not_wrapped() {
    let m = manager(usize::MAX, usize::MAX, usize::MAX);
    let mut account = m.account(&PeerId::random(), &addr("/ip4/192.0.2.1/tcp/1"));
    account.try_grow(usize::MAX - 1).unwrap();
    let denied = account.try_grow(2).unwrap_err();
    assert_eq!(denied.scope.split(' ').next(), Some("connection"));
    assert_eq!(account.reserved(), usize::MAX - 1);
}

#[test]
fn a_service_is_held_to_its_own_limit_and_shares_the_peer_scope_with_connections() {
    let m = ResourceManager::builder()
        .system_memory(1000 * KIB)
        .peer_memory(300 * KIB)
        .connection_memory(300 * KIB)
        .service_memory(200 * KIB)
        .build()
        .unwrap();
    let here = addr("/ip4/192.0.2.1/tcp/1");
    let (a, b) = (PeerId::random(), PeerId::random());

    // The service scope covers every peer's account of the service.
    let mut pubsub_a = m.service_account("pubsub", &a);
    let mut pubsub_b = m.service_account("pubsub", &b);
    pubsub_a.try_grow(150 * KIB).unwrap();
    let denied = pubsub_b.try_grow(51 * KIB).unwrap_err();
    assert_eq!(denied.scope, "service pubsub");
    assert_eq!(
        (denied.used, denied.requested, denied.limit),
        (150 * KIB, 51 * KIB, 200 * KIB)
    );
    // Another service has a scope of its own.
    let mut kad_b = m.service_account("kad", &b);
    kad_b.try_grow(100 * KIB).unwrap();

    // A's connection and a's queue share a's 300 KiB.
    let mut conn_a = m.account(&a, &here);
    conn_a.try_grow(150 * KIB).unwrap();
    let denied = conn_a.try_grow(1).unwrap_err();
    assert_eq!(denied.scope, format!("peer ({a})"));
    assert_eq!(m.peer_memory(&a), 300 * KIB);

    let stats = m.stats();
    assert_eq!(stats.system_memory, 400 * KIB);
    assert_eq!(stats.service_memory["pubsub"], 150 * KIB);
    assert_eq!(stats.service_memory["kad"], 100 * KIB);
    assert_eq!(stats.connections, 1, "service accounts are not connections");
    assert_eq!(stats.peers, 2);
    assert_eq!(stats.denied(Scope::Service), 1);
    assert_eq!(stats.denied(Scope::Peer), 1);

    // The peer entry lives while any of its accounts does.
    drop(conn_a);
    assert_eq!(m.peer_memory(&a), 150 * KIB);
    pubsub_a.shrink(50 * KIB);
    drop((pubsub_a, pubsub_b, kad_b));
    let stats = m.stats();
    assert_eq!((stats.system_memory, stats.peers), (0, 0));
    assert_eq!(stats.service_memory["pubsub"], 0);
}

#[test]
fn an_allowlisted_peer_s_service_account_uses_the_allowlisted_scope() {
    let friend = PeerId::random();
    let m = ResourceManager::builder()
        .system_memory(100 * KIB)
        .allowlisted_memory(400 * KIB)
        .peer_memory(100 * KIB)
        .connection_memory(100 * KIB)
        .allow_peer(friend)
        .build()
        .unwrap();
    let mut queue = m.service_account("pubsub", &friend);
    queue.try_grow(300 * KIB).unwrap();
    let stats = m.stats();
    assert_eq!(
        (stats.allowlisted_memory, stats.system_memory),
        (300 * KIB, 0)
    );
}

#[test]
fn the_service_limit_follows_the_system_limit_unless_given() {
    let m = manager(1000 * KIB, 300 * KIB, 300 * KIB);
    assert_eq!(m.limits().service, 250 * KIB);
    let err = ResourceManager::builder()
        .system_memory(KIB)
        .peer_memory(KIB)
        .connection_memory(KIB)
        .service_memory(2 * KIB)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the service memory limit of 2048 B is above the system limit of 1024 B"
    );
}

#[test]
fn limits_not_given_follow_a_small_system_limit() {
    let m = ResourceManager::builder()
        .system_memory(64 << 20)
        .build()
        .expect("a system limit below the 128 MiB peer default still builds");
    let limits = m.limits();
    assert_eq!(
        (
            limits.allowlisted_system,
            limits.peer,
            limits.connection,
            limits.service
        ),
        (64 << 20, 64 << 20, 64 << 20, 16 << 20)
    );
    // Given limits are kept, and still checked against the system's.
    let m = ResourceManager::builder()
        .system_memory(64 << 20)
        .peer_memory(8 << 20)
        .build()
        .unwrap();
    assert_eq!(
        (m.limits().peer, m.limits().connection),
        (8 << 20, 64 << 20)
    );
    assert!(
        ResourceManager::builder()
            .system_memory(64 << 20)
            .connection_memory(65 << 20)
            .build()
            .is_err()
    );
}

#[test]
fn only_powers_of_two_of_a_denial_count_are_logged() {
    let logged: Vec<u64> = (1..=20).filter(|n| log_this_denial(*n)).collect();
    assert_eq!(logged, [1, 2, 4, 8, 16]);
}

proptest! {
    /// Any sequence of grows, shrinks and drops over a few peers keeps every scope within
    /// its limit (when enforcing), keeps the system total equal to what the live accounts
    /// hold, and returns to zero when all accounts are dropped.
    #[test]
    fn usage_always_matches_the_live_accounts(
        ops in proptest::collection::vec((0usize..6, 0u8..3, 0usize..200), 0..200)
    ) {
        let m = manager(600, 250, 150);
        let here = addr("/ip4/192.0.2.1/tcp/1");
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        // Slots 0-2 are connections, 3-4 pubsub's accounts, 5 kad's; the service limit
        // follows the system's: 150.
        let services = [None, None, None, Some("pubsub"), Some("pubsub"), Some("kad")];
        let mut accounts: Vec<Option<ScopedMemory>> = (0..6).map(|_| None).collect();
        for (slot, op, bytes) in ops {
            let account = accounts[slot].get_or_insert_with(|| match services[slot] {
                None => m.account(&peers[slot % 3], &here),
                Some(name) => m.service_account(name, &peers[slot % 3]),
            });
            match op {
                0 => {
                    let _ = account.try_grow(bytes);
                }
                1 => account.shrink(bytes),
                _ => accounts[slot] = None,
            }
            let live: usize = accounts.iter().flatten().map(MemoryAccount::reserved).sum();
            let stats = m.stats();
            prop_assert_eq!(stats.system_memory, live);
            prop_assert!(stats.system_memory <= 600);
            for (i, peer) in peers.iter().enumerate() {
                let of_peer: usize = accounts
                    .iter()
                    .enumerate()
                    .filter(|(s, _)| s % 3 == i)
                    .filter_map(|(_, a)| a.as_ref())
                    .map(MemoryAccount::reserved)
                    .sum();
                prop_assert_eq!(m.peer_memory(peer), of_peer);
                prop_assert!(of_peer <= 250);
            }
            for (slot, account) in accounts.iter().enumerate() {
                if let (None, Some(account)) = (services[slot], account) {
                    prop_assert!(account.reserved() <= 150);
                }
            }
            for name in ["pubsub", "kad"] {
                let of_service: usize = accounts
                    .iter()
                    .zip(services)
                    .filter(|(_, s)| *s == Some(name))
                    .filter_map(|(a, _)| a.as_ref())
                    .map(MemoryAccount::reserved)
                    .sum();
                prop_assert_eq!(stats.service_memory.get(name).copied().unwrap_or(0), of_service);
                prop_assert!(of_service <= 150);
            }
        }
        drop(accounts);
        let stats = m.stats();
        prop_assert_eq!((stats.system_memory, stats.peers, stats.connections), (0, 0, 0));
    }
}
