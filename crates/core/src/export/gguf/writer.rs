//! The GGUF writer: the whole header (metadata + tensor infos with offsets) is computed from the
//! plan before any weight is read; tensors then stream one at a time, each padded to the
//! alignment (as gguf-py's `GGUFWriter` and ggml's `gguf_write_to_buf` do).
//!
//! Metadata keys: llama.cpp src/llama-arch.cpp (`LLM_KV_*`) and convert_hf_to_gguf.py
//! (`TextModel.set_gguf_parameters`); `general.file_type` values from include/llama.h
//! (`llama_ftype`).

use pareto_formats::{Format, Kind, QTensor};

use super::metadata::{MetaValue, encode_kv, encode_str};
use super::{ALIGNMENT, MAGIC, QUANTIZATION_VERSION, VERSION, names, pooling, rope, tokenizer, types};
use crate::compress::TensorReport;
use crate::error::{Error, Result};
use crate::export::OutputDir;
use crate::export::atomic::HashingFile;
use crate::export::packed::{self, cast_dtype};
use crate::job::JobContext;
use crate::metrics::{Sums, WeightMetrics};
use crate::recipe::resolve::rows_cols;
use crate::recipe::{Plan, PlannedTensor};
use crate::store::{Architecture, DType, Model, ModelConfig, TensorInfo};
use crate::transform::{Pipeline, encode_f32};

pub const TARGET: &str = "GGUF";
pub const SUPPORTED_ARCHITECTURES: &str = "llama, mistral, qwen2, qwen3, phi3 (LlamaForCausalLM, MistralForCausalLM, \
     Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM), bert (BertModel and the other BERT encoders, for llama.cpp's embedding serving)";
/// The file name inside the output folder.
pub const FILE_NAME: &str = "model.gguf";

/// How one tensor is stored.
#[derive(Debug, Clone)]
enum Encoding {
    /// A ggml block format from the registry.
    Blocks(&'static pareto_formats::Format),
    /// A float cast format from the registry (f16/bf16/f32).
    Cast(&'static pareto_formats::Format),
    /// Untouched (or only pruned): written as this float dtype.
    Dense(DType),
}

/// Where a tensor's values come from.
#[derive(Debug, Clone)]
enum Source {
    /// The source tensor at this index.
    Tensor(usize),
    /// Computed from config.json (RoPE frequency divisors), written as F32.
    Generated(Vec<f32>),
}

#[derive(Debug, Clone)]
struct Item {
    source: Source,
    gguf_name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    nbytes: u64,
    offset: u64,
    encoding: Encoding,
    perm: Option<Vec<usize>>,
}

/// The complete file layout, computed before any weight is read.
pub struct Layout {
    kv: Vec<(String, MetaValue)>,
    items: Vec<Item>,
    notes: Vec<String>,
}

impl Layout {
    /// Header bytes: magic, version, counts, KV pairs, tensor infos, padding to the data section.
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(MAGIC);
        h.extend(VERSION.to_le_bytes());
        h.extend((self.items.len() as u64).to_le_bytes());
        h.extend((self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            encode_kv(k, v, &mut h);
        }
        for it in &self.items {
            encode_str(&it.gguf_name, &mut h);
            h.extend((it.dims.len() as u32).to_le_bytes());
            for d in &it.dims {
                h.extend(d.to_le_bytes());
            }
            h.extend(it.ggml_type.to_le_bytes());
            h.extend(it.offset.to_le_bytes());
        }
        pad(&mut h);
        h
    }

    /// Notes for the report (skipped buffers, missing tokenizer).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn pad(h: &mut Vec<u8>) {
    let rem = h.len() as u64 % ALIGNMENT;
    if rem != 0 {
        h.resize(h.len() + (ALIGNMENT - rem) as usize, 0);
    }
}

/// How a registry format is stored in a GGUF: ggml block formats as their blocks, the float formats
/// llama.cpp has a type for as casts; `None` for the rest.
fn encoding_of(f: &'static pareto_formats::Format) -> Option<Encoding> {
    match (f.kind, f.ggml_type) {
        (Kind::GgmlBlock, Some(_)) => Some(Encoding::Blocks(f)),
        (Kind::Float, Some(_)) if cast_dtype(f).is_some() => Some(Encoding::Cast(f)),
        _ => None,
    }
}

/// The registry formats a GGUF can store, for messages.
pub fn supported_formats() -> String {
    pareto_formats::registry().iter().filter(|f| encoding_of(f).is_some()).map(|f| f.id).collect::<Vec<_>>().join(", ")
}

fn unsupported_format(pt: &PlannedTensor, id: &str) -> Error {
    Error::ExportFormatUnsupported {
        target: TARGET,
        tensor: pt.name.clone(),
        format: id.to_string(),
        supported: supported_formats(),
    }
}

/// Architecture, names, formats and shapes checked, metadata and offsets computed: everything
/// that can be refused is refused here, before the output folder exists.
pub fn layout(model: &Model, plan: &Plan, weights_only: bool) -> Result<Layout> {
    let cfg = model.require_config()?;
    // llama.cpp's architecture: Mistral is its llama graph. Qwen2, Qwen3 and Phi-3 have their own
    // (Q/K/V biases, Q/K norms, resp. fused projections; NEOX RoPE, which reads HF's rotate-half
    // rows as they are: no Q/K permutation).
    let (arch, permute_qk) = match cfg.architecture {
        Architecture::Llama | Architecture::Mistral => ("llama", true),
        Architecture::Qwen2 => ("qwen2", false),
        Architecture::Qwen3 => ("qwen3", false),
        Architecture::Phi3 => ("phi3", false),
        Architecture::Bert => ("bert", false),
        _ => {
            return Err(Error::GgufUnsupportedArchitecture {
                architecture: cfg.architecture.name().to_string(),
                supported: SUPPORTED_ARCHITECTURES,
            });
        }
    };
    let (mut kv, freqs) = match arch {
        "bert" => (bert_kv(model, cfg, plan)?, None),
        _ => decoder_kv(cfg, plan, arch)?,
    };
    let (heads, kv_heads) = cfg_heads(cfg, plan);
    let mut items = Vec::new();
    let mut notes = Vec::new();
    // The converter yields generated tensors before the model's own; so does this writer.
    if let Some(freqs) = freqs {
        let n = freqs.len() as u64;
        notes.push(format!("rope_freqs.weight: {n} RoPE frequency divisors computed from rope_scaling (llama3)"));
        let (gguf_name, ggml_type, dims) = ("rope_freqs.weight".to_string(), types::F32, vec![n]);
        let (source, encoding) = (Source::Generated(freqs), Encoding::Dense(DType::F32));
        items.push(Item { source, gguf_name, dims, ggml_type, nbytes: n * 4, offset: 0, encoding, perm: None });
    }
    for (index, (t, pt)) in model.tensors().iter().zip(&plan.tensors).enumerate() {
        if pt.action.drop {
            continue;
        }
        if let Some(why) = names::skipped(&pt.name) {
            notes.push(format!("{}: not written ({why})", pt.name));
            continue;
        }
        let gguf_name = names::to_gguf(&pt.name).ok_or_else(|| Error::ExportTensor {
            target: TARGET,
            tensor: pt.name.clone(),
            problem: format!("no GGUF tensor name for it in the {arch} architecture"),
        })?;
        if !t.dtype.is_float() {
            return Err(Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("{} tensors have no place in a llama GGUF", t.dtype),
            });
        }
        let (rows, cols) = rows_cols(&pt.shape);
        let encoding = match pt.action.format {
            Some(id) => encoding_of(pareto_formats::lookup(id)?).ok_or_else(|| unsupported_format(pt, id))?,
            // llama.cpp keeps 1-D tensors (norms) in F32.
            None if pt.shape.len() < 2 => Encoding::Dense(DType::F32),
            None => Encoding::Dense(match pt.out_dtype {
                DType::F16 => DType::F16,
                DType::BF16 => DType::BF16,
                _ => DType::F32,
            }),
        };
        let ggml_type = match &encoding {
            Encoding::Blocks(f) | Encoding::Cast(f) => f.ggml_type.unwrap_or(types::F32),
            Encoding::Dense(DType::F16) => types::F16,
            Encoding::Dense(DType::BF16) => types::BF16,
            Encoding::Dense(_) => types::F32,
        };
        let nbytes = types::nbytes(ggml_type, cols as u64, rows as u64).ok_or_else(|| Error::ExportTensor {
            target: TARGET,
            tensor: pt.name.clone(),
            problem: format!("{cols} columns do not fit type {}", types::name(ggml_type).unwrap_or("?")),
        })?;
        let n_head = if !permute_qk {
            None
        } else if pt.name.ends_with("self_attn.q_proj.weight") {
            Some(heads)
        } else if pt.name.ends_with("self_attn.k_proj.weight") {
            Some(kv_heads)
        } else {
            None
        };
        let perm = match n_head {
            Some(n) => Some(names::qk_permutation(rows, n).ok_or_else(|| Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("{rows} rows do not split into {n} heads of even size for the RoPE permutation"),
            })?),
            None => None,
        };
        let dims = pt.shape.iter().rev().map(|&d| d as u64).collect();
        let source = Source::Tensor(index);
        items.push(Item { source, gguf_name, dims, ggml_type, nbytes, offset: 0, encoding, perm });
    }
    let mut offset = 0u64;
    for it in &mut items {
        it.offset = offset;
        offset = offset
            .checked_add(it.nbytes.div_ceil(ALIGNMENT) * ALIGNMENT)
            .ok_or(Error::SizeOverflow { tensor: it.gguf_name.clone() })?;
    }

    let name = cfg
        .raw
        .get("_name_or_path")
        .and_then(serde_json::Value::as_str)
        .map(String::from)
        .or_else(|| model.root().file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    kv.splice(
        0..0,
        [
            ("general.architecture".into(), MetaValue::String(arch.into())),
            ("general.name".into(), MetaValue::String(name)),
            ("general.alignment".into(), MetaValue::U32(ALIGNMENT as u32)),
            ("general.file_type".into(), MetaValue::U32(file_type(plan)?)),
            ("general.quantization_version".into(), MetaValue::U32(QUANTIZATION_VERSION)),
        ],
    );
    match tokenizer::convert(model.root(), Some(&cfg.raw))? {
        Some(tok) => kv.extend(tok),
        // llama.cpp refuses to load a GGUF without a vocabulary: such a file is only written on
        // request (benchmarks, tensor inspection), never by default.
        None if weights_only => {
            notes.push("weights only (--gguf-weights-only): no tokenizer, llama.cpp cannot run this file".into())
        }
        None => {
            return Err(Error::ExportConfig {
                target: "GGUF",
                problem: format!(
                    "{} has no tokenizer.json, and llama.cpp cannot load a GGUF without its vocabulary; add the model's tokenizer.json (or pass --gguf-weights-only for a file that only holds the tensors)",
                    model.root().display()
                ),
            });
        }
    }
    Ok(Layout { kv, items, notes })
}

fn u32v(v: usize) -> MetaValue {
    MetaValue::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

/// (heads, kv heads) after a structured cut, if the plan has one.
fn cfg_heads(cfg: &ModelConfig, plan: &Plan) -> (usize, usize) {
    let sp = plan.structured.as_ref();
    (sp.map_or(cfg.num_heads, |s| s.heads_after), sp.map_or(cfg.num_kv_heads, |s| s.kv_heads_after))
}

/// Metadata pairs, and the RoPE frequency divisors to write as `rope_freqs.weight`.
type DecoderKv = (Vec<(String, MetaValue)>, Option<Vec<f32>>);

/// The decoder families' hyper-parameters (convert_hf_to_gguf.py `TextModel.set_gguf_parameters`
/// and the LLaMA/Qwen subclasses), and the RoPE frequency divisors when `rope_scaling` asks for them.
fn decoder_kv(cfg: &ModelConfig, plan: &Plan, arch: &str) -> Result<DecoderKv> {
    let sp = plan.structured.as_ref();
    let (heads, kv_heads) = cfg_heads(cfg, plan);
    let head_dim = sp.map_or(cfg.head_dim, |s| s.head_dim);
    let layers = sp.map_or(cfg.num_layers, |s| s.layer_map.len());
    let ffn = sp.map_or(cfg.intermediate_size, |s| s.ffn_after);
    let rope_theta = cfg.rope_theta.unwrap_or(10_000.0);
    let scaling = rope::convert(&cfg.raw, arch, head_dim, rope_theta)
        .map_err(|problem| Error::ExportConfig { target: TARGET, problem })?;
    let key = |k: &str| format!("{arch}.{k}");
    if arch == "phi3" {
        return Ok((phi3_kv(cfg, heads, kv_heads, layers, ffn, rope_theta, &scaling.kv), scaling.freqs));
    }
    let mut kv: Vec<(String, MetaValue)> = vec![
        (key("vocab_size"), u32v(cfg.vocab_size)),
        (key("context_length"), u32v(cfg.max_position_embeddings.unwrap_or(2048))),
        (key("embedding_length"), u32v(cfg.hidden_size)),
        (key("block_count"), u32v(layers)),
        (key("feed_forward_length"), u32v(ffn)),
        (key("rope.dimension_count"), u32v(head_dim)),
        (key("attention.head_count"), u32v(heads)),
        (key("attention.head_count_kv"), u32v(kv_heads)),
        (key("attention.layer_norm_rms_epsilon"), MetaValue::F32(cfg.rms_norm_eps.unwrap_or(1e-5) as f32)),
        (key("rope.freq_base"), MetaValue::F32(rope_theta as f32)),
    ];
    kv.extend(scaling.kv);
    // The converter states them whenever config.json does (conversion/base.py); llama.cpp also
    // needs them when heads × head_dim differs from the hidden size.
    if cfg.raw.get("head_dim").is_some() || (heads > 0 && head_dim * heads != cfg.hidden_size) {
        kv.push((key("attention.key_length"), u32v(head_dim)));
        kv.push((key("attention.value_length"), u32v(head_dim)));
    }
    Ok((kv, scaling.freqs))
}

/// Phi-3's hyper-parameters as the converter's `Phi3MiniModel` states them (its own set, not the
/// text models' common one: no vocabulary size, the original context length, a sliding window of 0
/// when the config has none — llama.cpp reads 0 as "no window").
fn phi3_kv(
    cfg: &ModelConfig,
    heads: usize,
    kv_heads: usize,
    layers: usize,
    ffn: usize,
    rope_theta: f64,
    scaling: &[(String, MetaValue)],
) -> Vec<(String, MetaValue)> {
    let context = cfg.max_position_embeddings.unwrap_or(4096);
    let original = cfg.raw.get("original_max_position_embeddings").and_then(serde_json::Value::as_u64);
    let window = cfg.raw.get("sliding_window").and_then(serde_json::Value::as_u64).unwrap_or(0);
    // Phi-3.5 / Phi-4-mini rotate only this share of each head.
    let rotary = cfg.raw.get("partial_rotary_factor").and_then(serde_json::Value::as_f64).unwrap_or(1.0);
    let key = |k: &str| format!("phi3.{k}");
    let mut kv = vec![
        (key("context_length"), u32v(context)),
        (key("rope.scaling.original_context_length"), u32v(original.map_or(context, |v| v as usize))),
        (key("embedding_length"), u32v(cfg.hidden_size)),
        (key("feed_forward_length"), u32v(ffn)),
        (key("block_count"), u32v(layers)),
        (key("attention.head_count"), u32v(heads)),
        (key("attention.head_count_kv"), u32v(kv_heads)),
        (key("attention.layer_norm_rms_epsilon"), MetaValue::F32(cfg.rms_norm_eps.unwrap_or(1e-5) as f32)),
        (key("rope.dimension_count"), u32v((rotary * cfg.hidden_size as f64) as usize / heads.max(1))),
        (key("rope.freq_base"), MetaValue::F32(rope_theta as f32)),
        (key("attention.sliding_window"), u32v(window as usize)),
    ];
    kv.extend(scaling.iter().cloned());
    kv
}

/// BERT's hyper-parameters as convert_hf_to_gguf.py's `BertModel` states them: no RoPE, a
/// LayerNorm epsilon, bidirectional attention, the sentence-transformers pooling, and the number
/// of token types (llama.cpp refuses a BERT without it).
fn bert_kv(model: &Model, cfg: &ModelConfig, plan: &Plan) -> Result<Vec<(String, MetaValue)>> {
    if plan.structured.is_some() {
        let problem = "a structured cut of a BERT model is not exported to GGUF (only the decoder families)".into();
        return Err(Error::ExportConfig { target: TARGET, problem });
    }
    let key = |k: &str| format!("bert.{k}");
    let mut kv = vec![
        (key("block_count"), u32v(cfg.num_layers)),
        (key("context_length"), u32v(cfg.max_position_embeddings.unwrap_or(512))),
        (key("embedding_length"), u32v(cfg.hidden_size)),
        (key("feed_forward_length"), u32v(cfg.intermediate_size)),
        (key("attention.head_count"), u32v(cfg.num_heads)),
        (key("attention.layer_norm_epsilon"), MetaValue::F32(cfg.layer_norm_eps.unwrap_or(1e-12) as f32)),
        (key("attention.causal"), MetaValue::Bool(false)),
    ];
    if let Some(pooling) = pooling::of(model.root())? {
        kv.push((key("pooling_type"), MetaValue::U32(pooling)));
    }
    let token_types = cfg.raw.get("type_vocab_size").and_then(serde_json::Value::as_u64).unwrap_or(1);
    kv.push(("tokenizer.ggml.token_type_count".into(), MetaValue::U32(u32::try_from(token_types).unwrap_or(1))));
    Ok(kv)
}

/// `llama_ftype` of the plan: the recipe's default format, else the requested format holding most
/// weights, named as llama-quantize names its mixtures (fallbacks do not change the label): a Q4_K
/// or Q5_K plan with Q6_K beyond the output head is `_M`, else `_S`; a Q3_K plan with Q4_K
/// tensors is Q3_K_M, with Q5_K and no Q4_K Q3_K_L, else Q3_K_S.
fn file_type(plan: &Plan) -> Result<u32> {
    // format id -> (weights, tensors)
    let mut by: std::collections::BTreeMap<String, (u64, usize)> = Default::default();
    // Only what the file holds: a BERT pooler the GGUF leaves out does not count.
    let written = |p: &&PlannedTensor| !p.action.drop && p.shape.len() >= 2 && names::skipped(&p.name).is_none();
    for pt in plan.tensors.iter().filter(written) {
        let id = match (&pt.action.requested_format, pt.action.format) {
            (Some(r), _) => r.clone(),
            (None, Some(f)) => f.to_string(),
            (None, None) => match pt.out_dtype {
                DType::F16 => "f16".into(),
                DType::BF16 => "bf16".into(),
                _ => "f32".into(),
            },
        };
        let e = by.entry(id).or_default();
        e.0 += pt.params;
        e.1 += 1;
    }
    // The recipe's default format names the file, as llama-quantize's type argument does (an
    // encoder's Q6_K word embedding can outweigh its Q4_0 linears); without one, the majority.
    let default = plan.recipe.default.quantize.as_ref().map(|q| q.format.as_str()).filter(|f| by.contains_key(*f));
    let main = default.or_else(|| by.iter().max_by_key(|(_, n)| n.0).map(|(k, _)| k.as_str())).unwrap_or("f32");
    let has = |id: &str| by.contains_key(id);
    let q6_beyond_head = by.get("q6_k").is_some_and(|e| e.1 > 1);
    Ok(match main {
        "f32" => 0,
        "f16" => 1,
        "q4_0" => 2,
        "q4_1" => 3,
        "q8_0" => 7,
        "q5_0" => 8,
        "q5_1" => 9,
        "q3_k" if has("q4_k") => 12,
        "q3_k" if has("q5_k") => 13,
        "q3_k" => 11,
        "q4_k" if q6_beyond_head => 15,
        "q4_k" => 14,
        "q5_k" if q6_beyond_head => 17,
        "q5_k" => 16,
        "q6_k" => 18,
        "bf16" => 32,
        _ => 0,
    })
}

/// Streams the tensors of `layout` into one GGUF file.
pub struct GgufWriter {
    file: HashingFile,
}

impl GgufWriter {
    fn tensor(&mut self, data: Vec<u8>, it: &Item) -> Result<()> {
        if data.len() as u64 != it.nbytes {
            return Err(Error::WriterMismatch {
                expected: format!("{} ({} bytes)", it.gguf_name, it.nbytes),
                got: format!("{} bytes", data.len()),
            });
        }
        self.file.write_owned(data)?;
        self.pad(it)
    }
}

/// A large tensor whose rows quantize independently and need nothing from other rows (no Q/K
/// permutation, pruning, structured cut or calibrated rewrite): quantized a few rows at a time, so a 1 GB embedding
/// never sits in memory as a 2 GB f32 copy beside its codes.
fn by_rows(pipe: &Pipeline, t: &TensorInfo, pt: &PlannedTensor, it: &Item, fmt: &Format) -> bool {
    pipe.reader.is_large(t)
        && it.perm.is_none()
        && pt.action.prune.is_none()
        && pt.action.algorithm.is_rtn()
        && pt.shape == pt.source_shape
        && fmt.block != pareto_formats::PER_TENSOR
        && t.dtype.is_float()
        && pipe.rewrite(pt).is_none()
}

impl GgufWriter {
    /// Streams one tensor in row chunks; returns the bytes written, the metrics and the notes of
    /// how its codes were chosen (the same for every chunk).
    fn tensor_by_rows(
        &mut self,
        pipe: &mut Pipeline,
        t: &TensorInfo,
        pt: &PlannedTensor,
        fmt: &'static Format,
        it: &Item,
        metrics: bool,
    ) -> Result<(u64, Option<WeightMetrics>, Vec<String>)> {
        let (rows, cols) = rows_cols(&pt.shape);
        let step = (pipe.reader.step_bytes() / (cols.max(1) * 4)).max(1);
        let (mut written, mut sums, mut notes) = (0u64, Sums::default(), Vec::new());
        for first in (0..rows).step_by(step) {
            let n = step.min(rows - first);
            let x = pipe.reader.read_rows_f32(t, first, n, cols)?;
            let (solved, measured) = if metrics {
                pipe.quantize_measured(pt, fmt, &x, n, cols)?
            } else {
                (pipe.quantize(pt, fmt, &x, n, cols)?, None)
            };
            if first == 0 {
                notes = solved.notes;
            }
            let q = solved.codes;
            if metrics {
                let part = match measured {
                    Some(s) => s,
                    None => Sums::of_par(&x, &fmt.dequantize(&q).map_err(|e| Error::Format(e).for_tensor(&pt.name))?),
                };
                sums = sums.merge(part);
            }
            pipe.reader.recycle(x);
            let bytes = qtensor_bytes(q, pt)?;
            written += bytes.len() as u64;
            self.file.write_owned(bytes)?;
        }
        if written != it.nbytes {
            return Err(Error::WriterMismatch {
                expected: format!("{} ({} bytes)", it.gguf_name, it.nbytes),
                got: format!("{written} bytes"),
            });
        }
        self.pad(it)?;
        Ok((written, metrics.then(|| sums.metrics()), notes))
    }

    fn pad(&mut self, it: &Item) -> Result<()> {
        let rem = it.nbytes % ALIGNMENT;
        if rem != 0 {
            self.file.write_all_checked(&[0u8; ALIGNMENT as usize][..(ALIGNMENT - rem) as usize])?;
        }
        Ok(())
    }
}

/// Writes `model.gguf` into `out`, one tensor at a time.
pub fn write(
    model: &Model,
    plan: &Plan,
    layout: &Layout,
    out: &mut OutputDir,
    pipe: &mut Pipeline,
    ctx: &JobContext,
    metrics: bool,
) -> Result<Vec<TensorReport>> {
    let mut w = GgufWriter { file: out.create_file(FILE_NAME)? };
    w.file.write_all_checked(&layout.header())?;
    ctx.progress.stage("gguf", layout.items.len() as u64);
    let sources = layout.items.iter().filter_map(|it| match it.source {
        Source::Tensor(i) => model.tensors().get(i).cloned(),
        Source::Generated(_) => None,
    });
    pipe.reader.read_ahead(sources.collect());
    let mut reports = Vec::with_capacity(layout.items.len());
    for it in &layout.items {
        ctx.checkpoint()?;
        let index = match &it.source {
            Source::Tensor(i) => *i,
            Source::Generated(v) => {
                let mut buf = Vec::with_capacity(v.len() * 4);
                encode_f32(v, DType::F32, &mut buf);
                w.tensor(buf, it)?;
                ctx.progress.advance(1, &it.gguf_name);
                continue;
            }
        };
        let (t, pt): (&TensorInfo, &PlannedTensor) = match (model.tensors().get(index), plan.tensors.get(index)) {
            (Some(t), Some(pt)) => (t, pt),
            _ => return Err(Error::WriterMismatch { expected: "a planned tensor".into(), got: it.gguf_name.clone() }),
        };
        let dtype = types::name(it.ggml_type).unwrap_or("?");
        let mut rep = match &it.encoding {
            Encoding::Blocks(f) | Encoding::Cast(f) if by_rows(pipe, t, pt, it, f) => {
                let (written, m, notes) = w.tensor_by_rows(pipe, t, pt, f, it, metrics)?;
                let mut rep = packed::report(pt, dtype, written, m);
                rep.notes.extend(notes);
                rep
            }
            Encoding::Blocks(f) | Encoding::Cast(f) => {
                let qz = packed::quantize(pipe, t, pt, f, it.perm.as_deref(), metrics)?;
                qz.write(pt, dtype, |q| {
                    let data = qtensor_bytes(q, pt)?;
                    let written = data.len() as u64;
                    w.tensor(data, it)?;
                    Ok(written)
                })?
            }
            Encoding::Dense(d) => {
                let v = packed::prepare(pipe, t, pt, it.perm.as_deref())?;
                let mut buf = Vec::with_capacity(v.len() * d.size_bytes() as usize);
                encode_f32(&v, *d, &mut buf);
                pipe.reader.recycle(v);
                let written = buf.len() as u64;
                w.tensor(buf, it)?;
                packed::report(pt, dtype, written, None)
            }
        };
        rep.name = it.gguf_name.clone();
        reports.push(rep);
        ctx.progress.advance(1, &it.gguf_name);
    }
    out.record(w.file.finish()?);
    Ok(reports)
}

fn qtensor_bytes(q: QTensor, pt: &PlannedTensor) -> Result<Vec<u8>> {
    Ok(match q {
        QTensor::Blocks { bytes, .. } => bytes,
        QTensor::F32 { data, .. } => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        QTensor::F16 { data, .. } => data.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        QTensor::Bf16 { data, .. } => data.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        other => {
            return Err(Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("codec produced a {} tensor, which GGUF does not store", other.variant()),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message's list is the registry's: every ggml block format and llama.cpp's float types,
    /// nothing a GGUF cannot hold.
    #[test]
    fn the_supported_list_is_the_registrys_ggml_and_float_formats() {
        let list = supported_formats();
        let ids: Vec<&str> = list.split(", ").collect();
        assert_eq!(ids, ["f32", "f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_1", "q5_1", "q3_k", "q4_k", "q5_k", "q6_k"]);
        for f in pareto_formats::registry() {
            assert_eq!(ids.contains(&f.id), f.kind == Kind::GgmlBlock || cast_dtype(f).is_some(), "{}", f.id);
        }
    }
}
