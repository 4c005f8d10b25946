//! Properties every registered format must satisfy, looping over `registry()`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{gaussian, rel_rms};
use pareto_formats::{Format, FormatError, Kind, PER_ROW, PER_TENSOR, Parallelism, lookup, registry};

/// A column count every format accepts (multiple of 256 and 128).
const COLS: usize = 512;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn ids_are_unique_and_lookup_finds_each() {
    let mut ids: Vec<_> = registry().iter().map(|f| f.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), registry().len());
    for f in registry() {
        assert_eq!(lookup(f.id).expect("lookup").id, f.id);
    }
    for id in [
        "f32",
        "f16",
        "bf16",
        "int8_channel",
        "int4_g32_sym",
        "int4_g64_sym",
        "int4_g128_sym",
        "int4_g32_asym",
        "int4_g64_asym",
        "int4_g128_asym",
        "fp8_e4m3",
        "fp8_e4m3_tensor",
        "nf4",
        "q8_0",
        "q4_0",
        "q5_0",
        "q4_k",
        "q6_k",
    ] {
        assert!(lookup(id).is_ok(), "{id} missing");
    }
}

#[test]
fn unknown_id_lists_valid_ids() {
    match lookup("q3_xyz") {
        Err(FormatError::UnknownFormat { id, valid }) => {
            assert_eq!(id, "q3_xyz");
            assert!(valid.split(", ").any(|v| v == "q4_k"));
            assert_eq!(valid.split(", ").count(), registry().len());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fallbacks_and_ggml_types() {
    for f in registry() {
        if let Some(fb) = f.fallback {
            let fb = lookup(fb).expect("fallback registered");
            assert!(fb.block < f.block || fb.block == 1, "{} -> {}", f.id, fb.id);
        }
        assert_eq!(f.ggml_type.is_some(), matches!(f.kind, Kind::GgmlBlock | Kind::Float));
    }
    assert_eq!(lookup("q4_k").unwrap().fallback, Some("q5_0"));
    assert_eq!(lookup("q6_k").unwrap().fallback, Some("q8_0"));
    for id in ["q8_0", "q4_0", "q5_0"] {
        assert_eq!(lookup(id).unwrap().fallback, Some("f16"));
    }
}

#[test]
fn round_trip_error_within_tolerance_on_gaussian_data() {
    let (rows, cols) = (64, 4096);
    let w = gaussian(rows, cols, 1);
    for f in registry() {
        let q = f.quantize(&w, rows, cols).expect(f.id);
        let d = f.dequantize(&q).expect(f.id);
        let err = rel_rms(&d, &w);
        eprintln!("{:>16}: rel rms {err:.5} (tolerance {})", f.id, f.tolerance);
        assert!(err <= f.tolerance, "{}: {err} > {}", f.id, f.tolerance);
        if f.tolerance > 0.0 {
            assert!(err > f.tolerance / 4.0, "{}: tolerance {} is loose (err {err})", f.id, f.tolerance);
        }
    }
}

#[test]
fn fake_quantize_equals_dequantize_of_quantize() {
    let (rows, cols) = (8, COLS);
    let mut w = gaussian(rows, cols, 2);
    w[3] = 40.0; // an outlier in the first group
    for f in registry() {
        let d = f.dequantize(&f.quantize(&w, rows, cols).unwrap()).unwrap();
        let mut fk = w.clone();
        f.fake_quantize(&mut fk, rows, cols).unwrap();
        assert_eq!(bits(&fk), bits(&d), "{}", f.id);
    }
}

#[test]
fn parallel_equals_serial() {
    let (rows, cols) = (37, COLS);
    let w = gaussian(rows, cols, 3);
    for f in registry() {
        let s = f.quantize_with(&w, rows, cols, Parallelism::Serial).unwrap();
        let p = f.quantize_with(&w, rows, cols, Parallelism::Rayon).unwrap();
        assert_eq!(s, p, "{}", f.id);
        let ds = f.dequantize_with(&s, Parallelism::Serial).unwrap();
        let dp = f.dequantize_with(&p, Parallelism::Rayon).unwrap();
        assert_eq!(bits(&ds), bits(&dp), "{}", f.id);
        let (mut fs, mut fp) = (w.clone(), w.clone());
        f.fake_quantize_with(&mut fs, rows, cols, Parallelism::Serial).unwrap();
        f.fake_quantize_with(&mut fp, rows, cols, Parallelism::Rayon).unwrap();
        assert_eq!(bits(&fs), bits(&fp), "{}", f.id);
    }
}

#[test]
fn rows_are_independent() {
    // Quantizing rows one at a time gives the same decoded values (per-tensor
    // formats excepted: their scale is a whole-tensor property).
    let (rows, cols) = (5, COLS);
    let w = gaussian(rows, cols, 4);
    for f in registry().iter().filter(|f| f.block != PER_TENSOR) {
        let all = f.dequantize(&f.quantize(&w, rows, cols).unwrap()).unwrap();
        for r in 0..rows {
            let row = &w[r * cols..(r + 1) * cols];
            let one = f.dequantize(&f.quantize(row, 1, cols).unwrap()).unwrap();
            assert_eq!(bits(&one), bits(&all[r * cols..(r + 1) * cols]), "{} row {r}", f.id);
        }
    }
}

fn expected_overhead_bits(f: &Format, rows: usize) -> f64 {
    match (f.block, f.kind) {
        (PER_ROW, Kind::IntGrid) => 16.0 * rows as f64,
        (PER_ROW, _) => 32.0 * rows as f64,
        (PER_TENSOR, _) => 32.0,
        _ => 0.0,
    }
}

#[test]
fn stored_bytes_match_bits_per_weight() {
    for f in registry() {
        for (rows, cols) in [(1, 1024), (3, 2048), (16, 4096), (0, 512)] {
            let b = f.stored_bytes(rows, cols).unwrap();
            let want = f.bits_per_weight * (rows * cols) as f64 + expected_overhead_bits(f, rows);
            assert_eq!(b as f64 * 8.0, want, "{} [{rows}, {cols}]", f.id);
        }
    }
    // ggml block bytes are the stored bytes, exactly.
    for f in registry().iter().filter(|f| f.kind == Kind::GgmlBlock) {
        let w = gaussian(3, 1024, 5);
        let pareto_formats::QTensor::Blocks { bytes, .. } = f.quantize(&w, 3, 1024).unwrap() else {
            panic!("{}", f.id)
        };
        assert_eq!(bytes.len() as u64, f.stored_bytes(3, 1024).unwrap());
    }
}

#[test]
fn stored_bytes_overflow_is_an_error() {
    for f in registry() {
        let r = f.stored_bytes(usize::MAX / 2, 1024);
        assert!(matches!(r, Err(FormatError::ShapeOverflow { .. })), "{}: {r:?}", f.id);
    }
}

#[test]
fn shape_checks() {
    for f in registry() {
        assert!(f.check_shape(4, COLS).is_ok(), "{}", f.id);
        match f.block {
            PER_ROW | PER_TENSOR | 1 => assert!(f.check_shape(3, 17).is_ok(), "{}", f.id),
            b => {
                let cols = b + 16;
                match f.check_shape(3, cols) {
                    Err(FormatError::ShapeNotDivisible { format, cols: c, block }) => {
                        assert_eq!((format, c, block), (f.id, cols, b));
                    }
                    other => panic!("{}: {other:?}", f.id),
                }
                let w = vec![0.5; 3 * cols];
                assert!(f.quantize(&w, 3, cols).is_err(), "{}", f.id);
                assert!(f.fake_quantize(&mut w.clone(), 3, cols).is_err(), "{}", f.id);
                assert!(f.stored_bytes(3, cols).is_err(), "{}", f.id);
            }
        }
        assert!(matches!(f.check_shape(usize::MAX, 2), Err(FormatError::ShapeOverflow { .. })));
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    for f in registry() {
        let w = vec![0.25f32; 2 * COLS];
        assert!(matches!(
            f.quantize(&w[1..], 2, COLS),
            Err(FormatError::LengthMismatch { expected, actual }) if expected == 2 * COLS && actual == 2 * COLS - 1
        ));
        assert!(matches!(f.quantize(&w, usize::MAX, 2), Err(FormatError::ShapeOverflow { .. })));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut b = w.clone();
            b[700] = bad;
            match f.quantize(&b, 2, COLS) {
                Err(FormatError::NonFinite { format, index, .. }) => assert_eq!((format, index), (f.id, 700)),
                other => panic!("{}: {other:?}", f.id),
            }
            let mut c = b.clone();
            assert!(f.fake_quantize(&mut c, 2, COLS).is_err());
            assert_eq!(bits(&c), bits(&b), "{}: input modified on error", f.id);
        }
    }
}

#[test]
fn wrong_tensor_is_rejected_not_a_panic() {
    let w = gaussian(2, COLS, 6);
    for f in registry() {
        for g in registry() {
            let q = g.quantize(&w, 2, COLS).unwrap();
            let r = f.dequantize(&q);
            // Formats sharing a representation (e.g. int4 groups) may decode each
            // other's tensors only if the layout matches exactly.
            if r.is_ok() {
                assert!(
                    f.id == g.id || (f.kind == g.kind && f.block == g.block && f.kind != Kind::GgmlBlock),
                    "{} decoded a {} tensor",
                    f.id,
                    g.id
                );
            }
        }
    }
    // Truncated payloads.
    let f = lookup("q4_k").unwrap();
    if let pareto_formats::QTensor::Blocks { rows, cols, ggml_type, mut bytes } = f.quantize(&w, 2, COLS).unwrap() {
        bytes.pop();
        let q = pareto_formats::QTensor::Blocks { rows, cols, ggml_type, bytes };
        assert!(matches!(f.dequantize(&q), Err(FormatError::TensorMismatch { .. })));
    }
    let f = lookup("int4_g32_asym").unwrap();
    if let pareto_formats::QTensor::Int { rows, cols, bits, group, codes, scales, .. } =
        f.quantize(&w, 2, COLS).unwrap()
    {
        let q = pareto_formats::QTensor::Int { rows, cols, bits, group, codes, scales, zeros: None };
        assert!(matches!(f.dequantize(&q), Err(FormatError::TensorMismatch { .. })));
    }
}

#[test]
fn zero_rows_and_zero_weights() {
    for f in registry() {
        let q = f.quantize(&[], 0, COLS).unwrap();
        assert_eq!((q.rows(), q.cols()), (0, COLS));
        assert!(f.dequantize(&q).unwrap().is_empty());
        f.fake_quantize(&mut [], 0, COLS).unwrap();

        let w = vec![0.0f32; 3 * COLS];
        let d = f.dequantize(&f.quantize(&w, 3, COLS).unwrap()).unwrap();
        assert!(d.iter().all(|&x| x == 0.0), "{}: zeros not preserved", f.id);
    }
    // Per-row / per-weight formats also accept empty rows.
    for f in registry().iter().filter(|f| matches!(f.block, PER_ROW | PER_TENSOR | 1)) {
        let q = f.quantize(&[], 4, 0).unwrap();
        assert!(f.dequantize(&q).unwrap().is_empty(), "{}", f.id);
    }
}

#[test]
fn constant_rows_round_trip_closely() {
    for f in registry() {
        for c in [1.0f32, -0.3, 7.25, 1e-3] {
            let w = vec![c; 2 * COLS];
            let d = f.dequantize(&f.quantize(&w, 2, COLS).unwrap()).unwrap();
            let err = rel_rms(&d, &w);
            // Symmetric int4 clips +amax to 7/7.5 of itself (compressed-tensors'
            // grid), hence tolerance rather than ~0.
            assert!(err <= f.tolerance.max(1e-7), "{} const {c}: {err}", f.id);
        }
    }
}

#[test]
fn signed_zero_and_subnormals_do_not_break_anything() {
    let mut w = gaussian(2, COLS, 7);
    for (i, v) in w.iter_mut().enumerate() {
        *v = match i % 3 {
            0 => -0.0,
            1 => *v * 1e-39,
            _ => *v * 1e-42,
        };
    }
    for f in registry() {
        let d = f.dequantize(&f.quantize(&w, 2, COLS).unwrap()).unwrap();
        assert!(d.iter().all(|x| x.is_finite()), "{}", f.id);
        assert!(rel_rms(&d, &w) <= 1.0 + 1e-6, "{}", f.id);
    }
}

#[test]
fn huge_values_overflowing_f16_scales_are_errors() {
    let mut w = vec![0.5f32; COLS];
    w[9] = 3e9;
    // The ggml types too: their reference encoders write an Inf block scale without a word.
    for id in ["f16", "int8_channel", "int4_g32_sym", "int4_g128_asym", "q8_0", "q4_0", "q5_0", "q4_k", "q6_k"] {
        let f = lookup(id).unwrap();
        match f.quantize(&w, 1, COLS) {
            Err(FormatError::Overflow { format, index, value }) => {
                assert_eq!((format, index, value), (id, 9, 3e9));
            }
            other => panic!("{id}: {other:?}"),
        }
        let mut c = w.clone();
        assert!(matches!(f.fake_quantize(&mut c, 1, COLS), Err(FormatError::Overflow { index: 9, .. })));
        assert_eq!(bits(&c), bits(&w), "{id}: an error leaves the weights unchanged");
    }
    // f32-scaled formats take it.
    for id in ["bf16", "fp8_e4m3", "fp8_e4m3_tensor", "nf4"] {
        assert!(lookup(id).unwrap().quantize(&w, 1, COLS).is_ok(), "{id}");
    }
}

/// Decoding a tensor a few rows at a time (`QTensor::row_range`) gives exactly the whole decode,
/// for every format, per-tensor scales included.
#[test]
fn row_ranges_decode_like_the_whole_tensor() {
    let (rows, cols) = (7, 256);
    let w = gaussian(rows, cols, 11);
    for f in registry() {
        let q = f.quantize(&w, rows, cols).unwrap();
        let whole = bits(&f.dequantize(&q).unwrap());
        let mut pieces = Vec::new();
        for first in (0..rows).step_by(3) {
            let part = q.row_range(first, 3.min(rows - first)).unwrap();
            pieces.extend(f.dequantize(&part).unwrap());
        }
        assert_eq!(bits(&pieces), whole, "{}", f.id);
        assert!(q.row_range(5, 3).is_none(), "{}: past the last row", f.id);
    }
}
