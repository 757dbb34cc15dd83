//! `--dcutr`: upgrade relayed connections to direct ones (lp2p-dcutr), printing
//! `{"event":"dcutr","peer":"...","ok":true,"addr":"...","attempts":N,"unilateral":B,"ms":T}`
//! per upgrade,
//! or `"ok":false` with the `error` when every attempt failed.
//!
//! On a node whose addresses are all loopback (a test network on one machine) loopback
//! addresses are offered and dialed; elsewhere only public ones, the library's default.

use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use lp2p::Host;
use lp2p::core::events::EventStream;
use lp2p::dcutr::{Dcutr, DcutrConfig, DcutrEvent};
use serde_json::{Value, json};

use crate::output::Output;

/// The service's events from the moment it started, kept on the host until
/// [`print_events`] takes them: upgrades can finish while the host is still starting.
#[derive(Clone)]
struct EarlyEvents(Arc<Mutex<Option<EventStream<DcutrEvent>>>>);

/// A hook that starts DCUtR on the host and subscribes to its events at once.
pub(crate) fn hook(loopback_only: bool) -> impl FnOnce(&Host) + Send + 'static {
    move |host: &Host| {
        let config = if loopback_only {
            DcutrConfig::default().allowing_private_addrs()
        } else {
            DcutrConfig::default()
        };
        let dcutr = Dcutr::new(host, config);
        host.insert_service(EarlyEvents(Arc::new(Mutex::new(Some(dcutr.events())))));
    }
}

fn event_json(event: &DcutrEvent) -> Value {
    match event {
        DcutrEvent::Upgraded {
            peer,
            addr,
            attempts,
            unilateral,
            elapsed,
        } => json!({
            "event": "dcutr",
            "peer": peer.to_string(),
            "ok": true,
            "addr": addr.to_string(),
            "attempts": attempts,
            "unilateral": unilateral,
            "ms": elapsed.as_secs_f64() * 1000.0,
        }),
        DcutrEvent::Failed {
            peer,
            attempts,
            error,
        } => json!({
            "event": "dcutr",
            "peer": peer.to_string(),
            "ok": false,
            "attempts": attempts,
            "error": error,
        }),
    }
}

/// Prints the events of the DCUtR service [`hook`] started (none without it) until the
/// host closes.
pub(crate) fn print_events(host: &Host, out: &Output) {
    let Some(EarlyEvents(slot)) = host.service::<EarlyEvents>() else {
        return;
    };
    let Some(mut events) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return;
    };
    let out = out.clone();
    host.spawn(async move {
        while let Some(event) = events.next().await {
            out.emit(&event_json(&event));
        }
    });
}
