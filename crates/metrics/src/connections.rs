//! Connection totals and lifetimes, from the host's lossless connection events.

use futures::StreamExt;
use lp2p_host::{CloseReason, ConnectionEvent, Host};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::labels::Labels;

/// Lifetime buckets, in seconds: 0.1 s (a refused or failed upgrade, a one-shot dial) to
/// 1.8 h (a long-lived peer), each four times the one before.
fn lifetime_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 4.0, 9))
}

/// Registers the families and starts the task that fills them (on the host's runtime; it
/// ends when the host closes).
pub(crate) fn register(host: &Host, registry: &mut Registry) {
    let opened = Family::<Labels, Counter>::default();
    let closed = Family::<Labels, Counter>::default();
    let lifetimes =
        Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(lifetime_histogram);
    registry.register(
        "connections_opened",
        "Connections established, by who dialed and transport",
        opened.clone(),
    );
    registry.register(
        "connections_closed",
        "Connections closed, by who dialed, transport and reason (local, idle, remote)",
        closed.clone(),
    );
    registry.register(
        "connection_lifetime_seconds",
        "How long closed connections were open, by who dialed and transport",
        lifetimes.clone(),
    );
    let mut events = host.connection_events();
    let runtime = host.runtime().clone();
    host.spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                ConnectionEvent::Established(conn) => {
                    let labels = vec![
                        ("direction", conn.direction().to_string()),
                        ("transport", conn.transport().to_owned()),
                    ];
                    opened.get_or_create(&labels).inc();
                }
                ConnectionEvent::Closed {
                    connection, reason, ..
                } => {
                    let base = vec![
                        ("direction", connection.direction().to_string()),
                        ("transport", connection.transport().to_owned()),
                    ];
                    let lived = runtime
                        .now()
                        .saturating_duration_since(connection.established_at());
                    lifetimes.get_or_create(&base).observe(lived.as_secs_f64());
                    let mut labels = base;
                    let why = match reason {
                        CloseReason::Local => "local",
                        CloseReason::Idle => "idle",
                        CloseReason::Remote(_) => "remote",
                    };
                    labels.push(("reason", why.to_owned()));
                    closed.get_or_create(&labels).inc();
                }
            }
        }
    });
}
