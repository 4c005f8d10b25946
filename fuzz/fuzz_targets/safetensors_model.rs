#![no_main]
//! A safetensors file of arbitrary bytes, opened as a model: a typed error or a model, never a panic.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::scratch("model.safetensors", data);
    if let Ok(model) = pareto_core::Model::open(&path) {
        let _ = model.summary();
        for t in model.tensors().iter().take(4) {
            let _ = model.read_f32(t);
        }
    }
});
