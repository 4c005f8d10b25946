//! Pareto's ggml decoders against gguf-py's `gguf.quants.dequantize` (the reference llama.cpp's
//! Python tools use): random blocks of every decodable type, with finite f16 scales, must give
//! bit-identical f32 values. The fixture is written by scripts/gen-dequant-fixture.py.
#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};

#[test]
fn dequantize_matches_gguf_py() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ggml_dequant.json")).unwrap();
    let fixture: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture.len(), 10, "one entry per decodable type");
    for (name, entry) in &fixture {
        let ty = entry["ggml_type"].as_u64().unwrap() as u32;
        let blocks = hex::decode(entry["blocks_hex"].as_str().unwrap()).unwrap();
        assert!(pareto_formats::can_dequantize_ggml(ty), "{name}");
        let values = pareto_formats::dequantize_ggml(ty, &blocks).unwrap();
        let first: Vec<f32> =
            entry["first_values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(&values[..4], &first[..], "{name}: first values");
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), entry["dequantized_sha256"].as_str().unwrap(), "{name}");
        // A partial block is a named error, not a panic.
        assert!(pareto_formats::dequantize_ggml(ty, &blocks[..blocks.len() - 1]).is_err(), "{name}");
    }
    assert!(pareto_formats::dequantize_ggml(16, &[0u8; 66]).is_err(), "IQ2_XXS is not decodable");
}
