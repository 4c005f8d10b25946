#![no_main]
//! A recipe of arbitrary text: parsed and validated, then written back.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(recipe) = pareto_core::Recipe::from_toml(text, "fuzz")
    {
        let _ = recipe.to_toml();
    }
});
