//! `pareto inspect`: what a model is made of, from its headers alone.

use std::path::PathBuf;

use pareto_core::Model;

use crate::output;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A model folder (single or sharded safetensors), a .safetensors file or a GGUF.
    pub path: PathBuf,
    /// Rows of the per-tensor table to print (all with --json).
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
}

pub fn run(args: &InspectArgs, json: bool) -> anyhow::Result<()> {
    if pareto_core::import::is_gguf(&args.path) {
        return inspect_gguf(args, json);
    }
    let model = output::open_model(&args.path)?;
    let summary = model.summary();
    if json {
        return output::json(&serde_json::json!({ "summary": summary, "tensors": model.tensors() }));
    }
    // The result goes to stdout: `pareto inspect m | less` pages it.
    print_summary(&model, &summary);
    println!();
    let rows: Vec<Vec<String>> = model
        .tensors()
        .iter()
        .take(args.limit)
        .map(|t| {
            vec![
                t.name.clone(),
                t.dtype.as_str().to_string(),
                format!("{:?}", t.shape),
                output::bytes(t.nbytes),
                format!("{:?}", t.role).to_lowercase(),
            ]
        })
        .collect();
    output::table(&["tensor", "dtype", "shape", "bytes", "role"], &rows);
    if model.tensors().len() > args.limit {
        println!("… {} more tensors (--limit N, or --json for all)", model.tensors().len() - args.limit);
    }
    Ok(())
}

/// The model at a glance: what it is, how big, and where the bytes are (by dtype and by role).
fn print_summary(model: &Model, s: &pareto_core::store::ModelSummary) {
    let arch = s.architecture.as_deref().unwrap_or("unknown (no config.json)");
    println!("model:        {}", s.root.display());
    println!("architecture: {arch}");
    if let Some(c) = model.config() {
        let kv = if c.num_kv_heads == c.num_heads { String::new() } else { format!(", {} KV heads", c.num_kv_heads) };
        println!(
            "shape:        {} layers, hidden {}, {} heads{kv}, FFN {}, vocab {}",
            c.num_layers, c.hidden_size, c.num_heads, c.intermediate_size, c.vocab_size
        );
    }
    println!(
        "parameters:   {} ({} tensors, {} of weights in {} file(s), {} on disk)",
        human_count(s.parameters),
        s.tensor_count,
        output::bytes(s.bytes),
        s.shards.len(),
        output::bytes(s.file_bytes)
    );
    if let Some(evidence) = model.already_compressed() {
        println!("compressed:   yes — {evidence}");
    }
    println!();
    let by_dtype = s.by_dtype.iter().map(|d| (d.dtype.as_str(), d.tensors, d.elements, d.bytes));
    share_table("dtype", by_dtype, s.bytes);
    println!();
    share_table("role", s.by_role.iter().map(|r| (r.role.as_str(), r.tensors, r.elements, r.bytes)), s.bytes);
}

/// Where the bytes are, grouped by `key` (dtype or role): tensors, elements, bytes and share.
fn share_table<'a>(key: &str, groups: impl Iterator<Item = (&'a str, usize, u64, u64)>, total: u64) {
    let rows: Vec<Vec<String>> = groups
        .map(|(name, tensors, elements, bytes)| {
            let share = if total == 0 { 0.0 } else { bytes as f64 / total as f64 * 100.0 };
            vec![
                name.to_string(),
                tensors.to_string(),
                human_count(elements),
                output::bytes(bytes),
                format!("{share:.1}%"),
            ]
        })
        .collect();
    output::table(&[key, "tensors", "elements", "bytes", "share"], &rows);
}

/// 292,800 → "292.8K"; 8,030,261,248 → "8.03B" (three significant digits, as model cards write).
fn human_count(n: u64) -> String {
    let v = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}K", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", v / 1e6),
        _ => format!("{:.2}B", v / 1e9),
    }
}

/// A GGUF from its header alone: hyper-parameters, tokenizer, tensor types and where the bytes are.
fn inspect_gguf(args: &InspectArgs, json: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let s = pareto_core::import::describe(&args.path).with_context(|| format!("reading {}", args.path.display()))?;
    if json {
        return output::json(&s);
    }
    println!("model:        {} (GGUF v{}, {})", s.path.display(), s.version, output::bytes(s.file_bytes));
    println!("architecture: {}{}", s.architecture, s.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default());
    let hp: Vec<String> = s.hyper_parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("hyper-params: {}", hp.join(", "));
    let t = &s.tokenizer;
    println!(
        "tokenizer:    {} (pre {}), {} tokens, {} merges, bos {}, eos {}, add_bos {}, chat template {}",
        t.model.as_deref().unwrap_or("none"),
        t.pre.as_deref().unwrap_or("-"),
        t.tokens,
        t.merges,
        t.bos.map_or("-".into(), |v| v.to_string()),
        t.eos.map_or("-".into(), |v| v.to_string()),
        t.add_bos.map_or("-".into(), |v| v.to_string()),
        if t.chat_template { "yes" } else { "no" }
    );
    println!("parameters:   {} in {} tensors", s.parameters, s.tensors.len());
    if s.quantized {
        println!("note:         stored quantized: converting or compressing starts from these dequantized values");
    }
    if !s.undecodable.is_empty() {
        println!("note:         Pareto cannot decode {}: inspect only", s.undecodable.join(", "));
    }
    println!();
    let rows: Vec<Vec<String>> = s
        .by_type
        .iter()
        .map(|r| vec![r.ggml_type.clone(), r.tensors.to_string(), r.elements.to_string(), output::bytes(r.bytes)])
        .collect();
    output::table(&["type", "tensors", "elements", "bytes"], &rows);
    println!();
    let rows: Vec<Vec<String>> = s
        .tensors
        .iter()
        .take(args.limit)
        .map(|t| vec![t.name.clone(), t.ggml_type.clone(), format!("{:?}", t.shape), output::bytes(t.bytes)])
        .collect();
    output::table(&["tensor", "type", "shape", "bytes"], &rows);
    if s.tensors.len() > args.limit {
        println!("… {} more tensors (--limit N, or --json for all)", s.tensors.len() - args.limit);
    }
    Ok(())
}
