//! Rounding without libm: on the baseline x86-64 target (no SSE4.1) `round_ties_even` and `round`
//! are a call per element, which keeps codec loops from vectorizing.

/// 1.5·2^23: adding it to |v| < 2^22 leaves round-half-even(v) in the low mantissa bits, and
/// subtracting it again gives that integer as a float.
pub const RINT_MAGIC: f32 = 12_582_912.0;

/// Round half to even for |v| < 2^22, in two plain float operations. Callers clamp `v` first.
#[inline(always)]
pub(crate) fn rint(v: f32) -> f32 {
    (v + RINT_MAGIC) - RINT_MAGIC
}
