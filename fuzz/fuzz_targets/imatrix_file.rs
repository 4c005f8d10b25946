#![no_main]
//! An importance matrix of arbitrary bytes, as GGUF or llama.cpp's legacy .dat (first byte picks).
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let name = if kind % 2 == 0 { "imatrix.gguf" } else { "imatrix.dat" };
    let path = common::scratch(name, body);
    if let Ok(m) = pareto_core::export::gguf::imatrix::Imatrix::read(&path) {
        let _ = (m.to_gguf(), m.to_dat());
    }
});
