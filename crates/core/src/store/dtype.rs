//! Safetensors element types: their byte sizes, their names in the header, and decoding to f32.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An element type as named in a safetensors header. Sub-byte types (F4, F6) and complex numbers
/// are not modelled: every type here has a whole number of bytes per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    #[serde(rename = "F8_E4M3")]
    F8E4M3,
    #[serde(rename = "F8_E5M2")]
    F8E5M2,
    /// Exponent-only scale type of the OCP microscaling formats.
    #[serde(rename = "F8_E8M0")]
    F8E8M0,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    #[serde(rename = "BOOL")]
    Bool,
}

impl DType {
    pub const ALL: [DType; 16] = [
        DType::F64,
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F8E4M3,
        DType::F8E5M2,
        DType::F8E8M0,
        DType::I64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U64,
        DType::U32,
        DType::U16,
        DType::U8,
        DType::Bool,
    ];

    /// Bytes per element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F64 | DType::I64 | DType::U64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F8E4M3 | DType::F8E5M2 | DType::F8E8M0 | DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// The name used in safetensors headers.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F8E4M3 => "F8_E4M3",
            DType::F8E5M2 => "F8_E5M2",
            DType::F8E8M0 => "F8_E8M0",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U64 => "U64",
            DType::U32 => "U32",
            DType::U16 => "U16",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }

    /// Parses a safetensors header name (exact, case-sensitive as the format specifies).
    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Floating-point types: the ones `read_f32` converts.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F64 | DType::F32 | DType::F16 | DType::BF16 | DType::F8E4M3 | DType::F8E5M2 | DType::F8E8M0
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes little-endian elements of a float `dtype` to f32; `None` for non-float types.
/// A trailing partial element (impossible after header validation) is ignored.
pub(crate) fn decode_f32(dtype: DType, bytes: &[u8]) -> Option<Vec<f32>> {
    let mut out = vec![0f32; bytes.len() / dtype.size_bytes().max(1) as usize];
    decode_f32_into(dtype, bytes, &mut out).map(|_| out)
}

/// Decodes little-endian `bytes` of a float dtype into `out` (one f32 per element; `out` must
/// have exactly that length) and says whether every value is finite: the NaN/Inf check runs in the
/// same pass, since a separate scan of the f32 tensor cost as much as the decode. `None` for
/// non-float dtypes.
pub(crate) fn decode_f32_into(dtype: DType, bytes: &[u8], out: &mut [f32]) -> Option<bool> {
    fn each<const N: usize>(bytes: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32) -> bool {
        let mut flag = 0u32;
        for (o, c) in out.iter_mut().zip(bytes.as_chunks::<N>().0) {
            let v = f(*c);
            flag |= pareto_formats::non_finite_bit(v);
            *o = v;
        }
        flag == 0
    }
    Some(match dtype {
        DType::F32 => each::<4>(bytes, out, f32::from_le_bytes),
        DType::F64 => each::<8>(bytes, out, |c| f64::from_le_bytes(c) as f32),
        DType::F16 => decode_f16(bytes.as_chunks::<2>().0, out),
        // bf16 is the top half of an f32.
        DType::BF16 => each::<2>(bytes, out, |c| f32::from_bits(u32::from(u16::from_le_bytes(c)) << 16)),
        DType::F8E4M3 => each::<1>(bytes, out, |[b]| f8_e4m3_to_f32(b)),
        DType::F8E5M2 => each::<1>(bytes, out, |[b]| f8_e5m2_to_f32(b)),
        DType::F8E8M0 => each::<1>(bytes, out, |[b]| f8_e8m0_to_f32(b)),
        _ => return None,
    })
}

/// f16 → f32 plus the finiteness check on the 16-bit patterns; F16C where the CPU has it.
fn decode_f16(src: &[[u8; 2]], out: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx") && is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU features the function is compiled for were just checked.
        #[allow(unsafe_code)]
        return unsafe { decode_f16_f16c(src, out) };
    }
    decode_f16_portable(src, out)
}

fn decode_f16_portable(src: &[[u8; 2]], out: &mut [f32]) -> bool {
    use half::slice::HalfFloatSliceExt;
    let mut flag = 0u16;
    let mut halves = [half::f16::ZERO; 256];
    for (o, c) in out.chunks_mut(halves.len()).zip(src.chunks(halves.len())) {
        for (h, b) in halves.iter_mut().zip(c) {
            let bits = u16::from_le_bytes(*b);
            // Exponent all ones: adding one more carries into the sign bit.
            flag |= ((bits & 0x7C00) + 0x0400) & 0x8000;
            *h = half::f16::from_bits(bits);
        }
        halves[..o.len()].convert_to_f32_slice(o);
    }
    flag == 0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
#[allow(unsafe_code)]
unsafe fn decode_f16_f16c(src: &[[u8; 2]], out: &mut [f32]) -> bool {
    use std::arch::x86_64::*;
    let n = out.len().min(src.len());
    let exp = _mm_set1_epi16(0x7C00);
    let mut bad = _mm_setzero_si128();
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n bounds both the 16-byte load and the 8-float store (unaligned forms).
        let h = unsafe { _mm_loadu_si128(src.as_ptr().add(i).cast()) };
        bad = _mm_or_si128(bad, _mm_cmpeq_epi16(_mm_and_si128(h, exp), exp));
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h)) };
        i += 8;
    }
    let tail = decode_f16_portable(&src[i..n], &mut out[i..n]);
    _mm_testz_si128(bad, bad) == 1 && tail
}

/// 2^k as f32, exact for the exponent ranges the 8-bit formats reach (-17..=127).
fn pow2(k: i32) -> f32 {
    2f32.powi(k)
}

/// OCP FP8 E4M3 ("E4M3FN"): bias 7, no infinities, S.1111.111 is NaN, max 448.
pub fn f8_e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((b >> 3) & 0x0F);
    let man = f32::from(b & 0x07);
    if exp == 0x0F && b & 0x07 == 0x07 {
        return f32::NAN;
    }
    let magnitude = if exp == 0 { man / 8.0 * pow2(-6) } else { (1.0 + man / 8.0) * pow2(exp - 7) };
    sign * magnitude
}

/// OCP FP8 E5M2: IEEE-like, bias 15, with infinities and NaNs.
pub fn f8_e5m2_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((b >> 2) & 0x1F);
    let man = f32::from(b & 0x03);
    let magnitude = match exp {
        0 => man / 4.0 * pow2(-14),
        0x1F if man == 0.0 => f32::INFINITY,
        0x1F => return f32::NAN,
        _ => (1.0 + man / 4.0) * pow2(exp - 15),
    };
    sign * magnitude
}

/// OCP E8M0 scale: 2^(e-127), 0xFF is NaN. 2^-127 is an f32 subnormal, still exact.
pub fn f8_e8m0_to_f32(b: u8) -> f32 {
    if b == 0xFF { f32::NAN } else { pow2(i32::from(b) - 127) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sizes() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.as_str()), Some(d));
            let json = serde_json::to_string(&d).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
        assert_eq!(DType::parse("f32"), None);
        assert_eq!(DType::parse("F4"), None);
        assert_eq!(DType::BF16.size_bytes(), 2);
        assert_eq!(DType::F8E4M3.size_bytes(), 1);
        assert_eq!(DType::I64.size_bytes(), 8);
        assert!(DType::F8E5M2.is_float());
        assert!(!DType::I8.is_float());
        assert!(!DType::Bool.is_float());
    }

    #[test]
    fn e4m3_known_values() {
        assert_eq!(f8_e4m3_to_f32(0x00), 0.0);
        assert_eq!(f8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(f8_e4m3_to_f32(0x7E), 448.0);
        assert_eq!(f8_e4m3_to_f32(0xFE), -448.0);
        assert_eq!(f8_e4m3_to_f32(0x40), 2.0);
        assert_eq!(f8_e4m3_to_f32(0x3C), 1.5);
        // Subnormals: m/8 * 2^-6; the smallest is 2^-9.
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert_eq!(f8_e4m3_to_f32(0x07), 7.0 / 8.0 * 2f32.powi(-6));
        assert_eq!(f8_e4m3_to_f32(0x08), 2f32.powi(-6));
        assert!(f8_e4m3_to_f32(0x7F).is_nan());
        assert!(f8_e4m3_to_f32(0xFF).is_nan());
        // E4M3FN has no infinity: 0x78 is an ordinary 256.
        assert_eq!(f8_e4m3_to_f32(0x78), 256.0);
        assert!(f8_e4m3_to_f32(0x80).is_sign_negative());
    }

    #[test]
    fn e5m2_known_values() {
        assert_eq!(f8_e5m2_to_f32(0x3C), 1.0);
        assert_eq!(f8_e5m2_to_f32(0x7B), 57344.0);
        assert_eq!(f8_e5m2_to_f32(0x7C), f32::INFINITY);
        assert_eq!(f8_e5m2_to_f32(0xFC), f32::NEG_INFINITY);
        assert!(f8_e5m2_to_f32(0x7D).is_nan());
        assert_eq!(f8_e5m2_to_f32(0x01), 2f32.powi(-16));
        assert_eq!(f8_e5m2_to_f32(0xC0), -2.0);
        // E5M2 is the top byte of an f16: check every value against `half`.
        for b in 0..=255u8 {
            let via_f16 = half::f16::from_bits(u16::from(b) << 8).to_f32();
            let ours = f8_e5m2_to_f32(b);
            assert!(ours == via_f16 || (ours.is_nan() && via_f16.is_nan()), "byte {b:#04x}");
        }
    }

    #[test]
    fn e8m0_known_values() {
        assert_eq!(f8_e8m0_to_f32(127), 1.0);
        assert_eq!(f8_e8m0_to_f32(130), 8.0);
        assert_eq!(f8_e8m0_to_f32(0), 2f32.powi(-127));
        assert!(f8_e8m0_to_f32(0xFF).is_nan());
    }

    #[test]
    fn decode_each_float_type() {
        let bf16 = [0x80, 0x3F, 0x00, 0xC0]; // 1.0, -2.0
        assert_eq!(decode_f32(DType::BF16, &bf16), Some(vec![1.0, -2.0]));
        let f16 = [0x00, 0x3C, 0x01, 0x00]; // 1.0, smallest subnormal 2^-24
        assert_eq!(decode_f32(DType::F16, &f16), Some(vec![1.0, 2f32.powi(-24)]));
        let f64b = 0.5f64.to_le_bytes();
        assert_eq!(decode_f32(DType::F64, &f64b), Some(vec![0.5]));
        let f32b = [1.25f32.to_le_bytes(), (-3.0f32).to_le_bytes()].concat();
        assert_eq!(decode_f32(DType::F32, &f32b), Some(vec![1.25, -3.0]));
        assert_eq!(decode_f32(DType::F8E4M3, &[0x7E, 0x01]), Some(vec![448.0, 2f32.powi(-9)]));
        assert_eq!(decode_f32(DType::I32, &[0, 0, 0, 0]), None);
    }

    #[test]
    fn f16_decode_and_finite_flag_on_every_bit_pattern() {
        let all: Vec<[u8; 2]> = (0..=u16::MAX).map(u16::to_le_bytes).collect();
        let mut fast = vec![0f32; all.len()];
        let mut portable = vec![0f32; all.len()];
        assert!(!decode_f16(&all, &mut fast));
        assert!(!decode_f16_portable(&all, &mut portable));
        for (b, (f, p)) in all.iter().zip(fast.iter().zip(&portable)) {
            let want = half::f16::from_bits(u16::from_le_bytes(*b)).to_f32();
            for got in [f, p] {
                assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{b:?}");
            }
            // Each pattern alone: flagged exactly when non-finite (odd lengths exercise the tail).
            let mut one = [0f32; 9];
            let nine = [*b; 9];
            assert_eq!(decode_f16(&nine, &mut one), want.is_finite(), "{b:?}");
            assert_eq!(decode_f16(&nine[..8], &mut one[..8]), want.is_finite(), "{b:?}");
        }
    }

    #[test]
    fn finite_flag_for_the_other_float_types() {
        let bf = [0x80, 0x7F]; // bf16 +Inf
        assert_eq!(decode_f32_into(DType::BF16, &bf, &mut [0.0]), Some(false));
        assert_eq!(decode_f32_into(DType::BF16, &[0x80, 0x3F], &mut [0.0]), Some(true));
        let nan = f32::NAN.to_le_bytes();
        assert_eq!(decode_f32_into(DType::F32, &nan, &mut [0.0]), Some(false));
        assert_eq!(decode_f32_into(DType::F8E4M3, &[0x7F], &mut [0.0]), Some(false));
        assert_eq!(decode_f32_into(DType::F8E4M3, &[0x7E], &mut [0.0]), Some(true));
        assert_eq!(decode_f32_into(DType::I32, &[0; 4], &mut [0.0]), None);
    }
}
