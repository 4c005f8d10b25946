//! HF tensor names → GGUF names (llama.cpp gguf-py/gguf/tensor_mapping.py, `TensorNameMap`;
//! MODEL_TENSOR names in gguf-py/gguf/constants.py for LLM_ARCH_LLAMA, QWEN2, QWEN3 and BERT).
//! The two families' HF names do not overlap (`model.layers.*` vs `encoder.layer.*`), so the HF
//! side needs no architecture; the GGUF side does (`blk.N.attn_q` is in both).

/// The GGUF name of an HF tensor of a LLaMA-style or BERT model; `None` for a tensor llama.cpp's
/// graphs have no slot for. Buffers and heads the converter drops ([`skipped`]) are the caller's.
pub fn to_gguf(hf: &str) -> Option<String> {
    if let Some((_, g)) = FIXED.iter().find(|(h, _)| *h == hf) {
        return Some((*g).to_string());
    }
    if let Some((layer, module, kind)) = split_layer(hf, "model.layers.") {
        let (_, g) = LAYER.iter().find(|(h, _)| *h == module)?;
        return Some(format!("blk.{layer}.{g}.{kind}"));
    }
    // BertForMaskedLM and friends keep the encoder under `bert.` (the converter strips it).
    let hf = hf.strip_prefix("bert.").unwrap_or(hf);
    if let Some((layer, module, kind)) = split_layer(hf, "encoder.layer.") {
        let (_, g) = BERT_LAYER.iter().find(|(h, _)| *h == module)?;
        return Some(format!("blk.{layer}.{g}.{kind}"));
    }
    let (module, kind) = hf.rsplit_once('.')?;
    let (_, g) = BERT_FIXED.iter().find(|(h, _)| *h == module)?;
    (kind == "weight" || kind == "bias").then(|| format!("{g}.{kind}"))
}

/// The HF name of a GGUF tensor of architecture `arch`: [`to_gguf`] backwards.
pub fn to_hf(arch: &str, gguf: &str) -> Option<String> {
    if arch == "bert" {
        if let Some((layer, module, kind)) = split_layer(gguf, "blk.") {
            let (h, _) = BERT_LAYER.iter().find(|(_, g)| *g == module)?;
            return Some(format!("encoder.layer.{layer}.{h}.{kind}"));
        }
        let (module, kind) = gguf.rsplit_once('.')?;
        let (h, _) = BERT_FIXED.iter().find(|(_, g)| *g == module)?;
        return (kind == "weight" || kind == "bias").then(|| format!("{h}.{kind}"));
    }
    if let Some((h, _)) = FIXED.iter().find(|(_, g)| *g == gguf) {
        return Some((*h).to_string());
    }
    let (layer, module, kind) = split_layer(gguf, "blk.")?;
    // Phi-3's `ffn_up` holds gate and up stacked (its checkpoint's `gate_up_proj`).
    if arch == "phi3" && module == "ffn_up" {
        return Some(format!("model.layers.{layer}.mlp.gate_up_proj.{kind}"));
    }
    let (h, _) = LAYER.iter().find(|(_, g)| *g == module)?;
    Some(format!("model.layers.{layer}.{h}.{kind}"))
}

/// `{prefix}{layer}.{module}.{weight|bias}` → (layer, module, kind).
fn split_layer<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str, &'a str)> {
    let (layer, module) = name.strip_prefix(prefix)?.split_once('.')?;
    let (module, kind) = module.rsplit_once('.')?;
    (kind == "weight" || kind == "bias").then_some((layer.parse().ok()?, module, kind))
}

/// Whole-model tensors: (HF name, GGUF name).
const FIXED: [(&str, &str); 3] = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Per-layer modules: (HF module, GGUF module).
const LAYER: [(&str, &str); 13] = [
    ("input_layernorm", "attn_norm"),
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
    // Qwen3's per-head RMSNorm of queries and keys.
    ("self_attn.q_norm", "attn_q_norm"),
    ("self_attn.k_norm", "attn_k_norm"),
    ("post_attention_layernorm", "ffn_norm"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
    // Phi-3's fused projections: llama.cpp's phi3 graph splits them as the checkpoint stacks them.
    ("self_attn.qkv_proj", "attn_qkv"),
    ("mlp.gate_up_proj", "ffn_up"),
];

/// BERT's whole-model modules: (HF module, GGUF module), each with a weight and maybe a bias.
const BERT_FIXED: [(&str, &str); 4] = [
    ("embeddings.word_embeddings", "token_embd"),
    ("embeddings.position_embeddings", "position_embd"),
    ("embeddings.token_type_embeddings", "token_types"),
    ("embeddings.LayerNorm", "token_embd_norm"),
];

/// BERT's per-layer modules (llama.cpp's `bert` graph: post-norm, biases everywhere).
const BERT_LAYER: [(&str, &str); 8] = [
    ("attention.self.query", "attn_q"),
    ("attention.self.key", "attn_k"),
    ("attention.self.value", "attn_v"),
    ("attention.output.dense", "attn_output"),
    ("attention.output.LayerNorm", "attn_output_norm"),
    ("intermediate.dense", "ffn_up"),
    ("output.dense", "ffn_down"),
    ("output.LayerNorm", "layer_output_norm"),
];

/// Why the converter leaves a tensor out, or `None` for one it writes: RoPE buffers llama.cpp
/// recomputes; BERT's position ids, its pooler and its pre-training heads (llama.cpp serves BERT
/// for embeddings and pools itself).
pub fn skipped(hf: &str) -> Option<&'static str> {
    let bert = hf.strip_prefix("bert.").unwrap_or(hf);
    if hf.ends_with("rotary_emb.inv_freq") {
        Some("llama.cpp recomputes it")
    } else if bert == "embeddings.position_ids" {
        Some("llama.cpp numbers the positions itself")
    } else if bert.starts_with("pooler.") || hf.starts_with("cls.") {
        Some(
            "llama.cpp serves BERT for embeddings and pools them itself; the pooler and pre-training heads are not in its graph",
        )
    } else {
        None
    }
}

/// The rows of the GGUF `attn_q`/`attn_k` weight in terms of HF rows: llama.cpp's
/// convert_hf_to_gguf.py `LlamaModel.permute` (reshape `(n_head, 2, d/2, ·)`, swap axes 1 and 2),
/// which turns HF's rotate-half rows back into interleaved (GPT-J style) RoPE pairs. Output row
/// `h·d + 2p + e` is HF row `h·d + e·d/2 + p`.
pub fn qk_permutation(rows: usize, n_head: usize) -> Option<Vec<usize>> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return None;
    }
    let d = rows / n_head;
    let mut perm = Vec::with_capacity(rows);
    for h in 0..n_head {
        for p in 0..d / 2 {
            for e in 0..2 {
                perm.push(h * d + e * (d / 2) + p);
            }
        }
    }
    Some(perm)
}

/// Heads whose Q/K rows llama.cpp's converter interleaved in GGUF tensor `gguf_name` of
/// architecture `arch` (the LLaMA graph's `attn_q` / `attn_k` weights; the NEOX-RoPE Qwens keep HF
/// order), or 0 when the rows are in HF order.
pub fn permuted_heads(arch: &str, gguf_name: &str, heads: usize, kv_heads: usize) -> usize {
    match (arch, gguf_name.strip_prefix("blk.").and_then(|r| r.split_once('.')).map(|(_, m)| m)) {
        ("llama", Some("attn_q.weight")) => heads,
        ("llama", Some("attn_k.weight")) => kv_heads,
        _ => 0,
    }
}

/// GGUF rows (each `row_len` elements: values, or a row's block bytes) put back in HF order:
/// [`qk_permutation`] backwards. `None` when the rows do not split into `heads`.
pub fn unpermute_rows<T: Copy + Default>(data: &[T], row_len: usize, heads: usize) -> Option<Vec<T>> {
    let rows = data.len().checked_div(row_len)?;
    let perm = qk_permutation(rows, heads)?;
    let mut out = vec![T::default(); data.len()];
    for (gguf_row, &hf_row) in perm.iter().enumerate() {
        out.get_mut(hf_row * row_len..(hf_row + 1) * row_len)?
            .copy_from_slice(data.get(gguf_row * row_len..(gguf_row + 1) * row_len)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permutation() {
        assert_eq!(to_gguf("model.layers.3.self_attn.o_proj.weight").as_deref(), Some("blk.3.attn_output.weight"));
        assert_eq!(to_gguf("model.layers.0.mlp.down_proj.weight").as_deref(), Some("blk.0.ffn_down.weight"));
        assert_eq!(to_gguf("lm_head.weight").as_deref(), Some("output.weight"));
        assert_eq!(to_gguf("model.layers.2.self_attn.k_norm.weight").as_deref(), Some("blk.2.attn_k_norm.weight"));
        assert_eq!(to_gguf("model.layers.0.foo.weight"), None);
        for hf in ["model.embed_tokens.weight", "lm_head.weight", "model.layers.7.self_attn.q_proj.bias"] {
            assert_eq!(to_hf("llama", &to_gguf(hf).unwrap()).as_deref(), Some(hf));
        }
        assert_eq!(to_hf("llama", "rope_freqs.weight"), None);
        // BERT (MiniLM's names; BertForMaskedLM's carry a `bert.` prefix).
        for (hf, g) in [
            ("embeddings.word_embeddings.weight", "token_embd.weight"),
            ("embeddings.LayerNorm.bias", "token_embd_norm.bias"),
            ("encoder.layer.5.attention.output.LayerNorm.weight", "blk.5.attn_output_norm.weight"),
            ("encoder.layer.0.output.dense.bias", "blk.0.ffn_down.bias"),
            ("encoder.layer.0.attention.output.dense.weight", "blk.0.attn_output.weight"),
        ] {
            assert_eq!(to_gguf(hf).as_deref(), Some(g));
            assert_eq!(to_gguf(&format!("bert.{hf}")).as_deref(), Some(g));
            assert_eq!(to_hf("bert", g).as_deref(), Some(hf));
        }
        assert_eq!(
            to_hf("bert", "blk.0.attn_q.weight").as_deref(),
            Some("encoder.layer.0.attention.self.query.weight")
        );
        assert!(skipped("pooler.dense.weight").is_some() && skipped("bert.embeddings.position_ids").is_some());
        assert!(skipped("cls.predictions.bias").is_some() && skipped("encoder.layer.0.output.dense.weight").is_none());
        // One head of 4: HF rows [r0 r1 | r2 r3] (halves) → interleaved [r0 r2 r1 r3].
        assert_eq!(qk_permutation(4, 1).unwrap(), vec![0, 2, 1, 3]);
        assert_eq!(qk_permutation(8, 2).unwrap(), vec![0, 2, 1, 3, 4, 6, 5, 7]);
        assert!(qk_permutation(6, 4).is_none());
        // Un-permuting undoes the permutation, for values and for byte rows alike.
        let hf: Vec<u8> = (0..8).collect();
        let gguf: Vec<u8> = qk_permutation(8, 2).unwrap().iter().map(|&r| hf[r]).collect();
        assert_eq!(unpermute_rows(&gguf, 1, 2).unwrap(), hf);
        assert_eq!(permuted_heads("llama", "blk.3.attn_k.weight", 9, 3), 3);
        assert_eq!(permuted_heads("llama", "blk.3.attn_k.bias", 9, 3), 0);
        assert_eq!(permuted_heads("qwen2", "blk.3.attn_q.weight", 9, 3), 0);
    }
}
