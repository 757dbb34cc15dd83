use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::mpsc;
use lp2p_core::{
    Connection, DialOpts, Error, Multiaddr, Protocol, RawListener, RawTransport, addr,
};

use crate::MemoryConnection;

/// Bytes buffered per direction before a writer waits: about a loopback TCP socket buffer, so
/// throughput benchmarks over memory are not dominated by task switches.
pub const DEFAULT_PIPE_CAPACITY: usize = 256 * 1024;

/// Connections a listener holds before it has accepted them; dials beyond that are refused,
/// as a full TCP accept backlog would.
pub const DEFAULT_BACKLOG: usize = 128;

/// Port numbers handed out for `/memory/0` start here, far from small numbers people type.
const FIRST_EPHEMERAL: u64 = 1 << 32;

type Registry = Mutex<HashMap<u64, mpsc::Sender<MemoryConnection>>>;

fn registry() -> MutexGuard<'static, HashMap<u64, mpsc::Sender<MemoryConnection>>> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn next_ephemeral() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(FIRST_EPHEMERAL);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The in-process transport. Cheap to create and clone; all instances share one registry of
/// listeners per process.
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    capacity: usize,
    backlog: usize,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        MemoryTransport {
            capacity: DEFAULT_PIPE_CAPACITY,
            backlog: DEFAULT_BACKLOG,
        }
    }
}

impl MemoryTransport {
    /// A transport with the default pipe capacity and backlog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the bytes buffered per direction of each connection (at least 1).
    #[must_use]
    pub fn with_pipe_capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes.max(1);
        self
    }

    /// Sets how many unaccepted connections a listener created by this transport queues.
    #[must_use]
    pub fn with_backlog(mut self, connections: usize) -> Self {
        self.backlog = connections.max(1);
        self
    }
}

/// The port of `/memory/N`, or `None` for anything else.
fn memory_port(addr: &Multiaddr) -> Option<u64> {
    let mut iter = addr.iter();
    match (iter.next(), iter.next()) {
        (Some(Protocol::Memory(port)), None) => Some(port),
        _ => None,
    }
}

#[async_trait]
impl RawTransport for MemoryTransport {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn can_dial(&self, addr: &Multiaddr) -> bool {
        memory_port(&addr::split_peer_id(addr).0).is_some_and(|port| port != 0)
    }

    fn can_listen(&self, addr: &Multiaddr) -> bool {
        memory_port(addr).is_some()
    }

    /// In-process channels: no descriptor.
    fn uses_fd_per_connection(&self) -> bool {
        false
    }

    async fn dial(&self, addr: &Multiaddr, _opts: &DialOpts) -> Result<Box<dyn Connection>, Error> {
        let transport_addr = addr::split_peer_id(addr).0;
        let Some(port) = memory_port(&transport_addr).filter(|p| *p != 0) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        let refused = |why: &str| Error::Dial {
            addr: addr.clone(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, why.to_owned()),
        };
        let local = Multiaddr::empty().with(Protocol::Memory(next_ephemeral()));
        let (ours, theirs) = MemoryConnection::pair(self.capacity, local, transport_addr);
        // Sent through the registry's own sender (not a clone: every clone of an mpsc sender
        // adds a slot, which would make the backlog unbounded).
        let sent = match registry().get_mut(&port) {
            Some(sender) => sender.try_send(theirs),
            None => return Err(refused("nothing listens on this memory address")),
        };
        match sent {
            Ok(()) => Ok(Box::new(ours)),
            Err(e) if e.is_full() => Err(refused("the listener's backlog is full")),
            Err(_) => Err(refused("the listener is closed")),
        }
    }

    async fn listen(&self, addr: &Multiaddr) -> Result<Box<dyn RawListener>, Error> {
        let Some(asked) = memory_port(addr) else {
            return Err(Error::UnsupportedAddress(addr.clone()));
        };
        // An mpsc channel holds `buffer + senders` messages; the registry holds the only sender.
        let (tx, rx) = mpsc::channel(self.backlog.saturating_sub(1));
        let mut reg = registry();
        let port = if asked == 0 {
            let mut port = next_ephemeral();
            while reg.contains_key(&port) {
                port = next_ephemeral();
            }
            port
        } else if reg.contains_key(&asked) {
            return Err(Error::Listen {
                addr: addr.clone(),
                source: io::Error::new(io::ErrorKind::AddrInUse, "memory address in use"),
            });
        } else {
            asked
        };
        reg.insert(port, tx);
        drop(reg);
        tracing::debug!(port, "memory listener bound");
        Ok(Box::new(MemoryListener {
            port,
            rx,
            addr: Multiaddr::empty().with(Protocol::Memory(port)),
        }))
    }
}

/// A bound `/memory/N` listener. Dropping it frees the number.
#[derive(Debug)]
pub struct MemoryListener {
    port: u64,
    rx: mpsc::Receiver<MemoryConnection>,
    addr: Multiaddr,
}

#[async_trait]
impl RawListener for MemoryListener {
    async fn accept(&mut self) -> Result<Box<dyn Connection>, Error> {
        match self.rx.next().await {
            Some(conn) => Ok(Box::new(conn)),
            // Unreachable while we are registered (the registry holds a sender), but a
            // closed channel means the listener is finished either way.
            None => Err(Error::ConnectionClosed),
        }
    }

    fn local_addr(&self) -> Multiaddr {
        self.addr.clone()
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        registry().remove(&self.port);
    }
}
