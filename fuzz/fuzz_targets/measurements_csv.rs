#![no_main]
//! A measurements CSV of arbitrary text (what `pareto project --fidelity FILE` reads), parsed and,
//! when it parses, scored by the committed fit.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(rows) = pareto_projection::fidelity::parse(text)
        && let Some(fit) = pareto_projection::fidelity::committed()
    {
        for m in rows.iter().take(16) {
            let _ = fit.fitted.predict(m);
        }
    }
});
