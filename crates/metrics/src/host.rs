//! The host's figures, read when scraped: open connections, stream and byte counts per
//! protocol, and what the swarm and the host refused.

use std::collections::BTreeMap;

use lp2p_core::Resource;
use lp2p_host::{Host, WeakHost};
use lp2p_rcmgr::Counts;
use lp2p_swarm::ConnectionTotals;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::labels::{Labels, counter, counters, gauge_value, gauges, histogram};

/// Reads a host at each scrape; holds it weakly, so metrics never keep a host alive.
#[derive(Debug)]
pub(crate) struct HostCollector {
    host: WeakHost,
}

impl HostCollector {
    pub(crate) fn new(host: &Host) -> HostCollector {
        HostCollector {
            host: host.downgrade(),
        }
    }
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(host) = self.host.upgrade() else {
            return Ok(());
        };
        encode_connections(&host, &mut encoder)?;
        encode_totals(&host, &mut encoder)?;
        encode_traffic(&host, &mut encoder)?;
        encode_refusals(&host, &mut encoder)?;
        encode_resources(&host, &mut encoder)
    }
}

/// The resource manager: memory held per scope (no per-peer series: the largest peer's
/// figure stands for them), its limit and peak, and refusals per scope.
fn encode_resources(
    host: &Host,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let stats = host.resource_manager().stats();
    let scope = |name: &str| vec![("scope", name.to_owned())];
    gauges(
        encoder,
        "rcmgr_memory_bytes",
        "Memory reserved by muxed connections (receive windows and buffers), by scope",
        &[
            (scope("system"), gauge_value(stats.system_memory)),
            (
                scope("allowlisted_system"),
                gauge_value(stats.allowlisted_memory),
            ),
            (
                scope("largest_peer"),
                gauge_value(stats.largest_peer_memory),
            ),
        ],
    )?;
    let service_memory: Vec<(Labels, i64)> = stats
        .service_memory
        .iter()
        .map(|(name, bytes)| (vec![("service", (*name).to_owned())], gauge_value(*bytes)))
        .collect();
    gauges(
        encoder,
        "rcmgr_service_memory_bytes",
        "Memory reserved by services (pubsub queues and RPCs, identify and kad messages), by service",
        &service_memory,
    )?;
    let limits = host.resource_manager().limits();
    gauges(
        encoder,
        "rcmgr_memory_limit_bytes",
        "Memory limit of each resource-manager scope",
        &[
            (scope("system"), gauge_value(limits.system)),
            (
                scope("allowlisted_system"),
                gauge_value(limits.allowlisted_system),
            ),
            (scope("peer"), gauge_value(limits.peer)),
            (scope("connection"), gauge_value(limits.connection)),
            (scope("service"), gauge_value(limits.service)),
        ],
    )?;
    gauges(
        encoder,
        "rcmgr_peak_memory_bytes",
        "The most memory the system scope has held",
        &[(Vec::new(), gauge_value(stats.peak_system_memory))],
    )?;
    let denied: Vec<(Labels, u64)> = lp2p_rcmgr::SCOPES
        .iter()
        .map(|s| (scope(s.as_str()), stats.denied(*s)))
        .collect();
    counters(
        encoder,
        "rcmgr_memory_denied",
        "Memory reservations the resource manager refused (or, in dry-run mode, would have), by scope",
        &denied,
    )?;
    encode_resource_counts(host, &stats, encoder)
}

/// The resource manager's counts: connections, streams and descriptors per scope (no
/// per-peer or per-protocol series: the largest peer's inbound streams stand for them),
/// their limits, and refusals per scope and resource.
fn encode_resource_counts(
    host: &Host,
    stats: &lp2p_rcmgr::ResourceStats,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let scopes = [
        ("system", stats.system_counts),
        ("allowlisted_system", stats.allowlisted_counts),
        ("transient", stats.transient_counts),
    ];
    let by_direction = |inbound: fn(&Counts) -> usize, outbound: fn(&Counts) -> usize| {
        scopes
            .iter()
            .flat_map(|(scope, counts)| {
                [("in", inbound(counts)), ("out", outbound(counts))].map(|(direction, n)| {
                    (
                        vec![
                            ("scope", (*scope).to_owned()),
                            ("direction", direction.to_owned()),
                        ],
                        gauge_value(n),
                    )
                })
            })
            .collect::<Vec<(Labels, i64)>>()
    };
    gauges(
        encoder,
        "rcmgr_connections",
        "Connections counted by the resource manager, by scope (transient: handshake running) and direction",
        &by_direction(|c| c.inbound_connections, |c| c.outbound_connections),
    )?;
    gauges(
        encoder,
        "rcmgr_streams",
        "Streams counted by the resource manager, by scope (transient: negotiating) and direction",
        &by_direction(|c| c.inbound_streams, |c| c.outbound_streams),
    )?;
    gauges(
        encoder,
        "rcmgr_largest_peer_inbound_streams",
        "Inbound streams held by the peer holding the most",
        &[(Vec::new(), gauge_value(stats.largest_peer_inbound_streams))],
    )?;
    let fds: Vec<(Labels, i64)> = scopes
        .iter()
        .filter(|(scope, _)| *scope != "transient")
        .map(|(scope, c)| (vec![("scope", (*scope).to_owned())], gauge_value(c.fds)))
        .collect();
    gauges(
        encoder,
        "rcmgr_fds",
        "File descriptors held by connections, by scope",
        &fds,
    )?;
    let limits = host.resource_manager().count_limits();
    let limit_series: Vec<(Labels, i64)> = [
        ("system", limits.system),
        ("transient", limits.transient),
        ("peer", limits.peer),
        ("protocol", limits.protocol),
    ]
    .iter()
    .flat_map(|(scope, counts)| {
        lp2p_rcmgr::RESOURCES
            .iter()
            .filter(|r| counts.get(**r) != usize::MAX)
            .map(|r| {
                (
                    vec![
                        ("scope", (*scope).to_owned()),
                        ("resource", resource_label(*r).to_owned()),
                    ],
                    gauge_value(counts.get(*r)),
                )
            })
            .collect::<Vec<_>>()
    })
    .collect();
    gauges(
        encoder,
        "rcmgr_count_limit",
        "Count limits of the resource manager's scopes, by scope and resource (unlimited ones omitted)",
        &limit_series,
    )?;
    let denied: Vec<(Labels, u64)> = lp2p_rcmgr::SCOPES
        .iter()
        .flat_map(|scope| {
            lp2p_rcmgr::RESOURCES.map(|r| {
                (
                    vec![
                        ("scope", scope.as_str().to_owned()),
                        ("resource", resource_label(r).to_owned()),
                    ],
                    stats.count_denied(*scope, r),
                )
            })
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    counters(
        encoder,
        "rcmgr_count_denied",
        "Connections, streams and descriptors the resource manager refused (or, in dry-run mode, would have), by scope and resource; a series appears with the first refusal",
        &denied,
    )
}

/// A resource as a label value.
fn resource_label(resource: Resource) -> &'static str {
    match resource {
        Resource::InboundConnections => "inbound_connections",
        Resource::OutboundConnections => "outbound_connections",
        Resource::InboundStreams => "inbound_streams",
        Resource::OutboundStreams => "outbound_streams",
        Resource::FileDescriptors => "fds",
    }
}

fn encode_connections(
    host: &Host,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let mut open: BTreeMap<[String; 5], usize> = BTreeMap::new();
    let mut streams: BTreeMap<[String; 2], usize> = BTreeMap::new();
    for conn in host.swarm().all_connections() {
        let key = [
            conn.direction().to_string(),
            conn.transport().to_owned(),
            conn.security_protocol().to_owned(),
            conn.muxer_protocol().to_owned(),
            conn.is_limited().to_string(),
        ];
        *open.entry(key).or_default() += 1;
        *streams
            .entry([conn.direction().to_string(), conn.transport().to_owned()])
            .or_default() += conn.num_streams();
    }
    let open: Vec<(Labels, i64)> = open
        .into_iter()
        .map(|([direction, transport, security, muxer, limited], n)| {
            (
                vec![
                    ("direction", direction),
                    ("transport", transport),
                    ("security", security),
                    ("muxer", muxer),
                    ("limited", limited),
                ],
                gauge_value(n),
            )
        })
        .collect();
    gauges(
        encoder,
        "connections",
        "Connections open now, by who dialed, transport, security, muxer and whether limited",
        &open,
    )?;
    let streams: Vec<(Labels, i64)> = streams
        .into_iter()
        .map(|([direction, transport], n)| {
            (
                vec![("direction", direction), ("transport", transport)],
                gauge_value(n),
            )
        })
        .collect();
    gauges(
        encoder,
        "connection_streams",
        "Streams open now on open connections, by the connection's direction and transport",
        &streams,
    )
}

fn encode_totals(host: &Host, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let totals = host.swarm().connection_totals();
    let base = |t: &ConnectionTotals| -> Labels {
        vec![
            ("direction", t.direction.to_string()),
            ("transport", t.transport.to_owned()),
        ]
    };
    let opened: Vec<(Labels, u64)> = totals.iter().map(|t| (base(t), t.opened)).collect();
    counters(
        encoder,
        "connections_opened",
        "Connections established, by who dialed and transport",
        &opened,
    )?;
    let mut closed = Vec::with_capacity(totals.len() * 3);
    for t in &totals {
        for (reason, n) in [
            ("local", t.closed_local),
            ("idle", t.closed_idle),
            ("remote", t.closed_remote),
        ] {
            let mut labels = base(t);
            labels.push(("reason", reason.to_owned()));
            closed.push((labels, n));
        }
    }
    counters(
        encoder,
        "connections_closed",
        "Connections closed, by who dialed, transport and reason (local, idle, remote)",
        &closed,
    )?;
    let mut metric = encoder.encode_descriptor(
        "connection_lifetime_seconds",
        "How long closed connections were open, by who dialed and transport",
        None,
        MetricType::Histogram,
    )?;
    for t in &totals {
        histogram(metric.encode_family(&base(t))?, &t.lifetimes)?;
    }
    let mut metric = encoder.encode_descriptor(
        "handshake_seconds",
        "How long connection attempts took to become connections (ok) or to fail, by who \
         dialed, transport and outcome: outbound per address dialed (connect, security, \
         muxer), inbound from admission",
        None,
        MetricType::Histogram,
    )?;
    for t in &totals {
        for (outcome, h) in [("ok", &t.handshakes_ok), ("failed", &t.handshakes_failed)] {
            let mut labels = base(t);
            labels.push(("outcome", outcome.to_owned()));
            histogram(metric.encode_family(&labels)?, h)?;
        }
    }
    let dials = host.swarm().dial_durations();
    let mut metric = encoder.encode_descriptor(
        "dial_seconds",
        "How long whole dials took, by outcome: from the call through address resolution, \
         ranking and staggered attempts to a connection or the final error",
        None,
        MetricType::Histogram,
    )?;
    for (outcome, h) in [("ok", &dials.ok), ("failed", &dials.failed)] {
        let labels: Labels = vec![("outcome", outcome.to_owned())];
        histogram(metric.encode_family(&labels)?, h)?;
    }
    Ok(())
}

fn encode_traffic(host: &Host, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let traffic = host.protocol_traffic();
    let mut streams = Vec::with_capacity(traffic.len() * 2);
    let mut bytes = Vec::with_capacity(traffic.len() * 2);
    for t in traffic {
        let protocol = t.protocol.as_str().to_owned();
        let label = |direction: &str| -> Labels {
            vec![
                ("protocol", protocol.clone()),
                ("direction", direction.to_owned()),
            ]
        };
        streams.push((label("in"), t.inbound_streams));
        streams.push((label("out"), t.outbound_streams));
        bytes.push((label("in"), t.bytes_read));
        bytes.push((label("out"), t.bytes_written));
    }
    counters(
        encoder,
        "protocol_streams",
        "Streams that agreed on a protocol (inbound under the handler's registered name)",
        &streams,
    )?;
    counters(
        encoder,
        "protocol_bytes",
        "Payload bytes read (in) and written (out) on streams of a protocol",
        &bytes,
    )
}

fn encode_refusals(
    host: &Host,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let swarm = host.swarm().stats();
    let denied: Vec<(Labels, u64)> = [
        ("dial", swarm.denied_dial),
        ("accept", swarm.denied_accept),
        ("secured", swarm.denied_secured),
        ("upgraded", swarm.denied_upgraded),
    ]
    .into_iter()
    .map(|(stage, n)| (vec![("stage", stage.to_owned())], n))
    .collect();
    counters(
        encoder,
        "gate_denied",
        "Connections or dials a connection gate refused, by stage",
        &denied,
    )?;
    let refused: Vec<(Labels, u64)> = [
        ("in", swarm.refused_inbound),
        ("out", swarm.refused_outbound),
    ]
    .into_iter()
    .map(|(direction, n)| (vec![("direction", direction.to_owned())], n))
    .collect();
    counters(
        encoder,
        "connections_refused",
        "Connections a swarm limit refused (see the log for which limit)",
        &refused,
    )?;
    counter(
        encoder,
        "connections_evicted_idle",
        "Idle inbound connections closed to make room for a new inbound connection at the inbound limit",
        swarm.evicted_idle_inbound,
    )?;
    let stats = host.stats();
    let streams_refused: Vec<(Labels, u64)> = [
        ("negotiating_all_peers", stats.refused_negotiating),
        ("negotiating_per_peer", stats.refused_negotiating_peer),
        ("handler_busy", stats.refused_busy),
        ("resource_manager", stats.refused_by_resources),
    ]
    .into_iter()
    .map(|(limit, n)| (vec![("limit", limit.to_owned())], n))
    .collect();
    counters(
        encoder,
        "streams_refused",
        "Inbound streams reset by a host limit, by limit",
        &streams_refused,
    )?;
    counter(
        encoder,
        "streams_evicted_for_share",
        "Running inbound streams aborted so that a peer with none got a slot of a full handler",
        stats.evicted_for_share,
    )?;
    counter(
        encoder,
        "stream_negotiations_failed",
        "Inbound streams whose protocol negotiation failed or timed out",
        stats.failed_negotiation,
    )?;
    counter(
        encoder,
        "handler_panics",
        "Stream handlers that panicked (caught; the stream was dropped)",
        stats.handler_panics,
    )?;
    gauges(
        encoder,
        "streams_negotiating",
        "Inbound streams negotiating their protocol now",
        &[(Vec::new(), gauge_value(stats.negotiating))],
    )
}
