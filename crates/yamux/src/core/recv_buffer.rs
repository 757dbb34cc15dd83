//! A stream's receive buffer: a ring over initialized memory.
//!
//! Data goes in either by copy ([`push`](RecvBuffer::push)) or by reading from the socket
//! straight into its free space ([`spare_mut`](RecvBuffer::spare_mut) then
//! [`commit`](RecvBuffer::commit)), which saves a copy for large Data frames. The memory is
//! zeroed once when the ring grows, never per use, and nothing moves when data is consumed.

/// Smallest allocation: small messages do not need more.
const MIN_CAPACITY: usize = 4 * 1024;

#[derive(Debug, Default)]
pub(crate) struct RecvBuffer {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl RecvBuffer {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Index of the first free byte.
    fn tail(&self) -> usize {
        let cap = self.buf.len();
        let end = self.head.wrapping_add(self.len);
        if end >= cap {
            end.wrapping_sub(cap)
        } else {
            end
        }
    }

    /// Makes room for `additional` more bytes. The ring doubles as it grows, but never past
    /// `limit` (the stream's window: it can never hold more) unless more is needed.
    fn reserve(&mut self, additional: usize, limit: usize) {
        let needed = self.len.saturating_add(additional);
        if needed <= self.buf.len() {
            return;
        }
        let new_cap = needed
            .max(MIN_CAPACITY)
            .max(self.buf.len().saturating_mul(2))
            .min(limit)
            .max(needed);
        let mut new = vec![0u8; new_cap];
        let n = self.copy_out(&mut new);
        debug_assert_eq!(n, self.len);
        self.buf = new;
        self.head = 0;
    }

    /// Appends a copy of `data` (see [`spare_mut`](RecvBuffer::spare_mut) for `limit`).
    pub(crate) fn push(&mut self, mut data: &[u8], limit: usize) {
        self.reserve(data.len(), limit);
        while !data.is_empty() {
            let spare = self.spare_mut(data.len(), limit);
            let n = spare.len();
            if n == 0 {
                break;
            }
            let (now, rest) = data.split_at(n);
            spare.copy_from_slice(now);
            self.commit(n);
            data = rest;
        }
    }

    /// A contiguous free region of at most `max` bytes to read into; growing the ring so the
    /// whole `max` fits (possibly in two pieces, of which this is the first). The ring grows
    /// geometrically but not beyond `limit` bytes unless `max` needs it.
    pub(crate) fn spare_mut(&mut self, max: usize, limit: usize) -> &mut [u8] {
        self.reserve(max, limit);
        let cap = self.buf.len();
        let tail = self.tail();
        // Free space runs from the tail to the end, or (wrapped) to the head.
        let end = if tail > self.head || self.len == 0 {
            cap
        } else {
            self.head
        };
        let n = end.saturating_sub(tail).min(max);
        self.buf
            .get_mut(tail..tail.saturating_add(n))
            .unwrap_or_default()
    }

    /// `n` bytes were written at the start of the last [`spare_mut`](RecvBuffer::spare_mut).
    pub(crate) fn commit(&mut self, n: usize) {
        self.len = self.len.saturating_add(n).min(self.buf.len());
    }

    /// Copies out up to `out.len()` bytes from the front without consuming them.
    fn copy_out(&self, out: &mut [u8]) -> usize {
        let cap = self.buf.len();
        let n = out.len().min(self.len);
        let first = n.min(cap.saturating_sub(self.head));
        let second = n.saturating_sub(first);
        if let (Some(dst), Some(src)) = (
            out.get_mut(..first),
            self.buf.get(self.head..self.head.saturating_add(first)),
        ) {
            dst.copy_from_slice(src);
        }
        if let (Some(dst), Some(src)) = (out.get_mut(first..n), self.buf.get(..second)) {
            dst.copy_from_slice(src);
        }
        n
    }

    /// Moves up to `out.len()` bytes from the front into `out`.
    pub(crate) fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = self.copy_out(out);
        self.len = self.len.saturating_sub(n);
        let cap = self.buf.len();
        self.head = if self.len == 0 {
            0
        } else {
            let h = self.head.saturating_add(n);
            if h >= cap { h.saturating_sub(cap) } else { h }
        };
        n
    }

    /// Frees the memory.
    pub(crate) fn clear_and_free(&mut self) {
        *self = RecvBuffer::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn push_pop_wraps() {
        let mut r = RecvBuffer::default();
        r.push(&[1; 3000], usize::MAX);
        let mut out = [0u8; 2000];
        assert_eq!(r.pop(&mut out), 2000);
        r.push(&[2; 3000], usize::MAX);
        assert_eq!(r.capacity(), MIN_CAPACITY);
        assert_eq!(r.len(), 4000);
        let mut all = vec![0u8; 5000];
        assert_eq!(r.pop(&mut all), 4000);
        assert!(all[..1000].iter().all(|&b| b == 1));
        assert!(all[1000..4000].iter().all(|&b| b == 2));
        assert!(r.is_empty());
    }

    #[test]
    fn direct_reads_fill_the_spare_space() {
        let mut r = RecvBuffer::default();
        let spare = r.spare_mut(10_000, 16_384);
        assert!(spare.len() >= 10_000);
        assert_eq!(r.capacity(), 10_000);
        let spare = r.spare_mut(5, 16_384);
        spare[..5].copy_from_slice(b"hello");
        r.commit(5);
        let mut out = [0u8; 8];
        assert_eq!(r.pop(&mut out), 5);
        assert_eq!(&out[..5], b"hello");
        r.clear_and_free();
        assert_eq!(r.capacity(), 0);
    }

    proptest! {
        /// The ring behaves as a byte queue whatever the sequence of pushes, direct writes
        /// and pops.
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec((0u8..3, 0usize..9000), 0..60)) {
            let mut r = RecvBuffer::default();
            let mut model = VecDeque::new();
            let mut counter = 0u8;
            for (op, n) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..n).map(|_| { counter = counter.wrapping_add(1); counter }).collect();
                        r.push(&data, 20_000);
                        model.extend(data);
                    }
                    1 => {
                        let spare = r.spare_mut(n, 20_000);
                        prop_assert!(spare.len() <= n);
                        let k = spare.len() / 2;
                        for b in &mut spare[..k] {
                            counter = counter.wrapping_add(1);
                            *b = counter;
                            model.push_back(counter);
                        }
                        r.commit(k);
                    }
                    _ => {
                        let before = model.len();
                        let mut out = vec![0u8; n];
                        let got = r.pop(&mut out);
                        prop_assert_eq!(got, n.min(before));
                        let want: Vec<u8> = model.drain(..got).collect();
                        prop_assert_eq!(&out[..got], &want[..]);
                    }
                }
                prop_assert_eq!(r.len(), model.len());
            }
        }
    }
}
