//! Workspace integration tests: the engine end to end on the real bundled models, sharded and
//! generated fixtures, and the bad-input corpus. (CLI process tests live in crates/cli/tests,
//! where Cargo exposes the built binary.)

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod allocation;
mod calibrated;
mod common;
mod compress_bad_input;
mod compress_real;
mod device_quant;
mod eval_decoders;
mod export_formats;
mod gemma2;
mod gguf_bert;
mod gguf_llama3;
mod phi3;
mod sweep_report;
