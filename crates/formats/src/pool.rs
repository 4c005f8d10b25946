//! Buffers handed back for reuse.
//!
//! A fresh multi-megabyte buffer per tensor costs a page fault and a kernel zeroing per 4 KiB page;
//! on an export that was a third of the CPU time. Exports give each buffer back once it is no
//! longer needed (decoded tensor quantized, encoded bytes on disk) and the next tensor reuses it.
//! A pool holds at most `keep` buffers, the largest, so memory stays bounded by what the export
//! already needed at its peak.

use std::sync::{Mutex, PoisonError};

/// A bounded pool of `Vec<T>` buffers.
pub struct BufferPool<T> {
    spare: Mutex<Vec<Vec<T>>>,
    keep: usize,
}

impl<T: Copy + Default> BufferPool<T> {
    /// A pool that keeps at most `keep` buffers.
    pub const fn new(keep: usize) -> Self {
        Self { spare: Mutex::new(Vec::new()), keep }
    }

    /// A buffer of `len` elements whose contents are unspecified (the caller overwrites them):
    /// the smallest spare one that fits, else the largest grown to fit, else a new one.
    pub fn take(&self, len: usize) -> Vec<T> {
        let reused = {
            let mut spare = self.lock();
            let fits = spare.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity());
            let pick = fits.map(|(i, _)| i).or_else(|| (0..spare.len()).max_by_key(|&i| spare[i].capacity()));
            pick.map(|i| spare.swap_remove(i))
        };
        let mut b = reused.unwrap_or_default();
        // Only growth beyond the old length is filled.
        b.resize(len, T::default());
        b
    }

    /// Like [`take`](Self::take), every element set to `T::default()`.
    pub fn take_zeroed(&self, len: usize) -> Vec<T> {
        let mut b = self.take(0);
        b.resize(len, T::default());
        b
    }

    /// Gives back a buffer whose contents are no longer needed; the smallest is dropped when more
    /// than `keep` are held.
    pub fn give_back(&self, buf: Vec<T>) {
        let mut spare = self.lock();
        spare.push(buf);
        if spare.len() > self.keep
            && let Some(i) = (0..spare.len()).min_by_key(|&i| spare[i].capacity())
        {
            spare.swap_remove(i);
        }
    }

    /// Drops every spare buffer (before a step whose peak should not include them).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<T>>> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Encoded-tensor bytes: one being encoded plus those queued for hashing and writing (see the
/// exporter's output pipeline), so a steady export allocates nothing new.
pub static ENCODED: BufferPool<u8> = BufferPool::new(4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zero_and_only_the_largest_are_kept() {
        let pool = BufferPool::new(2);
        pool.give_back(vec![7u8; 1 << 16]);
        let b = pool.take_zeroed(1000);
        assert_eq!(b.len(), 1000);
        assert!(b.iter().all(|&x| x == 0));
        assert!(b.capacity() >= 1 << 16, "the spare buffer was reused");
        for n in [10, 1 << 20, 1 << 18, 5] {
            pool.give_back(vec![1u8; n]);
        }
        let held: Vec<usize> = pool.lock().iter().map(Vec::capacity).collect();
        assert_eq!(held.len(), 2);
        assert!(held.iter().all(|&c| c >= 1 << 18), "small buffers are dropped first: {held:?}");
    }

    #[test]
    fn take_prefers_the_smallest_buffer_that_fits() {
        let pool = BufferPool::<f32>::new(3);
        for n in [100, 1000, 10_000] {
            pool.give_back(Vec::with_capacity(n));
        }
        assert!((1000..10_000).contains(&pool.take(500).capacity()));
        // None fits: the largest grows (its memory is reused rather than a second one allocated).
        assert!(pool.take(20_000).capacity() >= 20_000);
        assert_eq!(pool.lock().len(), 1);
        pool.clear();
        assert!(pool.lock().is_empty());
    }
}
