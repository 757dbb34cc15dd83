//! The lp2p resource manager: memory budgets for the whole node, each peer, each connection
//! and each service, which the stream muxers and the services (pubsub's send queues,
//! identify's and Kademlia's message buffers) reserve from before they let a remote make them
//! buffer more; and counts of connections, streams and file descriptors per scope, which the
//! swarm and the host take a place in before they do work for a connection or a stream.
//!
//! Every muxed connection holds one account ([`ScopedMemory`], an
//! [`lp2p_core::MemoryAccount`]). yamux grows it by a stream's 256 KiB initial receive window
//! before it accepts or opens the stream, and by every window growth before it grants it;
//! mplex grows it by each receive chunk before it takes a frame in; QUIC by each growth of
//! the connection receive window beyond its initial 256 KiB (refused, the window stays;
//! decision D36). A growth passes the
//! connection, peer and system scopes at once; the first scope that would go over its limit
//! refuses, and the denial ([`lp2p_core::MemoryDenied`]) names that scope, its limit and its
//! usage.
//!
//! Services hold one account per peer ([`ResourceManager::service_account`], the same
//! [`ScopedMemory`] type): pubsub grows it by each message it queues for the peer (refused,
//! the message is dropped as from a full queue), identify by each chunk of a message it reads
//! and Kademlia by each frame (refused, the stream is reset). Such an account passes the
//! service, peer and system scopes, so a peer's share covers its windows and what services
//! buffer for it together.
//!
//! A refusal never panics: yamux refuses the stream with RST (or keeps the window at
//! its size), mplex sheds idle streams or waits, as at its own cap. A finished stream returns
//! its reservation, and dropping the account (with its connection) returns the rest, so
//! nothing leaks and nothing is returned twice.
//!
//! - **Defaults scale with the machine** ([`MemoryLimits::for_machine`]): the system scope
//!   gets 1/8 of the memory (cgroup limits respected), at least 128 MiB; a peer and a
//!   connection 128 MiB each; a service a quarter of the system limit.
//! - **Allowlist**: peers and subnets on it are accounted in a system scope of their own, so
//!   an attack that fills the system scope does not lock them out.
//! - **Connection limits fit the descriptor limit** ([`connection_limits_for_fds`]): the host
//!   shrinks its default inbound and outbound limits when the soft `ulimit -n` cannot hold
//!   them.
//! - **Dry run**: denials are logged and counted but granted, to size limits before
//!   enforcing them.
//! - **Counts** ([`CountLimits`], decision D39): connections in and out, streams in and out
//!   and file descriptors, in the system, transient (handshakes running, streams
//!   negotiating), peer and protocol scopes. The swarm takes a [`CountedConnection`] for
//!   each inbound attempt before its upgrade and each dial before it connects (through
//!   [`lp2p_core::ConnectionLimiter`]) and moves it to the peer's scope once the peer is
//!   known; the host takes a [`CountedStream`] for each stream and moves it to the
//!   protocol's scope once negotiated. Both are RAII guards. The defaults sit above the
//!   swarm's and host's own finer limits (per IP and subnet, pending handshakes with
//!   eviction, fair shares of negotiating and handler slots), which act first; what the
//!   counts add is a peer's streams over all its connections, descriptors against the soft
//!   `ulimit -n`, and per-protocol limits.
//!
//! # Examples
//!
//! Memory:
//!
//! ```
//! use lp2p_core::{MemoryAccount, MemoryBudget, Multiaddr, PeerId, Role};
//! use lp2p_rcmgr::{ResourceManager, Scope};
//!
//! let manager = ResourceManager::builder()
//!     .system_memory(64 << 20)
//!     .peer_memory(1 << 20)
//!     .connection_memory(1 << 20)
//!     .build()?;
//! // The host or swarm builder takes it as the memory budget (`memory_budget(manager.clone())`);
//! // here we play the muxer of one connection.
//! let peer = PeerId::random();
//! let remote: Multiaddr = "/ip4/192.0.2.1/tcp/4001".parse()?;
//! let mut account = manager.connection_account(&peer, &remote, Role::Responder);
//! account.try_grow(768 << 10)?; // three streams' initial windows
//! let denied = account.try_grow(512 << 10).unwrap_err();
//! assert!(denied.scope.starts_with("connection"));
//! assert_eq!((denied.used, denied.limit), (768 << 10, 1 << 20));
//! assert_eq!(manager.stats().denied(Scope::Connection), 1);
//!
//! drop(account); // the connection closed: everything comes back
//! assert_eq!(manager.stats().system_memory, 0);
//!
//! // A service's buffers for the peer count in the peer's share too.
//! let mut queue = manager.service_account("pubsub", &peer);
//! queue.try_grow(64 << 10)?;
//! assert_eq!(manager.peer_memory(&peer), 64 << 10);
//! assert_eq!(manager.stats().service_memory["pubsub"], 64 << 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Counts (what the swarm and the host do for each connection and stream):
//!
//! ```
//! use lp2p_core::{Multiaddr, PeerId, Resource, Role};
//! use lp2p_rcmgr::{CountLimits, ResourceManager, Scope};
//!
//! let mut limits = CountLimits::for_this_process();
//! limits.peer.inbound_streams = 1;
//! let manager = ResourceManager::builder().count_limits(limits).build()?;
//! let remote: Multiaddr = "/ip4/192.0.2.1/tcp/4001".parse()?;
//! let peer = PeerId::random();
//!
//! // Accepted: transient, with a descriptor, until the handshake proves the peer.
//! let mut connection = manager.open_connection(Role::Responder, &remote, true)?;
//! assert_eq!(manager.stats().transient_counts.inbound_connections, 1);
//! connection.attach_peer(&peer)?;
//! assert_eq!(manager.peer_counts(&peer).inbound_connections, 1);
//!
//! // A stream: transient while negotiating, then its protocol's.
//! let mut stream = manager.open_stream(&peer, Role::Responder)?;
//! stream.set_protocol("/ipfs/ping/1.0.0")?;
//! let denied = manager.open_stream(&peer, Role::Responder).unwrap_err();
//! assert_eq!(denied.resource, Resource::InboundStreams);
//! assert_eq!(
//!     manager.stats().count_denied(Scope::Peer, Resource::InboundStreams),
//!     1
//! );
//!
//! drop((stream, connection)); // closed: everything comes back
//! assert_eq!(manager.stats().system_counts, Default::default());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod counts;
mod error;
mod limits;
mod manager;
mod scope;
mod slots;

pub use counts::{
    CountLimits, Counts, DEFAULT_PEER_CONNECTIONS, DEFAULT_PEER_STREAMS, DEFAULT_PROTOCOL_STREAMS,
    DEFAULT_SYSTEM_CONNECTIONS, DEFAULT_SYSTEM_STREAMS, DEFAULT_TRANSIENT_CONNECTIONS,
    DEFAULT_TRANSIENT_STREAMS, RESOURCES,
};
pub use error::RcmgrError;
pub use limits::{
    DEFAULT_CONNECTION_MEMORY, DEFAULT_PEER_MEMORY, DEFAULT_SERVICE_MEMORY_SHARE,
    DEFAULT_SYSTEM_MEMORY_FRACTION, FALLBACK_MACHINE_MEMORY, MIN_SYSTEM_MEMORY, MemoryLimits,
    RESERVED_FDS, connection_limits_for_fds, fd_limit, machine_memory,
};
pub use manager::{ResourceManager, ResourceManagerBuilder, ResourceStats, ScopedMemory};
pub use scope::{SCOPES, Scope};
pub use slots::{CountedConnection, CountedStream};
