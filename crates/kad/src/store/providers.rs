//! [`ProviderStore`]: who provides which key, bounded per key, per providing peer and in
//! total, with record and address expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId};

use super::StoreError;
use crate::wire::PeerInfo;

/// One provider of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// The providing peer.
    pub provider: PeerId,
    /// Its addresses, as it announced them.
    pub addrs: Vec<Multiaddr>,
    /// When the record expires (unless re-announced).
    pub expires: Instant,
    /// When the addresses stop being handed out (the spec's address retention: after it,
    /// only the peer id is returned, so stale addresses are not spread).
    pub addrs_expire: Instant,
}

/// Provider records by key.
#[derive(Debug)]
pub struct ProviderStore {
    by_key: HashMap<Vec<u8>, Vec<ProviderRecord>>,
    per_peer: HashMap<PeerId, usize>,
    total: usize,
    max_total: usize,
    max_per_key: usize,
    max_per_peer: usize,
}

impl ProviderStore {
    /// An empty store holding at most `max_total` records, `max_per_key` per key and
    /// `max_per_peer` announced by one peer.
    pub fn new(max_total: usize, max_per_key: usize, max_per_peer: usize) -> ProviderStore {
        ProviderStore {
            by_key: HashMap::new(),
            per_peer: HashMap::new(),
            total: 0,
            max_total,
            max_per_key,
            max_per_peer,
        }
    }

    /// Adds (or refreshes) `provider` for `key`, valid for `ttl`, its addresses for
    /// `addr_ttl`.
    pub fn add(
        &mut self,
        key: &[u8],
        provider: PeerId,
        addrs: Vec<Multiaddr>,
        now: Instant,
        ttl: Duration,
        addr_ttl: Duration,
    ) -> Result<(), StoreError> {
        let expires = now.checked_add(ttl).unwrap_or(now);
        let addrs_expire = now.checked_add(addr_ttl.min(ttl)).unwrap_or(now);
        if let Some(existing) = self
            .by_key
            .get_mut(key)
            .and_then(|list| list.iter_mut().find(|r| r.provider == provider))
        {
            existing.expires = expires;
            if !addrs.is_empty() {
                existing.addrs = addrs;
            }
            existing.addrs_expire = addrs_expire;
            return Ok(());
        }
        let list_len = self.by_key.get(key).map_or(0, Vec::len);
        if list_len >= self.max_per_key {
            return Err(StoreError::KeyFull);
        }
        if self.per_peer.get(&provider).copied().unwrap_or(0) >= self.max_per_peer {
            return Err(StoreError::PeerFull);
        }
        if self.total >= self.max_total {
            return Err(StoreError::Full("provider"));
        }
        self.by_key
            .entry(key.to_vec())
            .or_default()
            .push(ProviderRecord {
                provider,
                addrs,
                expires,
                addrs_expire,
            });
        let n = self.per_peer.entry(provider).or_insert(0);
        *n = n.saturating_add(1);
        self.total = self.total.saturating_add(1);
        Ok(())
    }

    /// The unexpired providers of `key` (addresses only while they are retained).
    pub fn get(&self, key: &[u8], now: Instant) -> Vec<PeerInfo> {
        self.by_key
            .get(key)
            .map(|list| {
                list.iter()
                    .filter(|r| r.expires > now)
                    .map(|r| {
                        let addrs = if r.addrs_expire > now {
                            r.addrs.clone()
                        } else {
                            Vec::new()
                        };
                        PeerInfo::new(r.provider, addrs)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes `provider`'s record for `key`.
    pub fn remove(&mut self, key: &[u8], provider: &PeerId) -> bool {
        let Some(list) = self.by_key.get_mut(key) else {
            return false;
        };
        let before = list.len();
        list.retain(|r| r.provider != *provider);
        let removed = before != list.len();
        if list.is_empty() {
            self.by_key.remove(key);
        }
        if removed {
            self.forget(provider);
        }
        removed
    }

    fn forget(&mut self, provider: &PeerId) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_peer.get_mut(provider) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(provider);
            }
        }
    }

    /// Removes expired records; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut gone = Vec::new();
        self.by_key.retain(|_, list| {
            list.retain(|r| {
                let keep = r.expires > now;
                if !keep {
                    gone.push(r.provider);
                }
                keep
            });
            !list.is_empty()
        });
        for provider in &gone {
            self.forget(provider);
        }
        gone.len()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Keys with at least one provider.
    pub fn keys(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(100);
    const ADDR_TTL: Duration = Duration::from_secs(10);

    #[test]
    fn limits_per_key_per_peer_and_total() {
        let now = Instant::now();
        let mut s = ProviderStore::new(3, 2, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        s.add(b"k1", a, vec![], now, TTL, ADDR_TTL).unwrap();
        s.add(b"k1", b, vec![], now, TTL, ADDR_TTL).unwrap();
        assert_eq!(
            s.add(b"k1", c, vec![], now, TTL, ADDR_TTL),
            Err(StoreError::KeyFull)
        );
        // Refreshing is always allowed.
        s.add(b"k1", a, vec![], now, TTL, ADDR_TTL).unwrap();
        s.add(b"k2", a, vec![], now, TTL, ADDR_TTL).unwrap();
        assert_eq!(
            s.add(b"k3", a, vec![], now, TTL, ADDR_TTL),
            Err(StoreError::PeerFull)
        );
        assert_eq!(
            s.add(b"k3", c, vec![], now, TTL, ADDR_TTL),
            Err(StoreError::Full("provider"))
        );
        assert_eq!(s.len(), 3);
        assert!(s.remove(b"k1", &a));
        assert_eq!(s.len(), 2);
        s.add(b"k3", c, vec![], now, TTL, ADDR_TTL).unwrap();
    }

    #[test]
    fn records_and_addresses_expire() {
        let now = Instant::now();
        let mut s = ProviderStore::new(10, 10, 10);
        let a = PeerId::random();
        let addr: Multiaddr = "/ip4/1.2.3.4/tcp/1".parse().unwrap();
        s.add(b"k", a, vec![addr.clone()], now, TTL, ADDR_TTL)
            .unwrap();
        assert_eq!(s.get(b"k", now)[0].addrs, vec![addr]);
        // After the address retention: the peer id only.
        let later = now + ADDR_TTL;
        let got = s.get(b"k", later);
        assert_eq!(got.len(), 1);
        assert!(got[0].addrs.is_empty());
        // After the TTL: gone.
        let expired = now + TTL;
        assert!(s.get(b"k", expired).is_empty());
        assert_eq!(s.expire(expired), 1);
        assert!(s.is_empty());
        assert_eq!(s.keys(), 0);
    }
}
