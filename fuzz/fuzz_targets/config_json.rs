#![no_main]
//! A config.json of arbitrary bytes, interpreted and range-checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = pareto_core::store::ModelConfig::from_json(std::path::Path::new("config.json"), value);
    }
});
