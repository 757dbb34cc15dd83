//! The protocol services a node runs beside echo and perf: identify, ping and pubsub
//! (gossipsub, which also serves floodsub peers). `--bare` keeps only ping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use lp2p::identify::{Identify, IdentifyConfig, IdentifyEvent};
use lp2p::ping::{Ping, PingConfig};
use lp2p::pubsub::{Config as PubsubConfig, Message, PubSub, Subscription};
use lp2p::{Connection, Host, IdentifyInfo, PeerId};
use serde_json::{Value, json};

use crate::output::Output;

/// How often the mesh is looked at while waiting for a peer to join it.
const MESH_POLL: Duration = Duration::from_millis(50);

/// Why a pubsub action is refused in `--bare` mode.
const BARE: &str = "pubsub is not running (--bare serves only ping, echo and perf)";

/// A message as the node prints it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The author's peer id (empty for anonymous messages).
    pub from: String,
    /// The payload as text (invalid UTF-8 replaced).
    pub data: String,
}

impl Received {
    fn from_message(message: &Message) -> Received {
        Received {
            from: message.source.map(|p| p.to_string()).unwrap_or_default(),
            data: String::from_utf8_lossy(&message.data).into_owned(),
        }
    }

    fn event(&self, topic: &str) -> Value {
        json!({ "event": "message", "topic": topic, "from": self.from, "data": self.data })
    }
}

/// The services of one node.
pub(crate) struct Services {
    ping: Ping,
    identify: Option<Identify>,
    pubsub: Option<PubSub>,
    /// Subscriptions made with [`Services::subscribe_quietly`], read by
    /// [`Services::next_message`].
    quiet: Mutex<HashMap<String, Subscription>>,
    /// Kademlia, with `--kad`.
    pub(crate) kad: Option<lp2p::kad::Kademlia>,
}

impl Services {
    /// Metrics of `host` and of these services, served at `addr` (`--metrics`). The server
    /// stops when dropped or when the host closes.
    pub(crate) fn serve_metrics(
        &self,
        host: &Host,
        addr: std::net::SocketAddr,
    ) -> Result<lp2p::metrics::MetricsServer, String> {
        let metrics = lp2p::metrics::Metrics::new(host);
        metrics.add_ping(&self.ping);
        if let Some(identify) = &self.identify {
            metrics.add_identify(identify);
        }
        if let Some(pubsub) = &self.pubsub {
            metrics.add_pubsub(pubsub);
        }
        if let Some(kad) = &self.kad {
            metrics.add_kad(kad);
        }
        metrics.serve(addr).map_err(|e| format!("--metrics: {e}"))
    }

    /// Starts ping, and unless `bare`, identify and gossipsub on `host`.
    pub(crate) fn start(host: &Host, bare: bool) -> Result<Services, String> {
        let ping = Ping::new(host, PingConfig::default());
        let (identify, pubsub) = if bare {
            (None, None)
        } else {
            let identify = Identify::new(host, IdentifyConfig::default());
            let pubsub = PubSub::gossipsub(host, PubsubConfig::default())
                .map_err(|e| format!("starting gossipsub failed: {e}"))?;
            (Some(identify), Some(pubsub))
        };
        Ok(Services {
            ping,
            identify,
            pubsub,
            quiet: Mutex::new(HashMap::new()),
            kad: None,
        })
    }

    fn pubsub(&self) -> Result<&PubSub, String> {
        self.pubsub.as_ref().ok_or_else(|| BARE.to_owned())
    }

    /// One ping round trip to `peer` (dialing it if needed).
    pub(crate) async fn ping(&self, _host: &Host, peer: &PeerId) -> Result<Duration, String> {
        self.ping
            .ping(peer)
            .await
            .map_err(|e| format!("ping {peer} failed: {e}"))
    }

    /// One ping round trip on a given connection.
    pub(crate) async fn ping_on(
        &self,
        _host: &Host,
        conn: &Connection,
    ) -> Result<Duration, String> {
        let peer = conn.peer();
        self.ping
            .ping_on(conn)
            .await
            .map_err(|e| format!("ping {peer} failed: {e}"))
    }

    /// What `peer` last said in identify, if it has.
    pub(crate) fn identified(&self, _host: &Host, peer: &PeerId) -> Option<Arc<IdentifyInfo>> {
        self.identify
            .as_ref()
            .and_then(|identify| identify.info(peer))
    }

    /// Waits (at most `timeout`) until `peer` has identified itself.
    pub(crate) async fn wait_identified(
        &self,
        host: &Host,
        peer: &PeerId,
        timeout: Duration,
    ) -> Result<Arc<IdentifyInfo>, String> {
        let Some(identify) = &self.identify else {
            return Err("identify is not running (--bare)".to_owned());
        };
        // Listen before looking, so an answer between the two is not missed.
        let mut events = identify.events();
        if let Some(info) = self.identified(host, peer) {
            return Ok(info);
        }
        let wait = async {
            while let Some(event) = events.next().await {
                if let IdentifyEvent::Identified { peer: p, info } = event
                    && p == *peer
                {
                    return Ok(info);
                }
            }
            Err(format!("the host closed before {peer} identified itself"))
        };
        host.runtime()
            .timeout(timeout, wait)
            .await
            .map_err(|_| format!("{peer} did not identify itself within {timeout:?}"))?
    }

    /// Subscribes to `topic` and prints every message as a `message` event until the host
    /// closes.
    pub(crate) fn print_messages(
        &self,
        host: &Host,
        topic: &str,
        out: &Output,
    ) -> Result<(), String> {
        let mut subscription = self.subscribe(topic)?;
        let out = out.clone();
        let topic = topic.to_owned();
        host.spawn(async move {
            while let Some(message) = subscription.next().await {
                out.emit(&Received::from_message(&message).event(&topic));
            }
        });
        Ok(())
    }

    /// Subscribes to `topic`, prints every message, and counts them for
    /// [`MessageCount::wait_for`].
    pub(crate) fn collect_messages(
        &self,
        host: &Host,
        topic: &str,
        out: &Output,
    ) -> Result<MessageCount, String> {
        let mut subscription = self.subscribe(topic)?;
        let (tx, rx) = mpsc::unbounded();
        let out = out.clone();
        let topic_name = topic.to_owned();
        host.spawn(async move {
            while let Some(message) = subscription.next().await {
                out.emit(&Received::from_message(&message).event(&topic_name));
                if tx.unbounded_send(()).is_err() {
                    break;
                }
            }
        });
        Ok(MessageCount {
            topic: topic.to_owned(),
            arrivals: rx,
        })
    }

    fn subscribe(&self, topic: &str) -> Result<Subscription, String> {
        self.pubsub()?
            .subscribe(topic)
            .map_err(|e| format!("cannot subscribe to {topic}: {e}"))
    }

    /// Subscribes to `topic` without printing; read messages with [`Services::next_message`].
    pub(crate) fn subscribe_quietly(&self, topic: &str) -> Result<(), String> {
        let subscription = self.subscribe(topic)?;
        self.quiet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), subscription);
        Ok(())
    }

    /// The next message on a topic subscribed with [`Services::subscribe_quietly`].
    pub(crate) async fn next_message(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Received, String> {
        let taken = self
            .quiet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(topic);
        let Some(mut subscription) = taken else {
            return Err(format!("not subscribed to {topic}"));
        };
        let rt = lp2p::RuntimeHandle::try_default().ok_or("no runtime compiled in")?;
        let result = rt.timeout(timeout, subscription.next()).await;
        self.quiet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), subscription);
        match result {
            Ok(Some(message)) => Ok(Received::from_message(&message)),
            Ok(None) => Err(format!("the subscription to {topic} ended")),
            Err(_) => Err(format!("no message on {topic} within {timeout:?}")),
        }
    }

    /// Publishes `data` on `topic`.
    pub(crate) async fn publish(&self, topic: &str, data: &[u8]) -> Result<(), String> {
        match self.pubsub()?.publish(topic, data.to_vec()).await {
            Ok(_id) => Ok(()),
            Err(e) => Err(format!("publishing on {topic} failed: {e}")),
        }
    }

    /// Waits (at most `limit`) until everything published so far has been handed to every
    /// pubsub peer's stream.
    pub(crate) async fn flush(&self, host: &Host, limit: Duration) -> Result<(), String> {
        let pubsub = self.pubsub()?;
        let flushed = host
            .runtime()
            .timeout(limit, pubsub.flush())
            .await
            .map_err(|_| {
                format!("published messages not written to every peer within {limit:?}")
            })?;
        match flushed.lost.as_slice() {
            [] => Ok(()),
            lost => Err(format!(
                "the link to {} went down before the published message was written",
                lost.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Waits (at most `limit`) until `peer` is in our mesh for `topic`. A peer that only
    /// speaks floodsub never joins a mesh; publishing still reaches it, so running out of time
    /// here is not an error.
    pub(crate) async fn wait_for_mesh(
        &self,
        host: &Host,
        topic: &str,
        peer: &PeerId,
        limit: Duration,
    ) {
        let Ok(pubsub) = self.pubsub() else { return };
        let poll = async {
            while !pubsub.mesh_peers(topic).contains(peer) {
                host.runtime().sleep(MESH_POLL).await;
            }
        };
        let _ = host.runtime().timeout(limit, poll).await;
    }

    /// Waits (at most `limit`) until our mesh for `topic` has at least one peer.
    pub(crate) async fn wait_for_any_mesh_peer(
        &self,
        host: &Host,
        topic: &str,
        limit: Duration,
    ) -> Result<(), String> {
        let pubsub = self.pubsub()?;
        let poll = async {
            while pubsub.mesh_peers(topic).is_empty() {
                host.runtime().sleep(MESH_POLL).await;
            }
        };
        host.runtime()
            .timeout(limit, poll)
            .await
            .map_err(|_| format!("no peer joined the mesh of {topic} within {limit:?}"))
    }
}

/// Counts the messages of one topic as they arrive (see [`Services::collect_messages`]).
pub(crate) struct MessageCount {
    topic: String,
    arrivals: mpsc::UnboundedReceiver<()>,
}

impl MessageCount {
    /// Waits until `expected` messages have arrived in all.
    pub(crate) async fn wait_for(mut self, expected: usize) -> Result<(), String> {
        let mut seen = 0;
        while seen < expected {
            match self.arrivals.next().fuse().await {
                Some(()) => seen += 1,
                None => {
                    return Err(format!(
                        "only {seen} of {expected} expected messages arrived on {}",
                        self.topic
                    ));
                }
            }
        }
        Ok(())
    }
}
