//! Built-in recipes. The TOML lives in assets/presets so users can read and copy it.

pub struct Preset {
    pub name: &'static str,
    pub toml: &'static str,
}

macro_rules! presets {
    ($($name:literal),* $(,)?) => {
        &[$(Preset {
            name: $name,
            toml: include_str!(concat!("../../../../assets/presets/", $name, ".toml")),
        }),*]
    };
}

pub static PRESETS: &[Preset] = presets![
    "w8",
    "w4-g128",
    "w4-g128-asym",
    "w4-g32",
    "gptq-w4-g128",
    "gptq-w4-g32",
    "awq-w4-g128",
    "awq-w4-g32",
    "fp8",
    "nf4",
    "gguf-q8_0",
    "gguf-q4_0",
    "gguf-q4_1",
    "gguf-q5_0",
    "gguf-q5_1",
    "gguf-q4_k_m",
    "gguf-q4_k_s",
    "gguf-q5_k_m",
    "gguf-q5_k_s",
    "gguf-q6_k",
    "gguf-q3_k_m",
    "gguf-q3_k_l",
    "gguf-q3_k_s",
    "sparse-2of4",
    "sparse-50",
    "wanda-2of4",
    "wanda-50",
    "sparsegpt-2of4",
    "sparsegpt-50",
    "ffn-slim-25",
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
