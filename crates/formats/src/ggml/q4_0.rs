//! Q4_0 (`block_q4_0`: f16 d, 16 bytes of nibbles; low nibbles hold weights
//! 0..16, high nibbles 16..32), following `quantize_row_q4_0_ref` /
//! `dequantize_row_q4_0` in ggml/src/ggml-quants.c.

use crate::GroupArith;

use super::{BlockCodec, c_f32_to_i8, get_f16, make_qx_quants, put_f16};

pub(crate) struct Q4_0;

/// The signed value of largest magnitude (first one on ties), as ggml picks it: the magnitude
/// found lane-wise, then its sign from two lane-wise compares; only a block holding both +m and -m
/// looks for the first occurrence (a data-dependent search per block mispredicted often enough to
/// cost a third of the encoder). All zeros give +0.0, as ggml's running maximum does.
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32]) -> f32 {
    let amax = super::abs_max_lanes(x);
    if amax == 0.0 {
        return 0.0;
    }
    let (pos, neg) = x.iter().fold((0u32, 0u32), |(p, n), &v| (p | u32::from(v == amax), n | u32::from(v == -amax)));
    match (pos, neg) {
        (_, 0) => amax,
        (0, _) => -amax,
        _ => x.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax),
    }
}

/// `MIN(15, (int)y)` for y in [0.5, 16.5] (see [`trunc_level`]).
#[inline(always)]
pub(crate) fn trunc_nibble(y: f32) -> u8 {
    trunc_level::<15>(y)
}

/// `MIN(MAX, (int)y)` for y in [0.5, MAX + 1.5], MAX ≤ 31, in float operations only (the
/// saturating float→int cast costs more than the rest of the block once vectorized). `y - 0.5` is
/// exact there and rounds, ties to even, to ⌊y⌋ except for integral y, where a tie may land one
/// below: corrected by a compare.
#[inline(always)]
pub(crate) fn trunc_level<const MAX: u8>(y: f32) -> u8 {
    let r = crate::rounding::rint(y - 0.5);
    let r = if r + 1.0 <= y { r + 1.0 } else { r };
    ((r + crate::RINT_MAGIC).to_bits() as u8).min(MAX)
}

impl BlockCodec for Q4_0 {
    const ARITH: Option<GroupArith> = Some(GroupArith::SignedMax { levels: 8.0, qmax: 15.0 });
    const WEIGHTS: usize = 32;
    const BYTES: usize = 18;
    const F16_SCALES: &'static [usize] = &[0];
    const WEIGHTED: bool = true;

    /// `quantize_row_q4_0_impl`: each weight's importance is scaled by sqrt(σ² + x²), σ² the row's
    /// mean square, and the block scale is searched (`make_qx_quants`, 19 candidates) instead of
    /// taken from the largest weight.
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        let sigma2 = super::row_mean_square(x);
        for ((xb, qb), ob) in x.chunks_exact(32).zip(qw.chunks_exact(32)).zip(out.chunks_exact_mut(18)) {
            let weight = super::sigma_weights::<32>(xb, qb, sigma2);
            let mut l = [0i8; 32];
            let d = make_qx_quants(xb, 8, &mut l, Some(&weight));
            put_f16(ob, d);
            for j in 0..16 {
                ob[2 + j] = (l[j] as u8) | ((l[j + 16] as u8) << 4);
            }
        }
    }

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let d = signed_absmax(x) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        if id.is_finite() {
            // v·id lies in [-8, 8] here, so v·id + 8.5 is in [0.5, 16.5]: the truncating cast
            // needs none of C's out-of-range behaviour and the loop vectorizes.
            let nib = |v: f32| trunc_nibble(v * id + 8.5);
            for j in 0..16 {
                out[2 + j] = nib(x[j]) | (nib(x[j + 16]) << 4);
            }
        } else {
            // `(int8_t)(v*id + 8.5f)` truncates, then MIN(15, ·) into a uint8_t.
            let nib = |v: f32| i32::from(c_f32_to_i8(v * id + 8.5)).min(15) as u8;
            for j in 0..16 {
                out[2 + j] = nib(x[j]) | (nib(x[j + 16]) << 4);
            }
        }
    }

    #[inline]
    fn decode(b: &[u8], out: &mut [f32]) {
        let d = get_f16(b);
        for j in 0..16 {
            let q = b[2 + j];
            out[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
            out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{trunc_level, trunc_nibble};

    #[test]
    fn trunc_nibble_equals_the_c_cast_on_its_whole_range() {
        let (lo, hi) = (0.5f32.to_bits(), 16.5f32.to_bits());
        for bits in lo..=hi {
            let y = f32::from_bits(bits);
            assert_eq!(trunc_nibble(y), (y as i32).min(15) as u8, "{y:e}");
        }
    }
    #[test]
    fn trunc_level_31_equals_the_c_cast_on_its_whole_range() {
        let (lo, hi) = (0.5f32.to_bits(), 32.5f32.to_bits());
        for bits in lo..=hi {
            let y = f32::from_bits(bits);
            assert_eq!(trunc_level::<31>(y), (y as i32).min(31) as u8, "{y:e}");
        }
    }

    #[test]
    fn signed_absmax_keeps_the_first_of_equal_magnitudes() {
        use super::signed_absmax;
        let mut x = [0.5f32; 32];
        assert_eq!(signed_absmax(&x), 0.5);
        x[3] = -2.0;
        assert_eq!(signed_absmax(&x), -2.0);
        x[20] = 2.0;
        assert_eq!(signed_absmax(&x), -2.0);
        x[1] = 2.0;
        assert_eq!(signed_absmax(&x), 2.0);
        assert_eq!(signed_absmax(&[0.0; 32]).to_bits(), 0.0f32.to_bits());
        assert_eq!(signed_absmax(&[-0.0; 32]).to_bits(), 0.0f32.to_bits());
    }
}
