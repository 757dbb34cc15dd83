//! The identify service's counters, read when scraped.

use lp2p_identify::Identify;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::labels::counter;

/// Reads an [`Identify`] service at each scrape.
pub(crate) struct IdentifyCollector {
    identify: Identify,
}

impl std::fmt::Debug for IdentifyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentifyCollector").finish_non_exhaustive()
    }
}

impl IdentifyCollector {
    pub(crate) fn new(identify: &Identify) -> IdentifyCollector {
        IdentifyCollector {
            identify: identify.clone(),
        }
    }
}

impl Collector for IdentifyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.identify.stats();
        for (name, help, value) in [
            (
                "identify_applied",
                "Identify answers and pushes applied",
                s.applied,
            ),
            (
                "identify_failed",
                "Identify exchanges that failed or were refused (I/O, timeout, malformed, oversized, wrong key, no memory)",
                s.failed,
            ),
            (
                "identify_out_of_memory",
                "Identify exchanges ended because the resource manager refused memory for what the peer sent (also in identify_failed)",
                s.out_of_memory,
            ),
            (
                "identify_records_rejected",
                "Signed peer records received but not used (the plain addresses were used)",
                s.records_rejected,
            ),
            (
                "identify_pushes_sent",
                "Identify pushes sent",
                s.pushes_sent,
            ),
            (
                "identify_pushes_received",
                "Identify pushes received and applied",
                s.pushes_received,
            ),
        ] {
            counter(&mut encoder, name, help, value)?;
        }
        Ok(())
    }
}
