#![no_main]
//! A GGUF file of arbitrary bytes: header, metadata and tensor table parsed, tensor data read and
//! dequantized, the header described, and the whole file converted to a Hugging Face folder (config,
//! tokenizer and tensors rebuilt) as `pareto convert` does.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use pareto_core::import::{TensorDtype, convert, describe};
    let path = common::scratch("model.gguf", data);
    if let Ok(file) = pareto_core::export::gguf::GgufFile::open(&path) {
        for t in file.tensors.iter().take(4) {
            let _ = file.read_raw(t);
            let _ = file.dequantize(t);
        }
        let _ = describe(&path);
        let out = path.with_file_name("converted");
        let _ = convert(&path, &out, TensorDtype::Exact, true, &pareto_core::job::JobContext::silent());
        let _ = std::fs::remove_dir_all(&out);
    }
});
