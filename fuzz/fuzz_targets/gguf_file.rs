#![no_main]
//! A GGUF file of arbitrary bytes: header, metadata and tensor table parsed, tensor data read.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::scratch("model.gguf", data);
    if let Ok(file) = pareto_core::export::gguf::GgufFile::open(&path) {
        for t in file.tensors.iter().take(4) {
            let _ = file.read_raw(t);
        }
    }
});
