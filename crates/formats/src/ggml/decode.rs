//! Dequantization of every ggml block type Pareto reads from a GGUF but does not write (Q4_1,
//! Q5_1, Q2_K, Q3_K, Q5_K), next to the written ones. Each follows the element order of ggml's
//! `dequantize_row_*` (ggml/src/ggml-quants.c) with the same f32 operations in the same order
//! (scale × code, then ± the min), so values are bit-identical to ggml and to gguf-py's
//! `gguf.quants.dequantize`, which the fixture test checks.

use super::q4_k::scale_min;
use super::{BlockCodec, get_f16};

const QK_K: usize = 256;
use crate::FormatError;

/// (ggml type id, weights per block, bytes per block, decoder of one block).
type Decoder = (u32, usize, usize, fn(&[u8], &mut [f32]));

const DECODERS: &[Decoder] = &[
    (2, 32, 18, super::q4_0::Q4_0::decode),
    (3, 32, 20, q4_1),
    (6, 32, 22, super::q5_0::Q5_0::decode),
    (7, 32, 24, q5_1),
    (8, 32, 34, super::q8_0::Q8_0::decode),
    (10, QK_K, 84, q2_k),
    (11, QK_K, 110, q3_k),
    (12, QK_K, 144, super::q4_k::Q4K::decode),
    (13, QK_K, 176, q5_k),
    (14, QK_K, 210, super::q6_k::Q6K::decode),
];

/// The ggml block types [`dequantize_blocks`] decodes, by name, for error messages.
pub const DECODABLE: &str = "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

/// Whether [`dequantize_blocks`] decodes ggml type `ggml_type`.
pub fn can_dequantize(ggml_type: u32) -> bool {
    DECODERS.iter().any(|d| d.0 == ggml_type)
}

/// Decodes `bytes`, whole blocks of ggml type `ggml_type`, into f32 in storage order.
pub fn dequantize_blocks(ggml_type: u32, bytes: &[u8]) -> Result<Vec<f32>, FormatError> {
    let &(_, weights, block, decode) = DECODERS
        .iter()
        .find(|d| d.0 == ggml_type)
        .ok_or_else(|| FormatError::GgmlUndecodable { ggml_type, reason: format!("Pareto decodes {DECODABLE}") })?;
    if !bytes.len().is_multiple_of(block) {
        return Err(FormatError::GgmlUndecodable {
            ggml_type,
            reason: format!("{} bytes is not a whole number of {block}-byte blocks", bytes.len()),
        });
    }
    let mut out = vec![0f32; bytes.len() / block * weights];
    for (b, o) in bytes.chunks_exact(block).zip(out.chunks_exact_mut(weights)) {
        decode(b, o);
    }
    Ok(out)
}

/// Q4_1: f16 scale d, f16 min m, 16 bytes of nibbles (low nibbles are weights 0..16).
fn q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
    for (j, &q) in b[4..20].iter().enumerate() {
        out[j] = d * f32::from(q & 0x0f) + m;
        out[j + 16] = d * f32::from(q >> 4) + m;
    }
}

/// Q5_1: Q4_1 plus a 32-bit word of fifth bits (bit i for weight i).
fn q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (j, &q) in b[8..24].iter().enumerate() {
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = ((qh >> (j + 16)) & 1) << 4;
        out[j] = d * ((u32::from(q & 0x0f) | h0) as f32) + m;
        out[j + 16] = d * ((u32::from(q >> 4) | h1) as f32) + m;
    }
}

/// Q2_K: 16 bytes of (4-bit scale | 4-bit min) per 16 weights, 64 bytes of 2-bit codes (each
/// byte holds weights j, j+32, j+64, j+96 of its 128-weight half), f16 d and dmin.
fn q2_k(b: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (get_f16(&b[80..82]), get_f16(&b[82..84]));
    for (i, y) in out.iter_mut().enumerate().take(QK_K) {
        let (half, shift, j) = (i / 128, (i % 128) / 32, i % 32);
        let sc = scales[i / 16];
        let q = (qs[half * 32 + j] >> (2 * shift)) & 3;
        let dl = d * f32::from(sc & 0x0f);
        let ml = dmin * f32::from(sc >> 4);
        *y = dl * f32::from(q) - ml;
    }
}

/// Q3_K: a 32-byte high-bit mask (bit b of byte j for weight 32b + j; a clear bit subtracts 4),
/// 64 bytes of 2-bit codes laid out as Q2_K's, 12 bytes of 6-bit signed scales, f16 d.
fn q3_k(b: &[u8], out: &mut [f32]) {
    let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = get_f16(&b[108..110]);
    let scale = |i: usize| -> f32 {
        let low = if i < 8 { sc[i] & 0x0f } else { sc[i - 8] >> 4 };
        let high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        f32::from(((low | (high << 4)) as i8) - 32)
    };
    for (i, y) in out.iter_mut().enumerate().take(QK_K) {
        let (half, shift, j) = (i / 128, (i % 128) / 32, i % 32);
        let low = ((qs[half * 32 + j] >> (2 * shift)) & 3) as i8;
        let high_set = (hmask[j] >> (i / 32)) & 1 == 1;
        let q = if high_set { low } else { low - 4 };
        *y = d * scale(i / 16) * f32::from(q);
    }
}

/// Q5_K: Q4_K's scales and mins plus a 32-byte fifth-bit plane (bit s of byte j for weight j of
/// sub-block s).
fn q5_k(b: &[u8], out: &mut [f32]) {
    let (d, min) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
    let (sc, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (s, y) in out.chunks_exact_mut(32).enumerate().take(8) {
        let (scale, m) = scale_min(s, sc);
        let (d1, m1) = (d * f32::from(scale), min * f32::from(m));
        for (j, v) in y.iter_mut().enumerate() {
            let low = (qs[(s / 2) * 32 + j] >> (4 * (s % 2))) & 0x0f;
            let high = ((qh[j] >> s) & 1) << 4;
            *v = d1 * f32::from(low | high) - m1;
        }
    }
}
