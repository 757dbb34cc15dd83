//! Receive buffers: per-stream queues of fixed-size chunks drawn from one pool per connection.
//!
//! Why chunks: the connection-wide cap must bound real memory. A growable buffer per stream
//! keeps its capacity after it drains (a thousand idle streams each holding a large
//! allocation), while counting only payload bytes lets small messages pin large blocks.
//! Counting fixed-size chunks charges exactly what is allocated; chunks go back to the pool
//! as soon as they are read, so a busy stream reuses the same few chunks and the data path
//! allocates nothing once the pool is warm.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::VecDeque;

use lp2p_core::MemoryAccount;

/// Size of one receive chunk: 16 KiB. Big enough that a 64 KiB frame is four copies, small
/// enough that a stream holding one byte is charged little.
pub(crate) const CHUNK_SIZE: usize = 16 * 1024;

/// Free chunks kept for reuse: 64 (1 MiB). Beyond that, drained chunks are freed, so an idle
/// connection shrinks back to this.
pub(crate) const MAX_FREE_CHUNKS: usize = 64;

/// The chunks of one connection: how many are held by streams, how many are promised to the
/// frame being received, and a free list. `memory` (the connection's account with the
/// resource manager) holds the bytes of the chunks held and promised: it grows before a
/// promise is made and shrinks as chunks come back.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    free: Vec<Box<[u8]>>,
    in_use: usize,
    reserved: usize,
    max_chunks: usize,
    memory: Box<dyn MemoryAccount>,
}

impl ChunkPool {
    /// A pool that lets streams hold at most `max_bytes` (rounded up to whole chunks, at
    /// least one), with nothing accounted beyond that cap.
    #[cfg(test)]
    pub(crate) fn new(max_bytes: usize) -> ChunkPool {
        ChunkPool::with_memory(max_bytes, lp2p_core::UnlimitedMemory::boxed())
    }

    /// A pool capped at `max_bytes` whose chunks are also reserved from `memory`.
    pub(crate) fn with_memory(max_bytes: usize, memory: Box<dyn MemoryAccount>) -> ChunkPool {
        ChunkPool {
            free: Vec::new(),
            in_use: 0,
            reserved: 0,
            max_chunks: max_bytes.div_ceil(CHUNK_SIZE).max(1),
            memory,
        }
    }

    /// Brings the account to the bytes of the chunks held and promised. Growth here only
    /// covers the one-chunk overshoot `take` allows, so a refusal is ignored (the account
    /// then lags by that chunk until it comes back).
    fn sync_memory(&mut self) {
        let target = self
            .in_use
            .saturating_add(self.reserved)
            .saturating_mul(CHUNK_SIZE);
        let held = self.memory.reserved();
        if target > held {
            let _ = self.memory.try_grow(target.saturating_sub(held));
        } else {
            self.memory.shrink(held.saturating_sub(target));
        }
    }

    /// Whether [`try_reserve`](ChunkPool::try_reserve) would succeed.
    pub(crate) fn can_reserve(&self, chunks: usize) -> bool {
        self.in_use
            .saturating_add(self.reserved)
            .saturating_add(chunks)
            <= self.max_chunks
    }

    /// Promises `chunks` more chunks to the frame being received, if the cap and the memory
    /// account allow.
    pub(crate) fn try_reserve(&mut self, chunks: usize) -> bool {
        if !self.can_reserve(chunks) {
            return false;
        }
        self.sync_memory();
        if self
            .memory
            .try_grow(chunks.saturating_mul(CHUNK_SIZE))
            .is_err()
        {
            return false;
        }
        self.reserved = self.reserved.saturating_add(chunks);
        true
    }

    /// Returns a promise that was not used.
    pub(crate) fn unreserve(&mut self, chunks: usize) {
        self.reserved = self.reserved.saturating_sub(chunks);
        self.sync_memory();
    }

    /// Hands out a chunk, against `reservation` when it has any left. (A frame can need one
    /// chunk more than reserved when its stream drained meanwhile and gave back a partly
    /// filled tail chunk; the cap then overshoots by that one chunk.)
    fn take(&mut self, reservation: &mut usize) -> Box<[u8]> {
        if *reservation > 0 {
            *reservation = reservation.saturating_sub(1);
            self.reserved = self.reserved.saturating_sub(1);
        }
        self.in_use = self.in_use.saturating_add(1);
        self.sync_memory();
        self.free
            .pop()
            .unwrap_or_else(|| vec![0u8; CHUNK_SIZE].into_boxed_slice())
    }

    fn give_back(&mut self, chunk: Box<[u8]>) {
        self.in_use = self.in_use.saturating_sub(1);
        self.sync_memory();
        if self.free.len() < MAX_FREE_CHUNKS {
            self.free.push(chunk);
        }
    }

    /// Bytes in chunks held by streams.
    pub(crate) fn bytes_in_use(&self) -> usize {
        self.in_use.saturating_mul(CHUNK_SIZE)
    }

    /// Bytes allocated in total: held by streams plus the free list.
    pub(crate) fn bytes_allocated(&self) -> usize {
        self.in_use
            .saturating_add(self.free.len())
            .saturating_mul(CHUNK_SIZE)
    }
}

#[derive(Debug)]
struct Chunk {
    data: Box<[u8]>,
    /// Read position.
    start: usize,
    /// Write position; `start <= end <= data.len()`.
    end: usize,
}

/// The received, unread bytes of one stream.
#[derive(Debug, Default)]
pub(crate) struct RecvBuffer {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl RecvBuffer {
    /// Unread bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many new chunks appending `bytes` more bytes takes.
    pub(crate) fn chunks_needed(&self, bytes: usize) -> usize {
        let tail_free = self
            .chunks
            .back()
            .map_or(0, |c| c.data.len().saturating_sub(c.end));
        bytes.saturating_sub(tail_free).div_ceil(CHUNK_SIZE)
    }

    /// Appends `bytes`, taking chunks from `pool` against `reservation`.
    pub(crate) fn push(&mut self, mut bytes: &[u8], pool: &mut ChunkPool, reservation: &mut usize) {
        self.len = self.len.saturating_add(bytes.len());
        while !bytes.is_empty() {
            let tail = match self.chunks.back_mut() {
                Some(tail) if tail.end < tail.data.len() => tail,
                _ => {
                    let data = pool.take(reservation);
                    self.chunks.push_back(Chunk {
                        data,
                        start: 0,
                        end: 0,
                    });
                    match self.chunks.back_mut() {
                        Some(tail) => tail,
                        None => return,
                    }
                }
            };
            let space = tail.data.get_mut(tail.end..).unwrap_or_default();
            let n = space.len().min(bytes.len());
            let (now, later) = bytes.split_at(n);
            if let Some(dst) = space.get_mut(..n) {
                dst.copy_from_slice(now);
            }
            tail.end = tail.end.saturating_add(n);
            bytes = later;
        }
    }

    /// Moves up to `buf.len()` bytes into `buf`; drained chunks go back to `pool`.
    pub(crate) fn read(&mut self, buf: &mut [u8], pool: &mut ChunkPool) -> usize {
        let mut copied = 0;
        while copied < buf.len() {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let src = front.data.get(front.start..front.end).unwrap_or_default();
            let dst = buf.get_mut(copied..).unwrap_or_default();
            let n = src.len().min(dst.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
                d.copy_from_slice(s);
            }
            front.start = front.start.saturating_add(n);
            copied = copied.saturating_add(n);
            if front.start == front.end
                && let Some(chunk) = self.chunks.pop_front()
            {
                pool.give_back(chunk.data);
            }
        }
        self.len = self.len.saturating_sub(copied);
        copied
    }

    /// Drops every unread byte, giving the chunks back.
    pub(crate) fn clear(&mut self, pool: &mut ChunkPool) {
        for chunk in self.chunks.drain(..) {
            pool.give_back(chunk.data);
        }
        self.len = 0;
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn push_read_across_chunks() {
        let mut pool = ChunkPool::new(1024 * 1024);
        let mut buf = RecvBuffer::default();
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut res = buf.chunks_needed(data.len());
        assert_eq!(res, 3);
        assert!(pool.try_reserve(res));
        buf.push(&data, &mut pool, &mut res);
        assert_eq!(res, 0);
        assert_eq!(pool.reserved, 0);
        assert_eq!(pool.in_use, 3);
        assert_eq!(buf.len(), 40_000);
        // The tail chunk has room: a small push needs no new chunk.
        assert_eq!(buf.chunks_needed(100), 0);

        let mut out = vec![0u8; 40_000];
        let mut got = 0;
        for size in [1, 10, 16_383, 5, 30_000] {
            got += buf.read(&mut out[got..(got + size).min(40_000)], &mut pool);
        }
        assert_eq!(got, 40_000);
        assert_eq!(out, data);
        assert!(buf.is_empty());
        assert_eq!(pool.in_use, 0);
        assert_eq!(pool.free.len(), 3);
        // The next push reuses the freed chunks.
        let mut res = 1;
        assert!(pool.try_reserve(1));
        buf.push(b"x", &mut pool, &mut res);
        assert_eq!(pool.free.len(), 2);
        assert_eq!(pool.bytes_allocated(), 3 * CHUNK_SIZE);
    }

    #[test]
    fn cap_is_enforced_in_chunks() {
        let mut pool = ChunkPool::new(2 * CHUNK_SIZE);
        assert!(pool.try_reserve(2));
        assert!(!pool.try_reserve(1));
        pool.unreserve(1);
        assert!(pool.try_reserve(1));
        let mut buf = RecvBuffer::default();
        let mut res = 2;
        buf.push(&vec![1; CHUNK_SIZE + 1], &mut pool, &mut res);
        assert_eq!(pool.bytes_in_use(), 2 * CHUNK_SIZE);
        assert!(!pool.try_reserve(1));
        buf.clear(&mut pool);
        assert_eq!(pool.bytes_in_use(), 0);
        assert!(pool.try_reserve(2));
    }

    #[test]
    fn free_list_is_bounded() {
        let mut pool = ChunkPool::new(usize::MAX);
        let mut buf = RecvBuffer::default();
        let n = MAX_FREE_CHUNKS + 10;
        let mut res = n;
        assert!(pool.try_reserve(n));
        buf.push(&vec![0; n * CHUNK_SIZE], &mut pool, &mut res);
        buf.clear(&mut pool);
        assert_eq!(pool.free.len(), MAX_FREE_CHUNKS);
        assert_eq!(pool.bytes_allocated(), MAX_FREE_CHUNKS * CHUNK_SIZE);
    }

    proptest! {
        #[test]
        fn behaves_like_a_queue(ops in proptest::collection::vec((any::<bool>(), 0usize..40_000), 1..40)) {
            let mut pool = ChunkPool::new(usize::MAX);
            let mut buf = RecvBuffer::default();
            let mut model = std::collections::VecDeque::new();
            let mut counter = 0u8;
            for (push, n) in ops {
                if push {
                    let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                    let mut res = buf.chunks_needed(n);
                    prop_assert!(pool.try_reserve(res));
                    buf.push(&data, &mut pool, &mut res);
                    prop_assert_eq!(res, 0);
                    model.extend(data);
                } else {
                    let mut out = vec![0; n];
                    let got = buf.read(&mut out, &mut pool);
                    prop_assert_eq!(got, n.min(model.len()));
                    let expected: Vec<u8> = model.drain(..got).collect();
                    prop_assert_eq!(&out[..got], &expected[..]);
                }
                prop_assert_eq!(buf.len(), model.len());
                prop_assert_eq!(pool.in_use, buf.chunks.len());
                prop_assert_eq!(pool.reserved, 0);
            }
        }
    }
}
