//! Writes a synthetic LLaMA-shaped model (random F16 weights, real config.json) for benchmarks:
//! `cargo run --release -p pareto-core --example synth_model -- <out-dir> [8b|1b|tiny]`.
//! Shapes follow Llama-3-8B (32 layers, hidden 4096, 32 heads / 8 KV heads, FFN 14336, vocab
//! 128256); `1b` follows TinyLlama-1.1B. Shards hold at most ~4.5 GiB like HF checkpoints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pareto_core::export::safetensors::{Entry, Layout, Writer};
use pareto_core::export::{OutputDir, SourcePaths, default_opener};
use pareto_core::store::DType;

struct Shape {
    layers: usize,
    hidden: usize,
    heads: usize,
    kv: usize,
    ffn: usize,
    vocab: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = PathBuf::from(args.get(1).ok_or("usage: synth_model <out-dir> [8b|1b|tiny]")?);
    let s = match args.get(2).map(String::as_str).unwrap_or("8b") {
        "8b" => Shape { layers: 32, hidden: 4096, heads: 32, kv: 8, ffn: 14336, vocab: 128256 },
        "1b" => Shape { layers: 22, hidden: 2048, heads: 32, kv: 4, ffn: 5632, vocab: 32000 },
        "tiny" => Shape { layers: 2, hidden: 256, heads: 4, kv: 2, ffn: 512, vocab: 1024 },
        other => return Err(format!("unknown size {other}").into()),
    };
    let hd = s.hidden / s.heads;
    let mut tensors: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![s.vocab, s.hidden])];
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        tensors.push((format!("{p}.input_layernorm.weight"), vec![s.hidden]));
        tensors.push((format!("{p}.self_attn.q_proj.weight"), vec![s.heads * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.k_proj.weight"), vec![s.kv * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.v_proj.weight"), vec![s.kv * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.o_proj.weight"), vec![s.hidden, s.heads * hd]));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![s.hidden]));
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![s.ffn, s.hidden]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![s.ffn, s.hidden]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![s.hidden, s.ffn]));
    }
    tensors.push(("model.norm.weight".into(), vec![s.hidden]));
    tensors.push(("lm_head.weight".into(), vec![s.vocab, s.hidden]));

    // Split into shards of at most ~4.5 GiB.
    let limit: u64 = 4_500 << 20;
    let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![Vec::new()];
    let mut size = 0u64;
    for t in tensors {
        let bytes = 2 * t.1.iter().product::<usize>() as u64;
        if size + bytes > limit && !shards.last().is_some_and(Vec::is_empty) {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(last) = shards.last_mut() {
            last.push(t);
        }
    }
    let n = shards.len();
    let mut dir = OutputDir::create(&out, &SourcePaths::none(), true, default_opener())?;
    let mut weight_map = BTreeMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut total = 0u64;
    for (i, shard) in shards.iter().enumerate() {
        let file =
            if n == 1 { "model.safetensors".to_string() } else { format!("model-{:05}-of-{n:05}.safetensors", i + 1) };
        let layout = Layout {
            entries: shard
                .iter()
                .map(|(name, shape)| Entry { name: name.clone(), dtype: DType::F16, shape: shape.clone() })
                .collect(),
            metadata: BTreeMap::from([("format".to_string(), "pt".to_string())]),
        };
        let mut w = Writer::new(dir.create_file(&file)?, layout)?;
        for (name, shape) in shard {
            let numel: usize = shape.iter().product();
            let norm = name.contains("norm");
            let mut left = numel;
            let mut buf = Vec::with_capacity(2 << 20);
            while left > 0 {
                let k = left.min(1 << 20);
                buf.clear();
                for _ in 0..k {
                    // xorshift64*, then a sum of 4 uniforms ≈ normal; weights ~ N(0, 0.02²).
                    let mut acc = 0f32;
                    for _ in 0..4 {
                        rng ^= rng >> 12;
                        rng ^= rng << 25;
                        rng ^= rng >> 27;
                        acc += (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    }
                    let v = if norm { 1.0 + 0.05 * acc } else { 0.0346 * acc };
                    buf.extend_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
                }
                w.write_tensor_chunk(name, &buf)?;
                left -= k;
            }
            w.end_tensor(name)?;
            weight_map.insert(name.clone(), file.clone());
            total += 2 * numel as u64;
        }
        dir.record(w.finish()?);
        eprintln!("wrote {file}");
    }
    if n > 1 {
        let index = serde_json::json!({ "metadata": { "total_size": total }, "weight_map": weight_map });
        dir.write_file("model.safetensors.index.json", serde_json::to_string_pretty(&index)?.as_bytes())?;
    }
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s.hidden,
        "intermediate_size": s.ffn, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv, "vocab_size": s.vocab, "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "float16"
    });
    dir.write_file("config.json", serde_json::to_string_pretty(&config)?.as_bytes())?;
    // Marks the folder as Pareto's, so a later run may replace it (`--force` rules).
    let manifest = serde_json::json!({ "tool": "pareto", "format": "synthetic-model", "files": dir.files() });
    dir.write_file(pareto_core::export::manifest::MANIFEST_NAME, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    dir.commit()?;
    eprintln!("{} ({} bytes of weights)", out.display(), total);
    Ok(())
}
