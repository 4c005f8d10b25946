//! ggml tensor types: block size and bytes per block, from ggml's type-traits table
//! (ggml/src/ggml.c `type_traits`, ggml/src/ggml-common.h block structs). The reader needs every
//! common type's size to validate offsets even when it cannot decode the type.

/// (type id, name, weights per block, bytes per block).
const TABLE: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
];

pub const F32: u32 = 0;
pub const F16: u32 = 1;
pub const BF16: u32 = 30;

/// Name of a ggml type id (`Q4_K`), or `None` when unknown.
pub fn name(id: u32) -> Option<&'static str> {
    TABLE.iter().find(|e| e.0 == id).map(|e| e.1)
}

/// (weights per block, bytes per block) of a ggml type id.
pub fn block(id: u32) -> Option<(u64, u64)> {
    TABLE.iter().find(|e| e.0 == id).map(|e| (e.2, e.3))
}

/// Bytes of a tensor with row length `ne0` and `rows` rows; `None` for an unknown type, a row
/// length the block does not divide, or overflow.
pub fn nbytes(id: u32, ne0: u64, rows: u64) -> Option<u64> {
    let (bs, ts) = block(id)?;
    if !ne0.is_multiple_of(bs) {
        return None;
    }
    (ne0 / bs).checked_mul(ts)?.checked_mul(rows)
}
