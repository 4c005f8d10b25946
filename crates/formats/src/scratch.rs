//! Encoded-tensor buffers handed back for reuse.
//!
//! A fresh multi-megabyte buffer per tensor costs a page fault and a kernel zeroing per 4 KiB page;
//! on an export that was a third of the CPU time. The exporter gives each buffer back once its bytes
//! are on disk, and the next quantization reuses it. At most [`KEEP`] buffers are held (the largest),
//! so memory stays bounded by what the export already needed at its peak.

use std::sync::Mutex;

const KEEP: usize = 2;

static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A zeroed buffer of `len` bytes, reusing a returned one when one is large enough.
pub(crate) fn zeroed(len: usize) -> Vec<u8> {
    let reused = {
        let mut spare = SPARE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        spare.iter().position(|b| b.capacity() >= len).map(|i| spare.swap_remove(i))
    };
    match reused {
        Some(mut b) => {
            b.clear();
            b.resize(len, 0);
            b
        }
        None => vec![0u8; len],
    }
}

/// Gives back a buffer whose bytes are no longer needed (written to disk, say).
pub fn recycle(buf: Vec<u8>) {
    let mut spare = SPARE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    spare.push(buf);
    if spare.len() > KEEP {
        let smallest = spare.iter().enumerate().min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i);
        if let Some(i) = smallest {
            spare.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_buffers_come_back_zeroed_and_only_the_largest_are_kept() {
        recycle(vec![7u8; 1 << 16]);
        let b = zeroed(1000);
        assert_eq!(b.len(), 1000);
        assert!(b.iter().all(|&x| x == 0));
        assert!(b.capacity() >= 1000);
        for n in [10, 1 << 20, 1 << 18, 5] {
            recycle(vec![1u8; n]);
        }
        let held = SPARE.lock().unwrap().iter().map(Vec::capacity).min().unwrap();
        assert!(held >= 1 << 16, "small buffers are dropped first, smallest held {held}");
    }
}
