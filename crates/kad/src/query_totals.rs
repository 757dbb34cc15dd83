//! Finished queries per kind, with how long they ran (for monitoring, e.g. lp2p-metrics).

use std::collections::BTreeMap;
use std::time::Duration;

use lp2p_core::Histogram;

/// Upper bounds, in seconds, of the query-duration buckets: 10 ms (answered by the first
/// peers on a LAN) to 2 minutes (the default query timeout is one minute).
pub static QUERY_DURATION_BUCKETS: [f64; 11] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// The totals of one kind of query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTotals {
    /// The kind: `find_peer`, `closest_peers`, `get_value`, `put_value`, `provide`,
    /// `get_providers` or `bootstrap`.
    pub kind: &'static str,
    /// Queries that finished, including the core's own (refresh, republish).
    pub finished: u64,
    /// Of those, queries that ran out of time.
    pub timed_out: u64,
    /// How long they ran, in seconds, over [`QUERY_DURATION_BUCKETS`].
    pub durations: Histogram,
}

/// Every kind's totals.
#[derive(Debug, Default)]
pub(crate) struct QueryTotalsTable {
    map: BTreeMap<&'static str, QueryTotals>,
}

impl QueryTotalsTable {
    pub(crate) fn finished(&mut self, kind: &'static str, took: Duration, timed_out: bool) {
        let t = self.map.entry(kind).or_insert_with(|| QueryTotals {
            kind,
            finished: 0,
            timed_out: 0,
            durations: Histogram::new(&QUERY_DURATION_BUCKETS),
        });
        t.finished = t.finished.saturating_add(1);
        if timed_out {
            t.timed_out = t.timed_out.saturating_add(1);
        }
        t.durations.observe(took.as_secs_f64());
    }

    pub(crate) fn snapshot(&self) -> Vec<QueryTotals> {
        self.map.values().cloned().collect()
    }
}
