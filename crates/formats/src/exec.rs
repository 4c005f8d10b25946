//! Row-parallel execution. Rows are independent in every format, so the
//! parallel path runs the very same per-row function as the serial one and the
//! results are bit-identical by construction (tests check it anyway).

use rayon::prelude::*;

/// How a codec walks the rows of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// One row after another on the calling thread (the scalar reference).
    Serial,
    /// Rows spread over the current rayon pool.
    #[default]
    Rayon,
}

/// Splits `s` into `rows` equal consecutive slices (works for empty rows too,
/// where `chunks` would refuse a chunk size of 0).
pub(crate) fn split_rows<T>(s: &[T], rows: usize) -> Vec<&[T]> {
    if rows == 0 {
        return Vec::new();
    }
    let n = s.len() / rows;
    if n == 0 {
        return vec![&[][..]; rows];
    }
    s.chunks(n).collect()
}

/// Mutable counterpart of [`split_rows`].
pub(crate) fn split_rows_mut<T>(s: &mut [T], rows: usize) -> Vec<&mut [T]> {
    if rows == 0 {
        return Vec::new();
    }
    let n = s.len() / rows;
    if n == 0 {
        return (0..rows).map(|_| -> &mut [T] { &mut [] }).collect();
    }
    s.chunks_mut(n).collect()
}

/// Runs `f` on every item, serially or on the rayon pool.
pub(crate) fn for_each<I, F>(par: Parallelism, items: Vec<I>, f: F)
where
    I: Send,
    F: Fn(I) + Sync + Send,
{
    match par {
        Parallelism::Serial => items.into_iter().for_each(f),
        Parallelism::Rayon => items.into_par_iter().for_each(f),
    }
}

/// The sign bit set iff `v` is NaN or ±Inf (an all-ones exponent carries into it): branch-free, so
/// scans that fold it vectorize.
#[inline(always)]
pub fn non_finite_bit(v: f32) -> u32 {
    ((v.to_bits() & 0x7F80_0000) + 0x0080_0000) & 0x8000_0000
}

/// Whether every value is finite, as a branch-free fold of [`non_finite_bit`].
#[inline(always)]
pub(crate) fn all_finite(w: &[f32]) -> bool {
    w.iter().fold(0u32, |acc, &x| acc | non_finite_bit(x)) == 0
}

/// Reduces `|x|` max over `w`, chunk-parallel. Max is exact and associative,
/// so the result does not depend on `par`.
pub(crate) fn abs_max(par: Parallelism, w: &[f32]) -> f32 {
    let chunk_max = |c: &[f32]| c.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    match par {
        Parallelism::Serial => chunk_max(w),
        Parallelism::Rayon => w.par_chunks(1 << 16).map(chunk_max).reduce(|| 0.0, f32::max),
    }
}

/// Runs a fallible `f` on every item; returns the error of the first failing
/// item in item order, so serial and parallel runs report the same error.
pub(crate) fn try_for_each<I, E, F>(par: Parallelism, items: Vec<I>, f: F) -> Result<(), E>
where
    I: Send,
    E: Send,
    F: Fn(I) -> Result<(), E> + Sync + Send,
{
    match par {
        Parallelism::Serial => items.into_iter().try_for_each(f),
        Parallelism::Rayon => {
            let results: Vec<Result<(), E>> = items.into_par_iter().map(f).collect();
            results.into_iter().collect()
        }
    }
}
