//! Byte equality with llama.cpp's reference encoders on the golden inputs
//! (tests/golden/README.md says how the .bin files were made).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{G_COLS, G_ROWS, fnv1a, golden_inputs};
use pareto_formats::{QTensor, lookup};

/// FNV-1a of the C generator's golden_input.f32: proves both generators agree.
const GOLDEN_INPUT_FNV: u64 = 0x57eb_2e9c_e38c_0144;

fn golden(id: &str) -> &'static [u8] {
    match id {
        "q8_0" => include_bytes!("golden/q8_0.bin"),
        "q4_0" => include_bytes!("golden/q4_0.bin"),
        "q5_0" => include_bytes!("golden/q5_0.bin"),
        "q4_k" => include_bytes!("golden/q4_k.bin"),
        "q6_k" => include_bytes!("golden/q6_k.bin"),
        "q4_1" => include_bytes!("golden/q4_1.bin"),
        "q5_1" => include_bytes!("golden/q5_1.bin"),
        "q3_k" => include_bytes!("golden/q3_k.bin"),
        "q5_k" => include_bytes!("golden/q5_k.bin"),
        _ => unreachable!("no golden file for {id}"),
    }
}

#[test]
fn golden_inputs_match_the_c_generator() {
    let x = golden_inputs();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(fnv1a(&bytes), GOLDEN_INPUT_FNV);
}

#[test]
fn ggml_encoders_match_llama_cpp_bytes() {
    let x = golden_inputs();
    for id in ["q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "q4_1", "q5_1", "q3_k", "q5_k"] {
        let f = lookup(id).expect("registered");
        let q = f.quantize(&x, G_ROWS, G_COLS).expect("quantize");
        let QTensor::Blocks { bytes, ggml_type, .. } = &q else {
            panic!("{id}: not a Blocks tensor");
        };
        assert_eq!(Some(*ggml_type), f.ggml_type);
        let want = golden(id);
        assert_eq!(bytes.len(), want.len(), "{id}: length");
        let row = want.len() / G_ROWS;
        for r in 0..G_ROWS {
            assert_eq!(&bytes[r * row..(r + 1) * row], &want[r * row..(r + 1) * row], "{id}: golden row {r} differs");
        }
    }
}

/// ggml's `quantize_q4_0` / `quantize_q5_0` / `quantize_q4_K` / `quantize_q6_K` with importance weights (llama-quantize --imatrix):
/// byte equality on the golden input (golden/README.md, "Importance-weighted encoders").
#[test]
fn importance_weighted_encoders_match_llama_cpp_bytes() {
    let x = golden_inputs();
    let imp: Vec<f32> = (0..G_COLS).map(|j| ((j * 37) % 101) as f32 / 16.0).collect();
    for (id, want) in [
        ("q4_0", &include_bytes!("golden/q4_0_imatrix.bin")[..]),
        ("q5_0", &include_bytes!("golden/q5_0_imatrix.bin")[..]),
        ("q4_k", &include_bytes!("golden/q4_k_imatrix.bin")[..]),
        ("q6_k", &include_bytes!("golden/q6_k_imatrix.bin")[..]),
        ("q4_1", &include_bytes!("golden/q4_1_imatrix.bin")[..]),
        ("q5_1", &include_bytes!("golden/q5_1_imatrix.bin")[..]),
        ("q3_k", &include_bytes!("golden/q3_k_imatrix.bin")[..]),
        ("q5_k", &include_bytes!("golden/q5_k_imatrix.bin")[..]),
    ] {
        let f = lookup(id).expect("registered");
        assert!(f.takes_importance(), "{id}");
        let q = f.quantize_weighted(&x, G_ROWS, G_COLS, &imp).expect("quantize");
        let QTensor::Blocks { bytes, .. } = &q else { panic!("{id}: not a Blocks tensor") };
        if let Some(i) = bytes.iter().zip(want).position(|(a, b)| a != b) {
            panic!("{id}: first differing byte {i} (row {})", i / (bytes.len() / G_ROWS));
        }
        assert_eq!(bytes.len(), want.len(), "{id}");
        // The weights matter: plain quantization gives other bytes.
        assert_ne!(&f.quantize(&x, G_ROWS, G_COLS).expect("quantize"), &q, "{id}");
    }
    // q8_0 ignores them, as ggml's quantize_q8_0 does.
    let q8 = lookup("q8_0").expect("registered");
    assert!(!q8.takes_importance());
    assert_eq!(q8.quantize_weighted(&x, G_ROWS, G_COLS, &imp).unwrap(), q8.quantize(&x, G_ROWS, G_COLS).unwrap());
}

/// Writes the golden input as little-endian f32 to `$PARETO_GOLDEN_INPUT_OUT`, for the C generators
/// in golden/ (run by hand: `PARETO_GOLDEN_INPUT_OUT=/tmp/golden_input.f32 cargo test --release -p
/// pareto-formats --test golden -- --ignored`).
#[test]
#[ignore = "writes a file for regenerating the golden blocks"]
fn write_golden_input() {
    let path = std::env::var("PARETO_GOLDEN_INPUT_OUT").expect("PARETO_GOLDEN_INPUT_OUT names the output file");
    let bytes: Vec<u8> = golden_inputs().iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(fnv1a(&bytes), GOLDEN_INPUT_FNV);
    std::fs::write(path, bytes).unwrap();
}
