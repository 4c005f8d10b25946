//! LSB-first bit packing of small unsigned codes into 32-bit words, along either dimension of a
//! row-major matrix — the one packing both compressed-tensors (`pack_to_int32`, compressed-tensors:
//! src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py) and AutoGPTQ
//! (`QuantLinear.pack`, auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py) use: element `k` of a
//! packed run sits at bits `bits * (k % (32 / bits))` of word `k / (32 / bits)`, with no interleave.
//! Runs whose length is not a multiple of `32 / bits` are zero-padded (compressed-tensors' `ceil`).

/// Codes per 32-bit word.
pub(crate) fn per_word(bits: u8) -> usize {
    32 / usize::from(bits)
}

/// Packs `m` (`[rows, cols]`, codes < 2^bits) along its columns: `[rows, ceil(cols / per_word)]`.
pub(crate) fn pack_along_cols(m: &[u32], rows: usize, cols: usize, bits: u8) -> Vec<u32> {
    let pw = per_word(bits);
    let words = cols.div_ceil(pw);
    let mut out = vec![0u32; rows * words];
    if cols == 0 {
        return out;
    }
    for (r, row) in m.chunks_exact(cols).take(rows).enumerate() {
        let dst = &mut out[r * words..(r + 1) * words];
        for (k, &v) in row.iter().enumerate() {
            dst[k / pw] |= v << (u32::from(bits) * (k % pw) as u32);
        }
    }
    out
}

/// Packs `m` (`[rows, cols]`) along its rows: `[ceil(rows / per_word), cols]`.
pub(crate) fn pack_along_rows(m: &[u32], rows: usize, cols: usize, bits: u8) -> Vec<u32> {
    let pw = per_word(bits);
    let mut out = vec![0u32; rows.div_ceil(pw) * cols];
    for r in 0..rows {
        let shift = u32::from(bits) * (r % pw) as u32;
        let dst = &mut out[(r / pw) * cols..(r / pw + 1) * cols];
        for (d, &v) in dst.iter_mut().zip(&m[r * cols..(r + 1) * cols]) {
            *d |= v << shift;
        }
    }
    out
}

/// Inverse of [`pack_along_cols`] for a `[rows, cols]` result; `None` when `words` is too short.
pub(crate) fn unpack_along_cols(words: &[u32], rows: usize, cols: usize, bits: u8) -> Option<Vec<u32>> {
    let pw = per_word(bits);
    let per_row = cols.div_ceil(pw);
    if words.len() != rows.checked_mul(per_row)? {
        return None;
    }
    let mask = (1u32 << bits) - 1;
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let src = words.get(r * per_row..(r + 1) * per_row)?;
        out.extend((0..cols).map(|k| (src[k / pw] >> (u32::from(bits) * (k % pw) as u32)) & mask));
    }
    Some(out)
}

/// Inverse of [`pack_along_rows`] for a `[rows, cols]` result; `None` when `words` is too short.
pub(crate) fn unpack_along_rows(words: &[u32], rows: usize, cols: usize, bits: u8) -> Option<Vec<u32>> {
    let pw = per_word(bits);
    if words.len() != rows.div_ceil(pw).checked_mul(cols)? {
        return None;
    }
    let mask = (1u32 << bits) - 1;
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let shift = u32::from(bits) * (r % pw) as u32;
        let src = words.get((r / pw) * cols..(r / pw + 1) * cols)?;
        out.extend(src.iter().map(|w| (w >> shift) & mask));
    }
    Some(out)
}

/// Row-major transpose of `[rows, cols]`.
pub(crate) fn transpose<T: Copy>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(m.len());
    for c in 0..cols {
        out.extend((0..rows).map(|r| m[r * cols + c]));
    }
    out
}

/// Little-endian bytes of 32-bit words.
pub(crate) fn words_le(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// 32-bit words from little-endian bytes; `None` unless the length is a multiple of 4.
pub(crate) fn le_words(b: &[u8]) -> Option<Vec<u32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_matches_the_reference_example_and_round_trips() {
        // pack_to_int32's docstring: 8-bit [129, 130] -> 33409.
        assert_eq!(pack_along_cols(&[129, 130], 1, 2, 8), vec![33409]);
        // Symmetric 4-bit GPTQ zeros: eight 7s -> 0x77777777.
        assert_eq!(pack_along_cols(&[7; 8], 1, 8, 4), vec![0x7777_7777]);
        let m: Vec<u32> = (0..5 * 11).map(|i| (i * 7 % 16) as u32).collect();
        let c = pack_along_cols(&m, 5, 11, 4);
        assert_eq!(c.len(), 5 * 2);
        assert_eq!(unpack_along_cols(&c, 5, 11, 4).unwrap(), m);
        let r = pack_along_rows(&m, 5, 11, 4);
        assert_eq!(r.len(), 11);
        assert_eq!(unpack_along_rows(&r, 5, 11, 4).unwrap(), m);
        assert_eq!(transpose(&transpose(&m, 5, 11), 11, 5), m);
        assert!(unpack_along_cols(&c[1..], 5, 11, 4).is_none());
    }
}
