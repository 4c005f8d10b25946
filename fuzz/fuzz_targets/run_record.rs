#![no_main]
//! A run record of arbitrary bytes, loaded as `pareto report` loads it.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::scratch("run.json", data);
    if let Ok(records) = pareto_report::RunRecord::load(&path).map(|r| vec![r]) {
        let _ = pareto_report::compare(&records);
    }
});
