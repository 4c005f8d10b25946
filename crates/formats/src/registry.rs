//! The format table and the validated entry points around each codec.
//! Adding a format = one codec file + one entry in `REGISTRY`.

use crate::metrics::Sums;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::exec::Parallelism;
use crate::float::{FloatCodec, FloatDtype};
use crate::fp8::Fp8Codec;
use crate::ggml::{
    Ggml, q3_k::Q3K, q4_0::Q4_0, q4_1::Q4_1, q4_k::Q4K, q5_0::Q5_0, q5_1::Q5_1, q5_k::Q5K, q6_k::Q6K, q8_0::Q8_0,
};
use crate::int_grid::IntGrid;
use crate::nf4::Nf4Codec;
use crate::{FormatError, GroupArith, QTensor};

/// Family of a format, for callers that treat families differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Plain float casts (f32 / f16 / bf16).
    Float,
    /// Integer grid with scales (and zero points when asymmetric).
    IntGrid,
    /// Low-precision float grid with scales (fp8).
    FloatGrid,
    /// Look-up table codes with a block scale (nf4).
    Lut,
    /// A ggml block type, stored as exact ggml block bytes.
    GgmlBlock,
}

/// `block` value for formats with one scale per output row.
pub const PER_ROW: usize = 0;
/// `block` value for formats with one scale for the whole tensor.
pub const PER_TENSOR: usize = usize::MAX;

/// One quantization format.
pub struct Format {
    pub id: &'static str,
    pub kind: Kind,
    /// Weights per block/group along a row; [`PER_ROW`] (0) = whole row;
    /// [`PER_TENSOR`] (`usize::MAX`) = whole tensor; 1 = every weight alone.
    pub block: usize,
    /// Exact bits per weight including scales/zeros for one full block. For
    /// per-row / per-tensor formats the scale overhead depends on the shape and
    /// is not included (see [`Format::stored_bytes`] for exact sizes).
    pub bits_per_weight: f64,
    pub needs_calibration: bool,
    /// Max relative RMS error allowed on N(0,1) test data.
    pub tolerance: f32,
    /// llama.cpp-style fallback id when `cols % block != 0`.
    pub fallback: Option<&'static str>,
    /// GGUF/ggml type id, if this is a ggml type.
    pub ggml_type: Option<u32>,
    pub description: &'static str,
    pub(crate) codec: &'static dyn Codec,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Format")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("block", &self.block)
            .field("bits_per_weight", &self.bits_per_weight)
            .field("needs_calibration", &self.needs_calibration)
            .field("tolerance", &self.tolerance)
            .field("fallback", &self.fallback)
            .field("ggml_type", &self.ggml_type)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

macro_rules! int4 {
    ($id:literal, $group:literal, $sym:literal, $bpw:expr, $tol:literal, $desc:literal) => {
        Format {
            id: $id,
            kind: Kind::IntGrid,
            block: $group,
            bits_per_weight: $bpw,
            needs_calibration: false,
            tolerance: $tol,
            fallback: None,
            ggml_type: None,
            description: $desc,
            codec: &IntGrid::int4($group, $sym),
        }
    };
}

static REGISTRY: [Format; 22] = [
    Format {
        id: "f32",
        kind: Kind::Float,
        block: 1,
        bits_per_weight: 32.0,
        needs_calibration: false,
        tolerance: 0.0,
        fallback: None,
        ggml_type: Some(0),
        description: "IEEE f32, unchanged",
        codec: &FloatCodec(FloatDtype::F32),
    },
    Format {
        id: "f16",
        kind: Kind::Float,
        block: 1,
        bits_per_weight: 16.0,
        needs_calibration: false,
        // f16's worst-case relative rounding error is 2^-11.
        tolerance: 5e-4,
        fallback: None,
        ggml_type: Some(1),
        description: "IEEE f16, round-to-nearest-even",
        codec: &FloatCodec(FloatDtype::F16),
    },
    Format {
        id: "bf16",
        kind: Kind::Float,
        block: 1,
        bits_per_weight: 16.0,
        needs_calibration: false,
        // bf16's worst-case relative rounding error is 2^-8.
        tolerance: 4e-3,
        fallback: None,
        ggml_type: Some(30),
        description: "bfloat16, round-to-nearest-even",
        codec: &FloatCodec(FloatDtype::Bf16),
    },
    Format {
        id: "int8_channel",
        kind: Kind::IntGrid,
        block: PER_ROW,
        bits_per_weight: 8.0,
        needs_calibration: false,
        tolerance: 0.012,
        fallback: None,
        ggml_type: None,
        description: "int8 symmetric per output channel, q in [-127,127], f16 scale = amax/127",
        codec: &IntGrid::int8_channel(),
    },
    int4!("int4_g32_sym", 32, true, 4.5, 0.12, "int4 symmetric, group 32, f16 scale = amax/7.5 (compressed-tensors)"),
    int4!("int4_g64_sym", 64, true, 4.25, 0.13, "int4 symmetric, group 64, f16 scale = amax/7.5 (compressed-tensors)"),
    int4!(
        "int4_g128_sym",
        128,
        true,
        4.125,
        0.14,
        "int4 symmetric, group 128, f16 scale = amax/7.5 (compressed-tensors)"
    ),
    int4!(
        "int4_g32_asym",
        32,
        false,
        4.625,
        0.11,
        "int4 asymmetric, group 32, f16 scale + 4-bit signed zero point (compressed-tensors)"
    ),
    int4!(
        "int4_g64_asym",
        64,
        false,
        4.3125,
        0.12,
        "int4 asymmetric, group 64, f16 scale + 4-bit signed zero point (compressed-tensors)"
    ),
    int4!(
        "int4_g128_asym",
        128,
        false,
        4.15625,
        0.13,
        "int4 asymmetric, group 128, f16 scale + 4-bit signed zero point (compressed-tensors)"
    ),
    Format {
        id: "fp8_e4m3",
        kind: Kind::FloatGrid,
        block: PER_ROW,
        bits_per_weight: 8.0,
        needs_calibration: false,
        tolerance: 0.04,
        fallback: None,
        ggml_type: None,
        description: "FP8 E4M3 (OCP fn), f32 scale per output channel = amax/448",
        codec: &Fp8Codec { per_tensor: false },
    },
    Format {
        id: "fp8_e4m3_tensor",
        kind: Kind::FloatGrid,
        block: PER_TENSOR,
        bits_per_weight: 8.0,
        needs_calibration: false,
        tolerance: 0.04,
        fallback: None,
        ggml_type: None,
        description: "FP8 E4M3 (OCP fn), one f32 scale per tensor = amax/448",
        codec: &Fp8Codec { per_tensor: true },
    },
    Format {
        id: "nf4",
        kind: Kind::Lut,
        block: 64,
        bits_per_weight: 4.5,
        needs_calibration: false,
        tolerance: 0.12,
        fallback: None,
        ggml_type: None,
        description: "QLoRA NormalFloat4, block 64, f32 absmax (bitsandbytes, no double quant)",
        codec: &Nf4Codec,
    },
    Format {
        id: "q8_0",
        kind: Kind::GgmlBlock,
        block: 32,
        bits_per_weight: 8.5,
        needs_calibration: false,
        tolerance: 0.006,
        fallback: Some("f16"),
        ggml_type: Some(8),
        description: "ggml Q8_0: 32 x int8 + f16 scale",
        codec: &Ggml(Q8_0),
    },
    Format {
        id: "q4_0",
        kind: Kind::GgmlBlock,
        block: 32,
        bits_per_weight: 4.5,
        needs_calibration: false,
        tolerance: 0.13,
        fallback: Some("f16"),
        ggml_type: Some(2),
        description: "ggml Q4_0: 32 x 4-bit + f16 scale",
        codec: &Ggml(Q4_0),
    },
    Format {
        id: "q5_0",
        kind: Kind::GgmlBlock,
        block: 32,
        bits_per_weight: 5.5,
        needs_calibration: false,
        tolerance: 0.065,
        fallback: Some("f16"),
        ggml_type: Some(6),
        description: "ggml Q5_0: 32 x 5-bit + f16 scale",
        codec: &Ggml(Q5_0),
    },
    Format {
        id: "q4_1",
        kind: Kind::GgmlBlock,
        block: 32,
        bits_per_weight: 5.0,
        needs_calibration: false,
        tolerance: 0.1,
        fallback: Some("f16"),
        ggml_type: Some(3),
        description: "ggml Q4_1: 32 x 4-bit + f16 scale + f16 min",
        codec: &Ggml(Q4_1),
    },
    Format {
        id: "q5_1",
        kind: Kind::GgmlBlock,
        block: 32,
        bits_per_weight: 6.0,
        needs_calibration: false,
        tolerance: 0.05,
        fallback: Some("f16"),
        ggml_type: Some(7),
        description: "ggml Q5_1: 32 x 5-bit + f16 scale + f16 min",
        codec: &Ggml(Q5_1),
    },
    Format {
        id: "q3_k",
        kind: Kind::GgmlBlock,
        block: 256,
        bits_per_weight: 3.4375,
        needs_calibration: false,
        tolerance: 0.2,
        // llama.cpp's tensor_type_fallback (src/llama-quant.cpp): Q3_K -> Q4_0.
        fallback: Some("q4_0"),
        ggml_type: Some(11),
        description: "ggml Q3_K: 256-weight super-block, 16 x 6-bit scales, 3-bit codes",
        codec: &Ggml(Q3K),
    },
    Format {
        id: "q4_k",
        kind: Kind::GgmlBlock,
        block: 256,
        bits_per_weight: 4.5,
        needs_calibration: false,
        tolerance: 0.11,
        fallback: Some("q5_0"),
        ggml_type: Some(12),
        description: "ggml Q4_K: 256-weight super-block, 8 x 6-bit scales/mins, 4-bit codes",
        codec: &Ggml(Q4K),
    },
    Format {
        id: "q5_k",
        kind: Kind::GgmlBlock,
        block: 256,
        bits_per_weight: 5.5,
        needs_calibration: false,
        tolerance: 0.055,
        fallback: Some("q5_1"),
        ggml_type: Some(13),
        description: "ggml Q5_K: 256-weight super-block, 8 x 6-bit scales/mins, 5-bit codes",
        codec: &Ggml(Q5K),
    },
    Format {
        id: "q6_k",
        kind: Kind::GgmlBlock,
        block: 256,
        bits_per_weight: 6.5625,
        needs_calibration: false,
        tolerance: 0.03,
        fallback: Some("q8_0"),
        ggml_type: Some(14),
        description: "ggml Q6_K: 256-weight super-block, 16 x int8 scales, 6-bit codes",
        codec: &Ggml(Q6K),
    },
];

/// Every format, one entry each.
pub fn registry() -> &'static [Format] {
    &REGISTRY
}

/// Finds a format by id.
pub fn lookup(id: &str) -> Result<&'static Format, FormatError> {
    REGISTRY.iter().find(|f| f.id == id).ok_or_else(|| FormatError::UnknownFormat {
        id: id.to_string(),
        valid: REGISTRY.iter().map(|f| f.id).collect::<Vec<_>>().join(", "),
    })
}

/// The formats `id` passes through for a `[rows, cols]` tensor, following the fallback chain as
/// llama.cpp does for rows a block does not divide: `id` first, and the last one holds the shape
/// unless the chain ran out (then `fits` is false and the last one is the one that did not).
pub fn fallback_chain(id: &str, rows: usize, cols: usize) -> Result<FallbackChain, FormatError> {
    let mut chain = vec![lookup(id)?];
    loop {
        let fmt = chain[chain.len() - 1];
        if fmt.check_shape(rows, cols).is_ok() {
            return Ok(FallbackChain { chain, fits: true });
        }
        match fmt.fallback {
            Some(next) => chain.push(lookup(next)?),
            None => return Ok(FallbackChain { chain, fits: false }),
        }
    }
}

/// See [`fallback_chain`].
#[derive(Debug, Clone)]
pub struct FallbackChain {
    pub chain: Vec<&'static Format>,
    pub fits: bool,
}

impl FallbackChain {
    /// The format the tensor gets, when one in the chain holds its shape.
    pub fn applied(&self) -> Option<&'static Format> {
        self.chain.last().copied().filter(|_| self.fits)
    }
}

fn element_count(rows: usize, cols: usize) -> Result<usize, FormatError> {
    rows.checked_mul(cols).ok_or(FormatError::ShapeOverflow { rows, cols })
}

impl Format {
    /// Whether `cols` fits the block structure of this format.
    pub fn check_shape(&self, rows: usize, cols: usize) -> Result<(), FormatError> {
        element_count(rows, cols)?;
        match self.block {
            PER_ROW | PER_TENSOR | 1 => Ok(()),
            b if cols.is_multiple_of(b) => Ok(()),
            b => Err(FormatError::ShapeNotDivisible { format: self.id, cols, block: b }),
        }
    }

    /// Exact bytes the packed format stores (codes + scales + zeros).
    pub fn stored_bytes(&self, rows: usize, cols: usize) -> Result<u64, FormatError> {
        self.check_shape(rows, cols)?;
        let overflow = FormatError::ShapeOverflow { rows, cols };
        let (r, c) =
            (u64::try_from(rows).map_err(|_| overflow.clone())?, u64::try_from(cols).map_err(|_| overflow.clone())?);
        self.codec.stored_bytes(r, c).ok_or(overflow)
    }

    /// The codec's elementwise arithmetic, for backends that re-implement it (see [`GroupArith`]).
    pub fn group_arith(&self) -> Option<GroupArith> {
        self.codec.group_arith()
    }

    /// The integer grid of `int8_channel` and the `int4_*` formats: the group primitives a solver
    /// (GPTQ) uses to choose codes itself while the format keeps its exact arithmetic.
    pub fn int_grid(&self) -> Option<&IntGrid> {
        self.codec.int_grid()
    }

    /// Quantizes with per-column importance weights (a llama.cpp imatrix entry: mean x² of each
    /// input column), byte-identical to ggml's `quantize_<type>(…, imatrix)` for the types that
    /// use them (every ggml type but q8_0); the others quantize as without, as ggml's do.
    pub fn quantize_weighted(
        &self,
        w: &[f32],
        rows: usize,
        cols: usize,
        importance: &[f32],
    ) -> Result<QTensor, FormatError> {
        self.check_shape(rows, cols)?;
        if importance.len() != cols || importance.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(FormatError::TensorMismatch {
                format: self.id,
                reason: format!("{} importance weights (finite, ≥ 0) for rows of {cols}", importance.len()),
            });
        }
        self.validate(w, rows, cols, Parallelism::Rayon)?;
        match self.codec.quantize_weighted(self.id, w, rows, cols, importance, Parallelism::Rayon) {
            Some(r) => r,
            None => self.quantize(w, rows, cols),
        }
    }

    /// Whether [`Format::quantize_weighted`] uses the importance weights for this format.
    pub fn takes_importance(&self) -> bool {
        self.codec.takes_importance()
    }

    /// Quantizes row-major `w` of shape `[rows, cols]` (rows on the rayon pool).
    pub fn quantize(&self, w: &[f32], rows: usize, cols: usize) -> Result<QTensor, FormatError> {
        self.quantize_with(w, rows, cols, Parallelism::Rayon)
    }

    /// [`Format::quantize`] with an explicit execution mode.
    pub fn quantize_with(&self, w: &[f32], rows: usize, cols: usize, par: Parallelism) -> Result<QTensor, FormatError> {
        self.validate(w, rows, cols, par)?;
        self.codec.quantize(self.id, w, rows, cols, par)
    }

    /// [`Format::quantize`] plus the error of the codes against `w`. The ggml codecs decode each
    /// row right after encoding it, on the same thread, while it is in cache; the others decode the
    /// whole tensor afterwards. Either way the sums are merged in row order: the same result for
    /// any thread count.
    pub fn quantize_measured(&self, w: &[f32], rows: usize, cols: usize) -> Result<(QTensor, Sums), FormatError> {
        self.validate(w, rows, cols, Parallelism::Rayon)?;
        if let Some(r) = self.codec.quantize_measured(self.id, w, rows, cols, Parallelism::Rayon) {
            let (q, per_row) = r?;
            return Ok((q, per_row.into_iter().fold(Sums::default(), Sums::merge)));
        }
        let q = self.codec.quantize(self.id, w, rows, cols, Parallelism::Rayon)?;
        let decoded = self.dequantize(&q)?;
        let sums = Sums::of_par(w, &decoded);
        Ok((q, sums))
    }

    /// Decodes a tensor produced by this format's `quantize`.
    pub fn dequantize(&self, q: &QTensor) -> Result<Vec<f32>, FormatError> {
        self.dequantize_with(q, Parallelism::Rayon)
    }

    /// [`Format::dequantize`] with an explicit execution mode.
    pub fn dequantize_with(&self, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        self.check_shape(q.rows(), q.cols())?;
        self.codec.dequantize(self.id, q, par)
    }

    /// In place `w = dequantize(quantize(w))`, bit for bit, without
    /// tensor-sized temporaries.
    pub fn fake_quantize(&self, w: &mut [f32], rows: usize, cols: usize) -> Result<(), FormatError> {
        self.fake_quantize_with(w, rows, cols, Parallelism::Rayon)
    }

    /// [`Format::fake_quantize`] with an explicit execution mode.
    pub fn fake_quantize_with(
        &self,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<(), FormatError> {
        self.validate(w, rows, cols, par)?;
        self.codec.fake_quantize(self.id, w, rows, cols, par)
    }

    fn validate(&self, w: &[f32], rows: usize, cols: usize, par: Parallelism) -> Result<(), FormatError> {
        let n = element_count(rows, cols)?;
        if w.len() != n {
            return Err(FormatError::LengthMismatch { expected: n, actual: w.len() });
        }
        self.check_shape(rows, cols)?;
        if self.codec.checks_finite() {
            return Ok(());
        }
        // Branch-free scan per chunk (vectorizes); locate the culprit only on failure.
        const CHUNK: usize = 1 << 14;
        let finite = match par {
            Parallelism::Serial => crate::exec::all_finite(w),
            Parallelism::Rayon => w.par_chunks(CHUNK).all(crate::exec::all_finite),
        };
        if finite { Ok(()) } else { Err(non_finite_error(self.id, w)) }
    }
}

/// The error for `w` holding a NaN/Inf: its first such element.
pub(crate) fn non_finite_error(format: &'static str, w: &[f32]) -> FormatError {
    let index = w.iter().position(|x| !x.is_finite()).unwrap_or(0);
    FormatError::NonFinite { format, index, value: w.get(index).copied().unwrap_or(f32::NAN) }
}
