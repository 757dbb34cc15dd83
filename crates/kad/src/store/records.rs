//! [`RecordStore`]: records by key, bounded by count and bytes.

use std::collections::HashMap;
use std::time::Instant;

use super::StoreError;
use crate::record::Record;

/// Bytes a stored record costs besides its key and value (map slot, struct, allocation
/// headers), so a flood of tiny records is bounded by the byte limit too.
const RECORD_OVERHEAD: usize = 96;

/// Records by key. Bounded by count, by total bytes and by value size; expired records are
/// invisible at once and removed by [`RecordStore::expire`].
#[derive(Debug)]
pub struct RecordStore {
    records: HashMap<Vec<u8>, Record>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    max_value_size: usize,
}

fn cost(record: &Record) -> usize {
    record
        .key
        .len()
        .saturating_add(record.value.len())
        .saturating_add(RECORD_OVERHEAD)
}

impl RecordStore {
    /// An empty store.
    pub fn new(max_records: usize, max_bytes: usize, max_value_size: usize) -> RecordStore {
        RecordStore {
            records: HashMap::new(),
            bytes: 0,
            max_records,
            max_bytes,
            max_value_size,
        }
    }

    /// Stores `record`, replacing one under the same key.
    pub fn put(&mut self, record: Record) -> Result<(), StoreError> {
        if record.value.len() > self.max_value_size {
            return Err(StoreError::ValueTooLarge {
                size: record.value.len(),
                max: self.max_value_size,
            });
        }
        let new = cost(&record);
        let old = self.records.get(&record.key).map_or(0, cost);
        if old == 0 && self.records.len() >= self.max_records {
            return Err(StoreError::Full("record"));
        }
        let bytes = self.bytes.saturating_sub(old).saturating_add(new);
        if bytes > self.max_bytes {
            return Err(StoreError::Full("record byte"));
        }
        self.bytes = bytes;
        self.records.insert(record.key.clone(), record);
        Ok(())
    }

    /// The unexpired record under `key`.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<&Record> {
        self.records.get(key).filter(|r| !r.is_expired(now))
    }

    /// Removes the record under `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Record> {
        let record = self.records.remove(key)?;
        self.bytes = self.bytes.saturating_sub(cost(&record));
        Some(record)
    }

    /// Removes expired records; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.records.len();
        let mut freed = 0usize;
        self.records.retain(|_, r| {
            let keep = !r.is_expired(now);
            if !keep {
                freed = freed.saturating_add(cost(r));
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        before.saturating_sub(self.records.len())
    }

    /// Records held (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes accounted (keys, values and per-record overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every record (for republishing).
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_by_count_bytes_and_value_size() {
        let mut s = RecordStore::new(2, 10_000, 100);
        assert!(matches!(
            s.put(Record::new(b"a".to_vec(), vec![0; 101])),
            Err(StoreError::ValueTooLarge {
                size: 101,
                max: 100
            })
        ));
        s.put(Record::new(b"a".to_vec(), vec![0; 10])).unwrap();
        s.put(Record::new(b"b".to_vec(), vec![0; 10])).unwrap();
        assert_eq!(
            s.put(Record::new(b"c".to_vec(), vec![])),
            Err(StoreError::Full("record"))
        );
        // Replacing does not count as a new record, and the bytes follow.
        s.put(Record::new(b"a".to_vec(), vec![0; 50])).unwrap();
        assert_eq!(s.bytes(), 1 + 50 + 1 + 10 + 2 * RECORD_OVERHEAD);
        s.remove(b"a");
        assert_eq!(s.bytes(), 1 + 10 + RECORD_OVERHEAD);

        let mut tight = RecordStore::new(100, 2 * RECORD_OVERHEAD + 10, 100);
        tight.put(Record::new(b"a".to_vec(), vec![0; 4])).unwrap();
        assert_eq!(
            tight.put(Record::new(b"b".to_vec(), vec![0; 10])),
            Err(StoreError::Full("record byte"))
        );
    }

    #[test]
    fn expiry() {
        let now = Instant::now();
        let mut s = RecordStore::new(10, 10_000, 100);
        let mut r = Record::new(b"a".to_vec(), vec![1]);
        r.expires = Some(now + Duration::from_secs(10));
        s.put(r).unwrap();
        s.put(Record::new(b"b".to_vec(), vec![2])).unwrap();
        assert!(s.get(b"a", now).is_some());
        let later = now + Duration::from_secs(10);
        assert!(s.get(b"a", later).is_none());
        assert_eq!(s.expire(later), 1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), 1 + 1 + RECORD_OVERHEAD);
    }
}
