//! Answers kept for their TTL, bounded in entries. Sans-IO: the caller passes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::resolution::{Answer, Query};

/// Entries the cache holds: 1024 names (a node resolves its bootstrap list and the
/// addresses peers tell it; an entry is a few hundred bytes).
pub const DEFAULT_CACHE_ENTRIES: usize = 1024;

/// Longest time an answer is kept, whatever its TTL says: 1 hour, so a changed record is
/// seen within the hour even from a zone that publishes day-long TTLs.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(3600);

/// A bounded TTL cache of lookup answers. Errors are not cached: the next dial asks again
/// (the swarm's dial backoff spaces those out).
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<Query, (Answer, Instant)>,
    max_entries: usize,
    max_ttl: Duration,
}

impl Cache {
    /// A cache of at most `max_entries` answers, each kept at most `max_ttl`.
    pub fn new(max_entries: usize, max_ttl: Duration) -> Cache {
        Cache {
            entries: HashMap::new(),
            max_entries,
            max_ttl,
        }
    }

    /// The answer to `query` if it is still fresh at `now`.
    pub fn get(&mut self, query: &Query, now: Instant) -> Option<Answer> {
        match self.entries.get(query) {
            Some((answer, expires)) if now < *expires => Some(answer.clone()),
            Some(_) => {
                self.entries.remove(query);
                None
            }
            None => None,
        }
    }

    /// Keeps `answer` for `ttl` (capped at the maximum) from `now`. A zero TTL is not kept.
    /// When full, expired entries go first, then the one closest to expiring.
    pub fn insert(&mut self, query: Query, answer: Answer, ttl: Duration, now: Instant) {
        let ttl = ttl.min(self.max_ttl);
        if ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        if !self.entries.contains_key(&query) && self.entries.len() >= self.max_entries {
            self.entries.retain(|_, (_, e)| now < *e);
            if self.entries.len() >= self.max_entries
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(q, _)| q.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(query, (answer, expires));
    }

    /// Entries held (fresh or not yet purged).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolution::QueryKind;

    fn q(name: &str) -> Query {
        Query {
            kind: QueryKind::Ip4,
            name: name.to_owned(),
        }
    }

    fn a(ip: &str) -> Answer {
        Answer::Ips(vec![ip.parse().unwrap()])
    }

    #[test]
    fn answers_live_for_their_ttl() {
        let t0 = Instant::now();
        let mut c = Cache::new(8, DEFAULT_MAX_TTL);
        c.insert(q("a"), a("1.1.1.1"), Duration::from_secs(10), t0);
        assert_eq!(
            c.get(&q("a"), t0 + Duration::from_secs(9)),
            Some(a("1.1.1.1"))
        );
        assert_eq!(c.get(&q("a"), t0 + Duration::from_secs(10)), None);
        assert!(c.is_empty());
        // Zero TTL: not kept. Huge TTL: capped.
        c.insert(q("z"), a("1.1.1.1"), Duration::ZERO, t0);
        assert!(c.is_empty());
        c.insert(
            q("h"),
            a("1.1.1.1"),
            Duration::from_secs(u32::MAX.into()),
            t0,
        );
        assert_eq!(c.get(&q("h"), t0 + DEFAULT_MAX_TTL), None);
        // The record type is part of the key.
        c.insert(q("t"), a("1.1.1.1"), Duration::from_secs(5), t0);
        let txt = Query {
            kind: QueryKind::Txt,
            name: "t".into(),
        };
        assert_eq!(c.get(&txt, t0), None);
    }

    #[test]
    fn bounded_evicting_the_soonest_to_expire() {
        let t0 = Instant::now();
        let mut c = Cache::new(3, DEFAULT_MAX_TTL);
        c.insert(q("long"), a("1.1.1.1"), Duration::from_secs(100), t0);
        c.insert(q("short"), a("1.1.1.1"), Duration::from_secs(1), t0);
        c.insert(q("mid"), a("1.1.1.1"), Duration::from_secs(50), t0);
        c.insert(q("new"), a("1.1.1.1"), Duration::from_secs(60), t0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&q("short"), t0), None);
        assert!(c.get(&q("long"), t0).is_some());
        // Expired entries are purged before evicting fresh ones.
        let later = t0 + Duration::from_secs(55);
        c.insert(q("newer"), a("1.1.1.1"), Duration::from_secs(5), later);
        assert!(c.get(&q("long"), later).is_some());
        assert!(c.get(&q("new"), later).is_some());
        assert_eq!(c.get(&q("mid"), later), None);
    }
}
