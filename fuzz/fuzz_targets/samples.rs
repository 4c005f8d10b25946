#![no_main]
//! A sample file of arbitrary bytes, read by the strict readers `pareto eval` and calibration use:
//! the first byte picks the kind (.txt, .tsv, .csv, .jsonl), the rest is the file.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    let ext = ["txt", "tsv", "csv", "jsonl"][usize::from(kind) % 4];
    let path = common::scratch(&format!("samples.{ext}"), body);
    let _ = pareto_eval::samples::load_samples(&path, &pareto_eval::samples::SampleOptions::default());
});
