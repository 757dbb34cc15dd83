//! Stream handlers: what runs when a remote opens a stream for a protocol.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::future::BoxFuture;
use lp2p_core::ProtocolId;
use lp2p_multiselect::Matcher;

use crate::HostStream;
use crate::slots::HandlerSlots;

/// Handles inbound streams of one protocol. Implemented for every
/// `Fn(HostStream) -> impl Future<Output = ()>` closure, so an `async move` block is a
/// handler:
///
/// ```
/// # use lp2p_host::HostStream;
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// let echo = |mut stream: HostStream| async move {
///     let mut buf = Vec::new();
///     if stream.read_to_end(&mut buf).await.is_ok() {
///         let _ = stream.write_all(&buf).await;
///     }
/// };
/// # fn takes(_: impl lp2p_host::StreamHandler) {}
/// # takes(echo);
/// ```
///
/// Each stream runs in its own task. When the handler returns, the stream is dropped, which
/// closes it gracefully (see `lp2p_core::Stream`); a panic ends that stream only.
pub trait StreamHandler: Send + Sync + 'static {
    /// Serves one stream.
    fn handle(&self, stream: HostStream) -> BoxFuture<'static, ()>;
}

impl<F, Fut> StreamHandler for F
where
    F: Fn(HostStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn handle(&self, stream: HostStream) -> BoxFuture<'static, ()> {
        Box::pin(self(stream))
    }
}

/// A predicate over proposed protocol ids, for handlers that accept a family of versions.
pub type ProtocolPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How a handler is registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Serve this protocol over limited connections too (relayed circuits with duration and
    /// data caps). Off by default: only protocols meant for them (hole punching, small
    /// control exchanges) should spend a relay's budget.
    pub allow_limited: bool,
}

impl HandlerOptions {
    /// Options that also serve limited connections.
    pub fn allow_limited() -> HandlerOptions {
        HandlerOptions {
            allow_limited: true,
        }
    }
}

pub(crate) struct HandlerEntry {
    /// The protocol id it was registered with (traffic counts under it).
    pub(crate) name: ProtocolId,
    pub(crate) handler: Arc<dyn StreamHandler>,
    pub(crate) slots: Arc<HandlerSlots>,
    pub(crate) options: HandlerOptions,
}

struct MatchEntry {
    protocol: ProtocolId,
    predicate: ProtocolPredicate,
    entry: Arc<HandlerEntry>,
}

#[derive(Default)]
struct Table {
    exact: HashMap<ProtocolId, Arc<HandlerEntry>>,
    /// Handlers registered with a predicate, in registration order.
    matching: Vec<MatchEntry>,
}

/// The registered handlers; a cloneable multistream-select [`Matcher`].
#[derive(Clone, Default)]
pub(crate) struct Handlers(Arc<RwLock<Table>>);

impl Handlers {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn insert(
        &self,
        protocol: ProtocolId,
        handler: Arc<dyn StreamHandler>,
        options: HandlerOptions,
    ) {
        let entry = Arc::new(HandlerEntry {
            name: protocol.clone(),
            handler,
            slots: Arc::default(),
            options,
        });
        let mut table = self.write();
        table.matching.retain(|m| m.protocol != protocol);
        table.exact.insert(protocol, entry);
    }

    pub(crate) fn insert_matching(
        &self,
        protocol: ProtocolId,
        predicate: ProtocolPredicate,
        handler: Arc<dyn StreamHandler>,
        options: HandlerOptions,
    ) {
        let entry = Arc::new(HandlerEntry {
            name: protocol.clone(),
            handler,
            slots: Arc::default(),
            options,
        });
        let mut table = self.write();
        table.exact.remove(&protocol);
        table.matching.retain(|m| m.protocol != protocol);
        table.matching.push(MatchEntry {
            protocol,
            predicate,
            entry,
        });
    }

    pub(crate) fn remove(&self, protocol: &str) -> bool {
        let mut table = self.write();
        let before = table.matching.len();
        table.matching.retain(|m| m.protocol.as_str() != protocol);
        table.exact.remove(protocol).is_some() || table.matching.len() != before
    }

    /// The handler for a negotiated protocol.
    pub(crate) fn get(&self, protocol: &str) -> Option<Arc<HandlerEntry>> {
        let table = self.read();
        if let Some(entry) = table.exact.get(protocol) {
            return Some(entry.clone());
        }
        table
            .matching
            .iter()
            .find(|m| (m.predicate)(protocol))
            .map(|m| m.entry.clone())
    }

    /// Every registered protocol id (for matching handlers, the id they were registered with).
    pub(crate) fn protocols(&self) -> Vec<ProtocolId> {
        let table = self.read();
        let mut all: Vec<ProtocolId> = table.exact.keys().cloned().collect();
        all.extend(table.matching.iter().map(|m| m.protocol.clone()));
        all.sort();
        all
    }
}

impl Handlers {
    /// The handlers a stream on a connection may reach: all of them, or on a limited
    /// connection only those registered with `allow_limited`.
    pub(crate) fn for_connection(&self, limited: bool) -> ConnectionHandlers {
        ConnectionHandlers {
            handlers: self.clone(),
            limited,
        }
    }
}

/// The [`Matcher`] for one connection's inbound streams.
pub(crate) struct ConnectionHandlers {
    handlers: Handlers,
    limited: bool,
}

impl Matcher for ConnectionHandlers {
    fn select(&self, proposed: &str) -> Option<ProtocolId> {
        let table = self.handlers.read();
        let usable = |e: &HandlerEntry| !self.limited || e.options.allow_limited;
        if let Some((id, entry)) = table.exact.get_key_value(proposed) {
            return usable(entry).then(|| id.clone());
        }
        table
            .matching
            .iter()
            .any(|m| usable(&m.entry) && (m.predicate)(proposed))
            .then(|| ProtocolId::from(proposed.to_owned()))
    }

    fn list(&self) -> Vec<ProtocolId> {
        let table = self.handlers.read();
        let mut exact: Vec<ProtocolId> = table
            .exact
            .iter()
            .filter(|(_, e)| !self.limited || e.options.allow_limited)
            .map(|(id, _)| id.clone())
            .collect();
        exact.sort();
        exact
    }
}
