//! Dequantization of every ggml block type Pareto reads from a GGUF: the written ones through their
//! codecs, and Q2_K, which Pareto reads but does not write. Each follows the element order of ggml's
//! `dequantize_row_*` (ggml/src/ggml-quants.c) with the same f32 operations in the same order
//! (scale × code, then ± the min), so values are bit-identical to ggml and to gguf-py's
//! `gguf.quants.dequantize`, which the fixture test checks.

use super::{BlockCodec, get_f16};

const QK_K: usize = 256;
use crate::FormatError;

/// (ggml type id, weights per block, bytes per block, decoder of one block).
type Decoder = (u32, usize, usize, fn(&[u8], &mut [f32]));

const DECODERS: &[Decoder] = &[
    (2, 32, 18, super::q4_0::Q4_0::decode),
    (3, 32, 20, super::q4_1::Q4_1::decode),
    (6, 32, 22, super::q5_0::Q5_0::decode),
    (7, 32, 24, super::q5_1::Q5_1::decode),
    (8, 32, 34, super::q8_0::Q8_0::decode),
    (10, QK_K, 84, q2_k),
    (11, QK_K, 110, super::q3_k::Q3K::decode),
    (12, QK_K, 144, super::q4_k::Q4K::decode),
    (13, QK_K, 176, super::q5_k::Q5K::decode),
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
