//! What other backends need to re-implement a codec exactly.
//!
//! Most formats compute one scale per group (a row, a block of 32, the whole tensor) from a max or
//! a min/max, then map every weight elementwise. Such codecs describe their arithmetic here, and a
//! backend that runs tensor operations elsewhere (pareto-eval's candle path, on a GPU) follows it
//! step by step; its results are tested byte for byte against the codecs. Formats that search for
//! a scale (q4_k, q6_k) or use a lookup table (nf4) have none.

/// The arithmetic of one codec, in the order the codec performs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GroupArith {
    /// Integer grid (`int8_channel`, `int4_*`). Per group of `group` weights along a row (0 = the
    /// row): symmetric `s = f16(max(amax / denom, EPS))`, `zero = 0`; asymmetric, with min/max
    /// widened to include 0, `s = f16(max((max - min) / denom, EPS))`,
    /// `zero = rint(clamp(qmin - min / s, qmin, qmax))`. Codes:
    /// `clamp(rint(clamp(x / s + zero, qmin - 1, qmax + 1)), qmin, qmax)`; `rint` rounds half to
    /// even; EPS is `f32::EPSILON`; f16 rounding is to nearest even.
    IntGrid { bits: u8, group: usize, symmetric: bool, qmin: f32, qmax: f32, denom: f32 },
    /// FP8 E4M3: per row (or per tensor) `s = max(amax / max, EPS)`, code `e4m3(x / s)`
    /// ([`crate::fp8::e4m3_from_f32`]).
    Fp8E4m3 { per_tensor: bool, max: f32 },
    /// ggml Q8_0: per block of 32, `d = amax / 127`, `id = d != 0 ? 1 / d : 0`,
    /// `q = roundf(x * id)` (half away from zero); block = f16(d) then the 32 codes as i8.
    Q8_0,
    /// ggml Q4_0 (`levels` 8, `qmax` 15) and Q5_0 (16, 31): per block of 32, `m` = the first
    /// weight of largest magnitude (+0.0 for an all-zero block), `d = m / -levels`,
    /// `id = d != 0 ? 1 / d : 0`, `q = min(qmax, floor(x * id + (levels + 0.5)))` (the C cast of
    /// a value that is ≥ 0 here). Block layouts as the codecs write them.
    SignedMax { levels: f32, qmax: f32 },
}
