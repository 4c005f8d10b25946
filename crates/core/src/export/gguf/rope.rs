//! config.json's RoPE scaling (`rope_scaling`, or `rope_parameters` in newer transformers) → GGUF,
//! as llama.cpp's converter writes it (conversion/base.py `set_gguf_parameters`, conversion/llama.py
//! `generate_extra_tensors`) and src/llama-model.cpp reads it:
//! - `linear`: `<arch>.rope.scaling.type` = "linear" and the factor;
//! - `yarn`: type, factor, original context length and the optional YaRN parameters;
//! - `llama3` (Llama 3.1+): no keys, but a `rope_freqs.weight` F32 tensor of one frequency divisor
//!   per rotary pair, which llama.cpp's llama graph applies when present;
//! - `default` / absent: nothing. Other types are refused by name.

use serde_json::Value;

use super::metadata::MetaValue;

/// What the scaling adds to the file.
#[derive(Debug, Default, PartialEq)]
pub struct RopeScaling {
    pub kv: Vec<(String, MetaValue)>,
    /// `rope_freqs.weight`, `head_dim / 2` values.
    pub freqs: Option<Vec<f32>>,
}

/// A parsed RoPE scaling.
enum Scaling {
    None,
    Linear(f64),
    /// Factor, original context length and the optional YaRN parameters (GGUF key suffix, value).
    Yarn(f64, f64, Vec<(&'static str, f64)>),
    /// Per-pair frequency divisors.
    Llama3(Vec<f32>),
}

fn parse(config: &Value, head_dim: usize, rope_theta: f64) -> Result<Scaling, String> {
    let params = match config.get("rope_parameters").or_else(|| config.get("rope_scaling")) {
        None | Some(Value::Null) => return Ok(Scaling::None),
        Some(p) => p,
    };
    let params = params.get("full_attention").unwrap_or(params);
    let kind = params.get("rope_type").or_else(|| params.get("type")).and_then(Value::as_str).unwrap_or("default");
    let num = |key: &str| params.get(key).and_then(Value::as_f64);
    let factor = num("factor");
    Ok(match kind.to_ascii_lowercase().as_str() {
        "default" => Scaling::None,
        "linear" => Scaling::Linear(factor.ok_or("linear RoPE scaling without a factor")?),
        "yarn" => {
            let f = factor.ok_or("YaRN RoPE scaling without a factor")?;
            let orig = num("original_max_position_embeddings")
                .or_else(|| config.get("original_max_position_embeddings").and_then(Value::as_f64))
                .ok_or("YaRN RoPE scaling without original_max_position_embeddings")?;
            let optional = [
                ("extrapolation_factor", "yarn_ext_factor"),
                ("attention_factor", "yarn_attn_factor"),
                ("attn_factor", "yarn_attn_factor"),
                ("beta_fast", "yarn_beta_fast"),
                ("beta_slow", "yarn_beta_slow"),
            ];
            let mut extras: Vec<(&'static str, f64)> = Vec::new();
            for (hf, gguf) in optional {
                if let Some(v) = num(hf)
                    && !extras.iter().any(|(k, _)| *k == gguf)
                {
                    extras.push((gguf, v));
                }
            }
            Scaling::Yarn(f, orig, extras)
        }
        "llama3" => Scaling::Llama3(llama3_freqs(
            head_dim,
            num("rope_theta").unwrap_or(rope_theta),
            factor.unwrap_or(8.0),
            num("low_freq_factor").unwrap_or(1.0),
            num("high_freq_factor").unwrap_or(4.0),
            num("original_max_position_embeddings").unwrap_or(8192.0),
        )),
        other => {
            return Err(format!(
                "config.json's RoPE scaling type {other:?} is not converted (supported: linear, yarn, llama3)"
            ));
        }
    })
}

/// The scaling of `config` for rotary dimension `head_dim`; `Err` names what cannot be converted.
pub fn convert(config: &Value, arch: &str, head_dim: usize, rope_theta: f64) -> Result<RopeScaling, String> {
    let key = |k: &str| format!("{arch}.rope.scaling.{k}");
    let mut out = RopeScaling::default();
    match parse(config, head_dim, rope_theta)? {
        Scaling::None => {}
        Scaling::Linear(f) => {
            out.kv.push((key("type"), MetaValue::String("linear".into())));
            out.kv.push((key("factor"), MetaValue::F32(f as f32)));
        }
        Scaling::Yarn(f, orig, extras) => {
            out.kv.push((key("type"), MetaValue::String("yarn".into())));
            out.kv.push((key("factor"), MetaValue::F32(f as f32)));
            out.kv.push((key("original_context_length"), MetaValue::U32(orig as u32)));
            out.kv.extend(extras.into_iter().map(|(k, v)| (key(k), MetaValue::F32(v as f32))));
        }
        Scaling::Llama3(divisors) => out.freqs = Some(divisors),
    }
    Ok(out)
}

/// What a forward pass divides each rotary pair's frequency by (`None`: unscaled): the factor for
/// linear scaling (position interpolation), the llama3 divisors. YaRN also rescales the attention
/// logits and is refused here.
pub fn frequency_divisors(config: &Value, head_dim: usize, rope_theta: f64) -> Result<Option<Vec<f32>>, String> {
    match parse(config, head_dim, rope_theta)? {
        Scaling::None => Ok(None),
        Scaling::Linear(f) => Ok(Some(vec![f as f32; head_dim / 2])),
        Scaling::Llama3(divisors) => Ok(Some(divisors)),
        Scaling::Yarn(..) => Err("YaRN RoPE scaling is not implemented by this forward pass".into()),
    }
}

/// Llama 3's per-pair frequency divisors: 1 for wavelengths shorter than the original context over
/// `high`, `factor` for those longer than it over `low`, a smooth blend between. Computed in f32,
/// operation for operation as the converter does with torch float32 tensors.
pub fn llama3_freqs(dim: usize, base: f64, factor: f64, low: f64, high: f64, orig_ctx: f64) -> Vec<f32> {
    let (factor, low, high, orig) = (factor as f32, low as f32, high as f32, orig_ctx as f32);
    let (low_wavelen, high_wavelen) = (orig_ctx / low as f64, orig_ctx / high as f64);
    (0..dim / 2)
        .map(|i| {
            let freq = 1.0 / (base as f32).powf((2 * i) as f32 / dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if f64::from(wavelen) < high_wavelen {
                1.0
            } else if f64::from(wavelen) > low_wavelen {
                factor
            } else {
                let smooth = (orig / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn llama3_divisors_run_from_one_to_the_factor() {
        // Llama 3.1 8B: head_dim 128, theta 500000, factor 8, low 1, high 4, original context 8192.
        let cfg = json!({"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let r = convert(&cfg, "llama", 128, 500_000.0).unwrap();
        assert!(r.kv.is_empty());
        let f = r.freqs.unwrap();
        assert_eq!(f.len(), 64);
        // Wavelength 2π·θ^(i/64) crosses 8192/4 = 2048 at i ≈ 28.2 and 8192 at i ≈ 35.0.
        assert!(f[..29].iter().all(|&x| x == 1.0), "{f:?}");
        assert!(f[35..].iter().all(|&x| x == 8.0), "{f:?}");
        assert!(f[29..35].windows(2).all(|w| w[0] < w[1]) && f[29] > 1.0 && f[34] < 8.0, "{f:?}");
    }

    #[test]
    fn linear_and_yarn_are_keys_and_unknown_types_refused() {
        let lin = convert(&json!({"rope_scaling": {"type": "linear", "factor": 4.0}}), "llama", 64, 1e4).unwrap();
        assert_eq!(lin.kv[0], ("llama.rope.scaling.type".into(), MetaValue::String("linear".into())));
        assert_eq!(lin.kv[1], ("llama.rope.scaling.factor".into(), MetaValue::F32(4.0)));
        let yarn = json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768,
            "beta_fast": 32.0}});
        let y = convert(&yarn, "llama", 64, 1e4).unwrap();
        assert!(y.kv.contains(&("llama.rope.scaling.original_context_length".into(), MetaValue::U32(32768))));
        assert!(y.kv.contains(&("llama.rope.scaling.yarn_beta_fast".into(), MetaValue::F32(32.0))));
        assert!(convert(&json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}), "llama", 64, 1e4).is_err());
        let err =
            convert(&json!({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}), "llama", 64, 1e4).unwrap_err();
        assert!(err.contains("dynamic"), "{err}");
        assert_eq!(convert(&json!({"rope_scaling": null}), "llama", 64, 1e4).unwrap(), RopeScaling::default());
    }
}
