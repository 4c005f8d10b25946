//! A LLaMA-style decoder forward pass of our own on candle ops (candle-transformers' `llama` returns
//! only the last position's logits, which perplexity cannot use, has no hook for calibration
//! activations and no quantized-weight path for HF folders). Weights are Hugging Face
//! `LlamaForCausalLM` names with q/k rows in rotate_half order (`candle_nn::rotary_emb::rope`).
//! The same graph serves Mistral, Qwen2 (optional Q/K/V biases), Qwen3 (RMSNorm over each
//! head's queries and keys before RoPE), whose checkpoints use the same names, and Phi-3, whose
//! checkpoints fuse q/k/v into one `qkv_proj` (rows q, k, v) and gate/up into one `gate_up_proj`
//! (gate rows first); those stay fused here (one matmul, its output split), so calibration and
//! export see the tensors the checkpoint has. Gemma 2 adds to the same projections its RMSNorms
//! scaling by 1 + w (stored w; 1 is added at load), norms after attention and after the MLP, GeGLU,
//! an embedding scaled by √hidden, `query_pre_attn_scalar` and soft-capped attention and output
//! logits.
//!
//! Linear layers are either dense F32 or candle `QMatMul` over GGUF block types (q8_0, q4_0, q4_k,
//! ...), so a quantized model runs on quantized kernels rather than dequantized weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{Scores, causal_attention_with};
use crate::calibration::{ActivationSink, LinearInput};
use crate::error::{CandleContext, EvalError, Result};
use crate::weights::{load_tensors, read_config};

/// The config.json fields this forward pass uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    /// Absent: tied for Gemma (transformers' default there, and Gemma's configs leave it out),
    /// untied otherwise (see [`LlamaConfig::tied`]).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// Mistral / Qwen2 sliding-window attention; Qwen2 only applies it with `use_sliding_window`.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
    /// `phi3` fuses the projections (see the module doc).
    #[serde(default)]
    pub model_type: Option<String>,
    /// Phi-3.5 / Phi-4-mini rotate only this share of each head; not supported here.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// Gemma 2 names its MLP activation here (`gelu_pytorch_tanh`).
    #[serde(default)]
    pub hidden_activation: Option<String>,
    /// Gemma 2: queries are scaled by this to the −½ (not the head dim).
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2: `cap · tanh(x / cap)` on attention scores, resp. output logits.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

impl LlamaConfig {
    /// `dir`'s config.json, parsed and range-checked.
    pub fn read(dir: &Path) -> Result<Self> {
        let (path, json) = read_config(dir)?;
        let config: LlamaConfig = serde_json::from_value(json)
            .map_err(|e| EvalError::Config { path: path.clone(), message: e.to_string() })?;
        config.validate(&path)?;
        Ok(config)
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The attention window when one applies. Full causal attention equals it for sequences no
    /// longer than the window, the only ones [`LlamaModel::forward`] accepts then.
    pub fn attention_window(&self) -> Option<usize> {
        match self.use_sliding_window {
            Some(false) => None,
            _ => self.sliding_window,
        }
    }

    /// What each rotary pair's frequency is divided by under `rope_scaling` (linear, llama3; the
    /// same divisors the GGUF export writes as `rope_freqs.weight`); `None` when unscaled.
    fn rope_divisors(&self) -> std::result::Result<Option<Vec<f32>>, String> {
        let cfg = serde_json::json!({ "rope_scaling": self.rope_scaling });
        pareto_core::export::gguf::rope::frequency_divisors(&cfg, self.head_dim(), self.rope_theta)
    }

    /// Whether q/k/v and gate/up are one fused projection each (Phi-3).
    pub fn fused(&self) -> bool {
        self.model_type.as_deref() == Some("phi3")
    }

    /// Whether the head reuses the embedding when the file has no `lm_head.weight`.
    pub fn tied(&self) -> bool {
        self.tie_word_embeddings.unwrap_or(self.gemma())
    }

    /// Gemma 2's layout (see the module doc).
    pub fn gemma(&self) -> bool {
        self.model_type.as_deref() == Some("gemma2")
    }

    /// The MLP activation the config names (`hidden_activation`, else `hidden_act`; SiLU when
    /// neither says).
    pub fn activation(&self) -> std::result::Result<Activation, String> {
        match self.hidden_activation.as_deref().or(self.hidden_act.as_deref()) {
            None | Some("silu") => Ok(Activation::Silu),
            Some("gelu_pytorch_tanh") => Ok(Activation::GeluTanh),
            Some(other) => Err(format!("hidden_act `{other}` is not supported (silu, gelu_pytorch_tanh)")),
        }
    }

    /// How attention scores are formed.
    fn scores(&self) -> Scores {
        Scores {
            scale: self.query_pre_attn_scalar.map(|s| (1.0 / s.sqrt()) as f32),
            softcap: self.attn_logit_softcapping.map(|c| c as f32),
        }
    }

    /// BOS id (1 when the config does not say, as for llama2.c / SentencePiece models).
    pub fn bos(&self) -> u32 {
        self.bos_token_id.unwrap_or(1)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| EvalError::Config { path: path.to_path_buf(), message };
        if self.num_attention_heads == 0
            || self.kv_heads() == 0
            || !self.num_attention_heads.is_multiple_of(self.kv_heads())
        {
            return Err(bad(format!(
                "num_attention_heads {} must be a positive multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            )));
        }
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return Err(bad(format!("head_dim {} must be even and positive", self.head_dim())));
        }
        self.rope_divisors().map_err(|e| bad(format!("rope_scaling: {e}")))?;
        if let Some(f) = self.partial_rotary_factor
            && f != 1.0
        {
            return Err(bad(format!(
                "partial_rotary_factor {f} (RoPE on part of each head, Phi-3.5 / Phi-4-mini) is not supported yet"
            )));
        }
        self.activation().map_err(bad)?;
        Ok(())
    }
}

/// How the linear weights of a loaded decoder are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "format")]
pub enum WeightMode {
    /// As in the safetensors file, computed in F32.
    Dense,
    /// Quantized in memory to a GGUF block type (`q8_0`, `q4_0`, `q4_k`, ...); rows whose length is
    /// not a multiple of the block size fall back to F16, as llama.cpp does.
    Quantized(String),
    /// The linear weights as stored in a GGUF (its blocks, on candle's quantized kernels, as
    /// llama.cpp runs them); the types used, e.g. `q4_1 ×210, q8_0 ×1`.
    Stored(String),
}

/// How to load a decoder folder's linear weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadAs {
    /// Dense, as in the folder.
    Dense,
    /// Quantized in memory to this GGUF type.
    Requantize(GgmlDType),
    /// The folder is this GGUF's conversion: its stored blocks (see [`LlamaModel::load_gguf`]).
    StoredGguf(PathBuf),
}

/// Parses `q8_0`, `q4_0`, `q4_1`, `q5_0`, `q5_1`, `q2_k` ... `q6_k`, `f16`.
pub fn parse_ggml_dtype(s: &str) -> Result<GgmlDType> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "q4_0" => GgmlDType::Q4_0,
        "q4_1" => GgmlDType::Q4_1,
        "q5_0" => GgmlDType::Q5_0,
        "q5_1" => GgmlDType::Q5_1,
        "q8_0" => GgmlDType::Q8_0,
        "q2_k" => GgmlDType::Q2K,
        "q3_k" => GgmlDType::Q3K,
        "q4_k" => GgmlDType::Q4K,
        "q5_k" => GgmlDType::Q5K,
        "q6_k" => GgmlDType::Q6K,
        "f16" => GgmlDType::F16,
        other => {
            return Err(EvalError::InvalidArgument(format!(
                "unknown GGUF type `{other}`: expected q4_0, q4_1, q5_0, q5_1, q8_0, q2_k..q6_k or f16"
            )));
        }
    })
}

/// Per-tensor outcome of in-memory quantization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantizedTensor {
    pub name: String,
    /// The GGUF type actually used (`f16` for a fallback).
    pub format: String,
    pub fallback: bool,
}

#[derive(Clone)]
enum Linear {
    Dense(Tensor),
    Quantized(QMatMul),
    /// A streamed model's weight, read from its file at each use (F32 for the call only): a
    /// layer under calibration then holds one linear's F32 weight at a time, not seven.
    Stream {
        lazy: Arc<Lazy>,
        name: String,
        shape: [usize; 2],
    },
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Dense(w) => x.broadcast_matmul(&w.t()?)?,
            Self::Quantized(q) => q.forward(x)?,
            Self::Stream { .. } => x.broadcast_matmul(&self.weight()?.t()?)?,
        })
    }

    /// The dense weight (a read for a streamed one); `None` when quantized.
    fn dense(&self) -> Result<Option<Tensor>> {
        match self {
            Self::Dense(w) => Ok(Some(w.clone())),
            Self::Quantized(_) => Ok(None),
            Self::Stream { .. } => self.weight().map(Some),
        }
    }

    fn weight(&self) -> Result<Tensor> {
        let Self::Stream { lazy, name, shape } = self else {
            return Err(EvalError::InvalidArgument("not a streamed linear".into()));
        };
        let v =
            lazy.read(name)?.ok_or_else(|| EvalError::InvalidArgument(format!("`{name}` vanished from the model")))?;
        Ok(Tensor::from_vec(v, shape.as_slice(), &Device::Cpu)?)
    }

    /// The shape of a dense or streamed weight.
    fn dims(&self) -> Option<Vec<usize>> {
        match self {
            Self::Dense(w) => Some(w.dims().to_vec()),
            Self::Quantized(_) => None,
            Self::Stream { shape, .. } => Some(shape.to_vec()),
        }
    }
}

struct Layer {
    input_norm: Tensor,
    post_norm: Tensor,
    /// q, k, v; or one fused projection (Phi-3), its rows q, then k, then v.
    qkv: Vec<Linear>,
    /// Qwen2's projection biases.
    qkv_bias: Option<[Tensor; 3]>,
    /// Qwen3's per-head query/key RMSNorm weights.
    qk_norm: Option<[Tensor; 2]>,
    /// Gemma 2's norms of the attention output and of the MLP output (before each residual add).
    sandwich: Option<[Tensor; 2]>,
    o: Linear,
    /// gate, up; or one fused projection (Phi-3), gate rows first.
    gate_up: Vec<Linear>,
    down: Linear,
    names: LayerNames,
    /// False for a layer of a streamed model whose weights are not in memory.
    loaded: bool,
}

struct LayerNames {
    input_norm: String,
    /// The norm before the MLP (Gemma 2's `pre_feedforward_layernorm`).
    post_norm: String,
    /// Gemma 2's norms after attention and after the MLP.
    sandwich: Option<[String; 2]>,
    qkv: Vec<String>,
    o: Vec<String>,
    gate_up: Vec<String>,
    down: Vec<String>,
}

/// See [`LlamaModel::input_feeder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feeder {
    /// An RMSNorm's weight, by tensor name.
    Norm(String),
    /// A linear layer whose output rows are the input channels, by module name.
    Linear(String),
}

/// Keys and values of past positions, per layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Positions already in the cache.
    pub pos: usize,
}

/// The LM head's module name (its weight is `lm_head.weight`).
const HEAD: &str = "lm_head";

/// A loaded LLaMA-style decoder.
pub struct LlamaModel {
    config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Linear,
    /// True when the head reuses the embedding (no `lm_head.weight` in the file).
    head_tied: bool,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    dir: PathBuf,
    mode: WeightMode,
    quantized: Vec<QuantizedTensor>,
    load_time: Duration,
    /// A streamed model's files: layers are read when loaded and dropped when released, the
    /// embedding is read row by row, and there is no head (see [`LlamaModel::load_streamed`]).
    stream: Option<Arc<Lazy>>,
}

impl std::fmt::Debug for LlamaModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaModel")
            .field("dir", &self.dir)
            .field("mode", &self.mode)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Weights<'a> {
    map: HashMap<String, Tensor>,
    dir: &'a Path,
    /// Where tensors not in `map` are read from, one at a time (a streamed model).
    lazy: Option<&'a Lazy>,
}

/// The model's files, open for reading one tensor (or a few embedding rows) at a time.
struct Lazy {
    model: pareto_core::Model,
    reader: pareto_core::source::SourceReader,
}

impl Lazy {
    fn open(dir: &Path) -> Result<Self> {
        let model = pareto_core::Model::open(dir)?;
        let reader = pareto_core::source::SourceReader::open(&model, u64::MAX)?;
        Ok(Lazy { model, reader })
    }

    /// One tensor as f32, refused when it holds a NaN or Inf.
    fn read(&self, name: &str) -> Result<Option<Vec<f32>>> {
        let Ok(t) = self.model.tensor(name) else { return Ok(None) };
        let v = self.reader.read_f32(t)?;
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            let path =
                self.model.shards().get(t.shard).map_or_else(|| self.model.root().to_path_buf(), |s| s.path.clone());
            return Err(EvalError::NonFiniteWeight { path, tensor: name.to_string(), index, value: v[index] });
        }
        Ok(Some(v))
    }
}

impl Weights<'_> {
    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.lazy.is_some_and(|l| l.model.tensor(name).is_ok())
    }

    /// `take` for tensors some checkpoints have and others lack: all of `names` or none.
    fn take_all_or_none<const N: usize>(&mut self, names: [(String, usize); N]) -> Result<Option<[Tensor; N]>> {
        let present = names.iter().filter(|(n, _)| self.has(n)).count();
        if present == 0 {
            return Ok(None);
        }
        if present < N {
            let missing: Vec<&str> = names.iter().filter(|(n, _)| !self.has(n)).map(|(n, _)| n.as_str()).collect();
            return Err(EvalError::Config {
                path: self.dir.to_path_buf(),
                message: format!("{} missing while its siblings are present", missing.join(", ")),
            });
        }
        let mut out = Vec::with_capacity(N);
        for (n, len) in names {
            out.push(self.take(&n, &[len])?);
        }
        Ok(out.try_into().ok())
    }

    /// What is wrong with tensor `name` of this model folder, as a config error.
    fn bad(&self, name: &str, problem: String) -> EvalError {
        EvalError::Config { path: self.dir.to_path_buf(), message: format!("tensor `{name}` {problem}") }
    }

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let found = self.map.remove(name);
        let missing = || self.bad(name, "is missing from the safetensors".into());
        let t = match (found, self.lazy) {
            (Some(t), _) => t,
            (None, Some(lazy)) => {
                let v = lazy.read(name)?.ok_or_else(missing)?;
                if v.len() != shape.iter().product::<usize>() {
                    return Err(self.bad(name, format!("has {} values, expected {shape:?}", v.len())));
                }
                Tensor::from_vec(v, shape, &Device::Cpu)?
            }
            (None, None) => return Err(missing()),
        };
        if t.dims() != shape {
            return Err(self.bad(name, format!("has shape {:?}, expected {shape:?}", t.dims())));
        }
        t.to_dtype(DType::F32).ctx(|| format!("converting `{name}` to f32"))
    }
}

impl LlamaModel {
    /// Loads a HF LlamaForCausalLM folder with dense F32 weights.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_as(dir, device, &LoadAs::Dense)
    }

    /// Loads `dir`, the Hugging Face conversion of `gguf` (`pareto_core::import`), running every
    /// linear weight on the GGUF's own blocks with candle's quantized kernels (rows of LLaMA's Q/K
    /// reordered whole, which block layouts allow) where candle has the type; the rest (norms,
    /// the embedding lookup, types candle lacks) dense from the folder.
    pub fn load_gguf(dir: &Path, gguf: &Path, device: &Device) -> Result<Self> {
        Self::load_as(dir, device, &LoadAs::StoredGguf(gguf.to_path_buf()))
    }

    /// Loads the folder and quantizes every linear weight (attention, MLP, lm_head) in memory to
    /// `dtype`, so the forward pass runs candle's quantized kernels. Embeddings and norms stay F32.
    pub fn load_quantized(dir: &Path, device: &Device, dtype: GgmlDType) -> Result<Self> {
        Self::load_as(dir, device, &LoadAs::Requantize(dtype))
    }

    /// Loads the folder with its linear weights as `how` says.
    pub fn load_as(dir: &Path, device: &Device, how: &LoadAs) -> Result<Self> {
        let start = Instant::now();
        let gguf = match how {
            LoadAs::StoredGguf(path) => Some(pareto_core::export::gguf::GgufFile::open(path)?),
            _ => None,
        };
        let config = LlamaConfig::read(dir)?;
        let mut w = Weights { map: load_tensors(dir, device)?, dir, lazy: None };
        let (h, vocab) = (config.hidden_size, config.vocab_size);
        let (nh, nkv) = (config.num_attention_heads, config.kv_heads());
        let mut quantized = Vec::new();
        let mut linear = |w: &mut Weights, name: String, shape: [usize; 2]| -> Result<Linear> {
            let t = w.take(&format!("{name}.weight"), &shape)?;
            let stored = match &gguf {
                Some(file) => stored_block(file, &name, shape, nh, nkv, device)?,
                None => None,
            };
            match how {
                LoadAs::Dense => Ok(Linear::Dense(t)),
                LoadAs::StoredGguf(_) => match stored {
                    Some((q, format)) => {
                        quantized.push(QuantizedTensor { name: name.clone(), format, fallback: false });
                        Ok(Linear::Quantized(QMatMul::from_qtensor(q).ctx(|| format!("QMatMul for `{name}`"))?))
                    }
                    None => Ok(Linear::Dense(t)),
                },
                LoadAs::Requantize(dtype) => {
                    let dtype = *dtype;
                    let fits = shape[1].is_multiple_of(dtype.block_size());
                    let used = if fits { dtype } else { GgmlDType::F16 };
                    let q = QTensor::quantize(&t, used).ctx(|| format!("quantizing `{name}` to {used:?}"))?;
                    quantized.push(QuantizedTensor { name: name.clone(), format: ggml_name(used), fallback: !fits });
                    Ok(Linear::Quantized(QMatMul::from_qtensor(q).ctx(|| format!("QMatMul for `{name}`"))?))
                }
            }
        };
        let embed = w.take("model.embed_tokens.weight", &[vocab, h])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            layers.push(build_layer(&mut w, &config, i, &mut linear)?);
        }
        let norm = norm_weight(&mut w, &config, "model.norm.weight")?;
        let head_tied = !w.map.contains_key("lm_head.weight") && config.tied();
        if head_tied {
            w.map.insert("lm_head.weight".to_string(), embed.clone());
        }
        let lm_head = linear(&mut w, HEAD.to_string(), [vocab, h])?;
        let (cos, sin) = rope_tables(&config, device)?;
        let mode = match how {
            LoadAs::Dense => WeightMode::Dense,
            LoadAs::Requantize(d) => quantized_mode(*d, &quantized)?,
            LoadAs::StoredGguf(_) => WeightMode::Stored(stored_mode(&quantized)),
        };
        Ok(Self {
            mode,
            config,
            embed,
            layers,
            norm,
            lm_head,
            head_tied,
            cos,
            sin,
            device: device.clone(),
            dir: dir.to_path_buf(),
            quantized,
            load_time: start.elapsed(),
            stream: None,
        })
    }

    /// Opens `dir` for a layer-by-layer pass (sequential calibration) without reading its
    /// weights: each decoder layer is read by [`Self::load_layer`] and dropped by
    /// [`Self::release_layer`], embeddings are read for the tokens asked only, and the final norm
    /// and head are never read ([`Self::forward`] and [`Self::head`] refuse). A loaded layer's
    /// linears are read from the file at each use (F32 for that call), so memory holds one linear's
    /// weights at a time instead of the whole model's.
    pub fn load_streamed(dir: &Path, device: &Device) -> Result<Self> {
        let start = Instant::now();
        if !device.is_cpu() {
            return Err(EvalError::InvalidArgument("a streamed model runs on the CPU".into()));
        }
        let config = LlamaConfig::read(dir)?;
        let lazy = Lazy::open(dir)?;
        let embed_name = "model.embed_tokens.weight";
        let embed = lazy.model.tensor(embed_name).map_err(|_| EvalError::Config {
            path: dir.to_path_buf(),
            message: format!("tensor `{embed_name}` is missing from the safetensors"),
        })?;
        if embed.shape != [config.vocab_size, config.hidden_size] {
            return Err(EvalError::Config {
                path: dir.to_path_buf(),
                message: format!(
                    "tensor `{embed_name}` has shape {:?}, expected {:?}",
                    embed.shape,
                    [config.vocab_size, config.hidden_size]
                ),
            });
        }
        let layers = (0..config.num_hidden_layers).map(|i| released_layer(i, &config)).collect::<Result<Vec<_>>>()?;
        let (cos, sin) = rope_tables(&config, device)?;
        let empty = Tensor::zeros(0, DType::F32, device)?;
        Ok(Self {
            mode: WeightMode::Dense,
            config,
            embed: empty.clone(),
            layers,
            norm: empty.clone(),
            lm_head: Linear::Dense(empty),
            head_tied: false,
            cos,
            sin,
            device: device.clone(),
            dir: dir.to_path_buf(),
            quantized: Vec::new(),
            load_time: start.elapsed(),
            stream: Some(Arc::new(lazy)),
        })
    }

    /// Reads decoder layer `li`'s weights of a streamed model (a no-op for a loaded model).
    pub fn load_layer(&mut self, li: usize) -> Result<()> {
        let Some(lazy) = &self.stream else { return Ok(()) };
        if li >= self.layers.len() {
            return Err(EvalError::InvalidArgument(format!("no layer {li}")));
        }
        let mut w = Weights { map: HashMap::new(), dir: &self.dir, lazy: Some(lazy.as_ref()) };
        let mut stream = |w: &mut Weights, name: String, shape: [usize; 2]| -> Result<Linear> {
            let name = format!("{name}.weight");
            let found = lazy.model.tensor(&name).map(|t| t.shape.clone());
            let found = found.map_err(|_| w.bad(&name, "is missing from the safetensors".into()))?;
            if found != shape {
                return Err(w.bad(&name, format!("has shape {found:?}, expected {shape:?}")));
            }
            Ok(Linear::Stream { lazy: Arc::clone(lazy), name, shape })
        };
        self.layers[li] = build_layer(&mut w, &self.config, li, &mut stream)?;
        Ok(())
    }

    /// Drops decoder layer `li`'s weights of a streamed model (a no-op for a loaded model).
    pub fn release_layer(&mut self, li: usize) -> Result<()> {
        if self.stream.is_some() && li < self.layers.len() {
            self.layers[li] = released_layer(li, &self.config)?;
        }
        Ok(())
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mode(&self) -> &WeightMode {
        &self.mode
    }

    /// Per-linear formats after in-memory quantization (empty for a dense model).
    pub fn quantized_tensors(&self) -> &[QuantizedTensor] {
        &self.quantized
    }

    /// Wall time of the load (config, weights, quantization, rope tables).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.layers.len()], pos: 0 }
    }

    /// Logits `[batch, seq, vocab]` (F32) for token ids `[batch, seq]` (u32). With a cache the
    /// positions continue after the cached ones and the new keys/values are appended; without one
    /// the sequence starts at position 0. With a sink, the input of every linear layer is streamed
    /// to it (one call per distinct input per layer).
    pub fn forward(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        sink: Option<&mut dyn ActivationSink>,
    ) -> Result<Tensor> {
        let x = self.trunk(ids, cache, sink)?;
        self.head(&x)
    }

    /// Embedding and decoder layers: [`Self::forward`] up to the final norm.
    fn trunk(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        mut sink: Option<&mut dyn ActivationSink>,
    ) -> Result<Tensor> {
        let (_, s) = ids.dims2().ctx(|| "token ids must be [batch, seq]".to_string())?;
        let pos = cache.as_ref().map_or(0, |c| c.pos);
        if pos + s > self.config.max_position_embeddings {
            return Err(EvalError::InvalidArgument(format!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                pos + s,
                self.config.max_position_embeddings
            )));
        }
        let cfg = &self.config;
        if let Some(window) = cfg.attention_window().filter(|&w| pos + s > w) {
            return Err(EvalError::InvalidArgument(format!(
                "sequence of {} positions exceeds the sliding attention window {window}, which this forward pass does not implement",
                pos + s
            )));
        }
        let cos = self.cos.narrow(0, pos, s)?;
        let sin = self.sin.narrow(0, pos, s)?;
        let mut x = self.embed(ids)?;
        for li in 0..self.layers.len() {
            x = self.layer(li, &x, (&cos, &sin, pos), cache.as_deref_mut(), &mut sink)?;
        }
        if let Some(c) = cache {
            c.pos += s;
        }
        Ok(x)
    }

    /// The last decoder layer's output `[batch, seq, hidden]` for token ids `[batch, seq]` from
    /// position 0: [`Self::forward`] without its head, which [`Self::lm_head`] applies the same way.
    pub fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        self.trunk(ids, None, None)
    }

    /// This model's final norm and LM head on their own (shared, not copied).
    pub fn lm_head(&self) -> Result<LmHead> {
        if self.stream.is_some() {
            return Err(EvalError::InvalidArgument("a streamed model has no head (it runs layer by layer)".into()));
        }
        Ok(LmHead {
            norm: self.norm.clone(),
            lm_head: self.lm_head.clone(),
            eps: self.config.rms_norm_eps as f32,
            softcap: self.config.final_logit_softcapping,
        })
    }

    /// Reads only the final norm and the LM head (the embedding when tied) of the folder, dense
    /// F32 as [`Self::load`] reads them: the original's head for hidden states kept from an
    /// earlier run, without loading its layers.
    pub fn load_head(dir: &Path, device: &Device) -> Result<LmHead> {
        let config = LlamaConfig::read(dir)?;
        let lazy = Lazy::open(dir)?;
        let mut w = Weights { map: HashMap::new(), dir, lazy: Some(&lazy) };
        let (h, vocab) = (config.hidden_size, config.vocab_size);
        let norm = norm_weight(&mut w, &config, "model.norm.weight")?.to_device(device)?;
        let tied = !w.has("lm_head.weight") && config.tied();
        let name = if tied { "model.embed_tokens.weight" } else { "lm_head.weight" };
        let head = w.take(name, &[vocab, h])?.to_device(device)?;
        let softcap = config.final_logit_softcapping;
        Ok(LmHead { norm, lm_head: Linear::Dense(head), eps: config.rms_norm_eps as f32, softcap })
    }

    /// The first layer's input `[batch, seq, hidden]` for ids `[batch, seq]`: the token
    /// embeddings (Gemma's scaled by √hidden).
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.embedding_rows(ids)?;
        // Gemma scales the looked-up rows (not the table, which its tied head reads as stored).
        if self.config.gemma() { Ok((x * (self.config.hidden_size as f64).sqrt())?) } else { Ok(x) }
    }

    /// The embedding table's rows of ids `[batch, seq]`.
    fn embedding_rows(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2().ctx(|| "token ids must be [batch, seq]".to_string())?;
        let h = self.config.hidden_size;
        let Some(lazy) = &self.stream else {
            return Ok(self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, s, h))?);
        };
        // Streamed: the rows of these tokens only, each read once.
        let ids: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        let t = lazy.model.tensor("model.embed_tokens.weight")?;
        let mut rows: HashMap<u32, Vec<f32>> = HashMap::new();
        for &id in &ids {
            if id as usize >= self.config.vocab_size {
                return Err(EvalError::InvalidArgument(format!(
                    "token id {id} outside the vocabulary of {}",
                    self.config.vocab_size
                )));
            }
            if let std::collections::hash_map::Entry::Vacant(e) = rows.entry(id) {
                e.insert(lazy.reader.read_rows_f32(t, id as usize, 1, h)?);
            }
        }
        let data: Vec<f32> = ids.iter().flat_map(|id| rows[id].iter().copied()).collect();
        Ok(Tensor::from_vec(data, (b, s, h), &self.device)?)
    }

    /// Final norm and LM head: logits of hidden states `[batch, seq, hidden]`.
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        self.lm_head()?.logits(x)
    }

    /// The token embedding `[vocab, hidden]`.
    pub fn embedding(&self) -> &Tensor {
        &self.embed
    }

    /// Replaces the token embedding (same shape); a head tied to it follows, as in a file that
    /// stores the embedding once.
    pub fn set_embedding(&mut self, weight: Tensor) -> Result<()> {
        if weight.dims() != self.embed.dims() {
            return Err(EvalError::InvalidArgument(format!(
                "embedding {:?} does not match {:?}",
                weight.dims(),
                self.embed.dims()
            )));
        }
        if self.head_tied {
            self.lm_head = Linear::Dense(weight.clone());
        }
        self.embed = weight;
        Ok(())
    }

    /// The final norm alone: the LM head's input.
    pub fn final_norm(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.norm, self.config.rms_norm_eps as f32)?)
    }

    /// The LM head's module name when it is a tensor of its own (`None` when tied to the
    /// embedding, whose file holds no `lm_head.weight`); [`Self::set_linear_weight`] takes it.
    pub fn head_name(&self) -> Option<&'static str> {
        (!self.head_tied).then_some(HEAD)
    }

    /// Decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// One decoder layer on hidden states `[batch, seq, hidden]` starting at position 0, no cache:
    /// the step a layer-by-layer (sequential) calibration takes. Linear inputs go to `sink`.
    pub fn run_layer(&self, li: usize, x: &Tensor, mut sink: Option<&mut dyn ActivationSink>) -> Result<Tensor> {
        let s = x.dim(1)?;
        if s > self.config.max_position_embeddings {
            return Err(EvalError::InvalidArgument(format!(
                "sequence of {s} positions exceeds max_position_embeddings {}",
                self.config.max_position_embeddings
            )));
        }
        let cos = self.cos.narrow(0, 0, s)?;
        let sin = self.sin.narrow(0, 0, s)?;
        self.layer(li, x, (&cos, &sin, 0), None, &mut sink)
    }

    /// The module names of layer `li`'s linear layers (`model.layers.0.self_attn.q_proj`; the
    /// weight is `<name>.weight`) grouped by shared input (q/k/v, o, gate/up, down), in the order
    /// the layer uses them.
    pub fn linear_groups(&self, li: usize) -> Vec<Vec<String>> {
        self.layers.get(li).map_or_else(Vec::new, |l| {
            vec![l.names.qkv.clone(), l.names.o.clone(), l.names.gate_up.clone(), l.names.down.clone()]
        })
    }

    /// What produces the input of group `group` of [`Self::linear_groups`] up to a per-channel
    /// factor, so a scale on that input can be folded into it (AWQ): the RMSNorm before q/k/v and
    /// before gate/up, `up_proj` before `down_proj`, and `v_proj` before `o_proj` when each of its
    /// output channels is one input channel of `o_proj` (no grouped-query sharing, no bias).
    pub fn input_feeder(&self, li: usize, group: usize) -> Option<Feeder> {
        let l = self.layers.get(li)?;
        let cfg = &self.config;
        match group {
            0 => Some(Feeder::Norm(l.names.input_norm.clone())),
            // A fused projection's rows are not all the input's producers (Phi-3): nothing to fold into.
            1 if cfg.kv_heads() == cfg.num_attention_heads && l.qkv_bias.is_none() && !cfg.fused() => {
                Some(Feeder::Linear(l.names.qkv.get(2)?.clone()))
            }
            2 => Some(Feeder::Norm(l.names.post_norm.clone())),
            3 if !cfg.fused() => Some(Feeder::Linear(l.names.gate_up.get(1)?.clone())),
            _ => None,
        }
    }

    /// The layer and which of its two RMSNorms (`true`: post-attention) `name` is.
    fn norm_index(&self, name: &str) -> Option<(usize, bool)> {
        self.layers.iter().enumerate().filter(|(_, l)| l.loaded).find_map(|(li, l)| {
            if l.names.input_norm == name {
                Some((li, false))
            } else {
                (l.names.post_norm == name).then_some((li, true))
            }
        })
    }

    /// A decoder layer's RMSNorm weight by tensor name (`model.layers.0.input_layernorm.weight`).
    pub fn norm_weight(&self, name: &str) -> Option<&Tensor> {
        let (li, post) = self.norm_index(name)?;
        let l = &self.layers[li];
        Some(if post { &l.post_norm } else { &l.input_norm })
    }

    /// Replaces a decoder layer's RMSNorm weight (same shape).
    pub fn set_norm_weight(&mut self, name: &str, weight: Tensor) -> Result<()> {
        let (li, post) =
            self.norm_index(name).ok_or_else(|| EvalError::InvalidArgument(format!("no norm named `{name}`")))?;
        let l = &mut self.layers[li];
        let slot = if post { &mut l.post_norm } else { &mut l.input_norm };
        if slot.dims() != weight.dims() {
            return Err(EvalError::InvalidArgument(format!(
                "`{name}`: new weight {:?} does not match {:?}",
                weight.dims(),
                slot.dims()
            )));
        }
        *slot = weight;
        Ok(())
    }

    /// The dense weight `[out, in]` of a linear layer by module name (`None` if quantized or
    /// unknown); a streamed model's is read from its file.
    pub fn linear_weight(&self, name: &str) -> Result<Option<Tensor>> {
        match self.linear_slot(name) {
            Some(l) => l.dense(),
            None => Ok(None),
        }
    }

    /// Replaces a linear layer's weight (same shape), e.g. with its quantized-then-decoded values,
    /// so later layers see what the compressed model computes.
    pub fn set_linear_weight(&mut self, name: &str, weight: Tensor) -> Result<()> {
        let slot = self
            .linear_slot_mut(name)
            .ok_or_else(|| EvalError::InvalidArgument(format!("no linear layer named `{name}`")))?;
        if let Some(old) = slot.dims()
            && old != weight.dims()
        {
            return Err(EvalError::InvalidArgument(format!(
                "`{name}`: new weight {:?} does not match {old:?}",
                weight.dims()
            )));
        }
        *slot = Linear::Dense(weight);
        Ok(())
    }

    /// The loaded layer holding linear `name`, and the linear's place in [`Layer::linears`].
    fn linear_index(&self, name: &str) -> Option<(usize, usize)> {
        self.layers.iter().enumerate().filter(|(_, l)| l.loaded).find_map(|(li, l)| {
            let names = &l.names;
            let all = names.qkv.iter().chain(&names.o).chain(&names.gate_up).chain(&names.down);
            all.into_iter().position(|n| n == name).map(|k| (li, k))
        })
    }

    fn linear_slot(&self, name: &str) -> Option<&Linear> {
        if name == HEAD {
            return Some(&self.lm_head);
        }
        let (li, k) = self.linear_index(name)?;
        self.layers[li].linears().nth(k)
    }

    fn linear_slot_mut(&mut self, name: &str) -> Option<&mut Linear> {
        if name == HEAD {
            return Some(&mut self.lm_head);
        }
        let (li, k) = self.linear_index(name)?;
        self.layers[li].linears_mut().nth(k)
    }

    /// One decoder layer: attention (with the cache, when given) and the gated MLP, residuals
    /// included. `rope` is the (cos, sin) rows of these positions and the first position.
    fn layer(
        &self,
        li: usize,
        x: &Tensor,
        rope: (&Tensor, &Tensor, usize),
        cache: Option<&mut KvCache>,
        sink: &mut Option<&mut dyn ActivationSink>,
    ) -> Result<Tensor> {
        let (cos, sin, pos) = rope;
        let cfg = &self.config;
        let layer = self.layers.get(li).ok_or_else(|| EvalError::InvalidArgument(format!("no layer {li}")))?;
        if !layer.loaded {
            return Err(EvalError::InvalidArgument(format!("layer {li} of a streamed model is not loaded")));
        }
        let (b, s, _) = x.dims3()?;
        let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_dim());
        let eps = cfg.rms_norm_eps as f32;
        let h = candle_nn::ops::rms_norm(x, &layer.input_norm, eps)?;
        emit(sink, li, &layer.names.qkv, &h)?;
        let (mut q, mut k, mut v) = match layer.qkv.as_slice() {
            [q, k, v] => (q.forward(&h)?, k.forward(&h)?, v.forward(&h)?),
            [fused] => {
                let y = fused.forward(&h)?;
                let (qn, kn) = (nh * hd, nkv * hd);
                (y.narrow(D::Minus1, 0, qn)?, y.narrow(D::Minus1, qn, kn)?, y.narrow(D::Minus1, qn + kn, kn)?)
            }
            _ => return Err(EvalError::InvalidArgument(format!("layer {li}: no q/k/v projections"))),
        };
        if let Some([qb, kb, vb]) = &layer.qkv_bias {
            (q, k, v) = (q.broadcast_add(qb)?, k.broadcast_add(kb)?, v.broadcast_add(vb)?);
        }
        let (mut q, mut k) = (q.reshape((b, s, nh, hd))?, k.reshape((b, s, nkv, hd))?);
        if let Some([qn, kn]) = &layer.qk_norm {
            (q, k) = (candle_nn::ops::rms_norm(&q, qn, eps)?, candle_nn::ops::rms_norm(&k, kn, eps)?);
        }
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let v = v.reshape((b, s, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = match cache {
            Some(c) => {
                let slot = c
                    .layers
                    .get_mut(li)
                    .ok_or_else(|| EvalError::InvalidArgument("cache from another model".to_string()))?;
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };
        let y = causal_attention_with(&q, &k, &v, pos, cfg.scores())?.transpose(1, 2)?.reshape((b, s, nh * hd))?;
        emit(sink, li, &layer.names.o, &y)?;
        let mut attn = layer.o.forward(&y)?;
        if let Some([after_attn, _]) = &layer.sandwich {
            attn = candle_nn::ops::rms_norm(&attn, after_attn, eps)?;
        }
        let x = (x + attn)?;
        let h = candle_nn::ops::rms_norm(&x, &layer.post_norm, eps)?;
        emit(sink, li, &layer.names.gate_up, &h)?;
        let (g, u) = match layer.gate_up.as_slice() {
            [gate, up] => (gate.forward(&h)?, up.forward(&h)?),
            [fused] => {
                let y = fused.forward(&h)?;
                let ff = cfg.intermediate_size;
                (y.narrow(D::Minus1, 0, ff)?, y.narrow(D::Minus1, ff, ff)?)
            }
            _ => return Err(EvalError::InvalidArgument(format!("layer {li}: no gate/up projections"))),
        };
        let g = match cfg.activation().map_err(EvalError::InvalidArgument)? {
            Activation::Silu => candle_nn::ops::silu(&g)?,
            Activation::GeluTanh => g.gelu()?,
        };
        let m = (g * u)?;
        emit(sink, li, &layer.names.down, &m)?;
        let mut mlp = layer.down.forward(&m)?;
        if let Some([_, after_mlp]) = &layer.sandwich {
            mlp = candle_nn::ops::rms_norm(&mlp, after_mlp, eps)?;
        }
        Ok((x + mlp)?)
    }

    /// Greedy (argmax) continuation: feeds `prompt`, then appends `steps` argmax tokens using the
    /// KV cache. Returns prompt + continuation.
    pub fn greedy(&self, prompt: &[u32], steps: usize) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(EvalError::InvalidArgument("empty prompt".to_string()));
        }
        let mut cache = self.new_cache();
        let mut out = prompt.to_vec();
        let mut input = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        for _ in 0..steps {
            let logits = self.forward(&input, Some(&mut cache), None)?;
            let last = logits.squeeze(0)?.get(logits.dim(1)? - 1)?;
            let next = last.argmax(D::Minus1)?.to_scalar::<u32>()?;
            out.push(next);
            input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
        }
        Ok(out)
    }
}

/// A decoder's final norm and LM head on their own: logits of its last layer's output exactly as
/// [`LlamaModel::forward`] computes them.
#[derive(Clone)]
pub struct LmHead {
    norm: Tensor,
    lm_head: Linear,
    eps: f32,
    /// Gemma 2's `cap · tanh(logit / cap)`.
    softcap: Option<f64>,
}

impl LmHead {
    /// Logits `[batch, seq, vocab]` of hidden states `[batch, seq, hidden]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.lm_head.forward(&candle_nn::ops::rms_norm(x, &self.norm, self.eps)?)?;
        Ok(match self.softcap {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        })
    }
}

/// An RMSNorm weight as the forward pass multiplies by it: Gemma's checkpoints store w for a
/// scale of 1 + w.
fn norm_weight(w: &mut Weights<'_>, config: &LlamaConfig, name: &str) -> Result<Tensor> {
    let t = w.take(name, &[config.hidden_size])?;
    if config.gemma() { Ok((t + 1.0)?) } else { Ok(t) }
}

/// The module and tensor names of decoder layer `i`.
fn layer_names(i: usize, config: &LlamaConfig) -> LayerNames {
    let fused = config.fused();
    let p = format!("model.layers.{i}");
    let attn = format!("{p}.self_attn");
    let mlp = format!("{p}.mlp");
    let (qkv, gate_up): (&[&str], &[&str]) = if fused {
        (&["qkv_proj"], &["gate_up_proj"])
    } else {
        (&["q_proj", "k_proj", "v_proj"], &["gate_proj", "up_proj"])
    };
    LayerNames {
        input_norm: format!("{p}.input_layernorm.weight"),
        post_norm: if config.gemma() {
            format!("{p}.pre_feedforward_layernorm.weight")
        } else {
            format!("{p}.post_attention_layernorm.weight")
        },
        sandwich: config.gemma().then(|| {
            [format!("{p}.post_attention_layernorm.weight"), format!("{p}.post_feedforward_layernorm.weight")]
        }),
        qkv: qkv.iter().map(|n| format!("{attn}.{n}")).collect(),
        o: vec![format!("{attn}.o_proj")],
        gate_up: gate_up.iter().map(|n| format!("{mlp}.{n}")).collect(),
        down: vec![format!("{mlp}.down_proj")],
    }
}

type LinearLoader<'l, 'w> = dyn FnMut(&mut Weights<'w>, String, [usize; 2]) -> Result<Linear> + 'l;

/// Decoder layer `i`'s weights from `w`, each linear through `linear` (dense or quantized).
fn build_layer<'w>(
    w: &mut Weights<'w>,
    config: &LlamaConfig,
    i: usize,
    linear: &mut LinearLoader<'_, 'w>,
) -> Result<Layer> {
    let (h, hd) = (config.hidden_size, config.head_dim());
    let (nh, nkv, ff) = (config.num_attention_heads, config.kv_heads(), config.intermediate_size);
    let names = layer_names(i, config);
    let attn = format!("model.layers.{i}.self_attn");
    let sandwich = match &names.sandwich {
        Some([a, m]) => Some([norm_weight(w, config, a)?, norm_weight(w, config, m)?]),
        None => None,
    };
    let (qkv, gate_up) = if config.fused() {
        let qkv = vec![linear(w, names.qkv[0].clone(), [(nh + 2 * nkv) * hd, h])?];
        (qkv, vec![linear(w, names.gate_up[0].clone(), [2 * ff, h])?])
    } else {
        let qkv = vec![
            linear(w, names.qkv[0].clone(), [nh * hd, h])?,
            linear(w, names.qkv[1].clone(), [nkv * hd, h])?,
            linear(w, names.qkv[2].clone(), [nkv * hd, h])?,
        ];
        (qkv, vec![linear(w, names.gate_up[0].clone(), [ff, h])?, linear(w, names.gate_up[1].clone(), [ff, h])?])
    };
    Ok(Layer {
        input_norm: norm_weight(w, config, &names.input_norm)?,
        post_norm: norm_weight(w, config, &names.post_norm)?,
        sandwich,
        qkv,
        qkv_bias: w.take_all_or_none([
            (format!("{attn}.q_proj.bias"), nh * hd),
            (format!("{attn}.k_proj.bias"), nkv * hd),
            (format!("{attn}.v_proj.bias"), nkv * hd),
        ])?,
        qk_norm: w.take_all_or_none([(format!("{attn}.q_norm.weight"), hd), (format!("{attn}.k_norm.weight"), hd)])?,
        o: linear(w, names.o[0].clone(), [h, nh * hd])?,
        gate_up,
        down: linear(w, names.down[0].clone(), [h, ff])?,
        names,
        loaded: true,
    })
}

/// A layer of a streamed model whose weights are not in memory: its names only.
fn released_layer(i: usize, config: &LlamaConfig) -> Result<Layer> {
    let empty = Tensor::zeros(0, DType::F32, &Device::Cpu)?;
    let dense = || Linear::Dense(empty.clone());
    let names = layer_names(i, config);
    Ok(Layer {
        input_norm: empty.clone(),
        post_norm: empty.clone(),
        qkv: names.qkv.iter().map(|_| dense()).collect(),
        qkv_bias: None,
        qk_norm: None,
        sandwich: None,
        o: dense(),
        gate_up: names.gate_up.iter().map(|_| dense()).collect(),
        down: dense(),
        names,
        loaded: false,
    })
}

impl Layer {
    /// The linears in the order of their names: q/k/v (or qkv), o, gate/up (or gate_up), down.
    fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.qkv.iter().chain(std::iter::once(&self.o)).chain(&self.gate_up).chain(std::iter::once(&self.down))
    }

    /// [`Layer::linears`], to replace one.
    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        let (o, down) = (std::iter::once(&mut self.o), std::iter::once(&mut self.down));
        self.qkv.iter_mut().chain(o).chain(self.gate_up.iter_mut()).chain(down)
    }
}

/// `q4_1 ×210, q8_0 ×1` for [`WeightMode::Stored`].
fn stored_mode(tensors: &[QuantizedTensor]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for t in tensors {
        *by.entry(t.format.as_str()).or_default() += 1;
    }
    let list: Vec<String> = by.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    if list.is_empty() { "dense (no block type candle runs)".into() } else { list.join(", ") }
}

/// The GGUF blocks of the linear `name` (HF module name) as a candle QTensor `[out, in]`, with
/// LLaMA's Q/K rows put back in HF order (GGUF rows hold whole blocks, so rows move as bytes);
/// `None` when the tensor is stored as a float or a type candle cannot run.
fn stored_block(
    file: &pareto_core::export::gguf::GgufFile,
    name: &str,
    shape: [usize; 2],
    heads: usize,
    kv_heads: usize,
    device: &Device,
) -> Result<Option<(QTensor, String)>> {
    use pareto_core::export::gguf::{names, types};
    let hf = format!("{name}.weight");
    // A tied head is the embedding: llama.cpp multiplies by token_embd's blocks.
    let gguf_name = if name == HEAD && file.tensor("output.weight").is_none() {
        "token_embd.weight".to_string()
    } else {
        match names::to_gguf(&hf) {
            Some(n) => n,
            None => return Ok(None),
        }
    };
    let Some(t) = file.tensor(&gguf_name) else { return Ok(None) };
    // Block types only (candle runs each one Pareto decodes); F32/F16/BF16 run dense like any folder's.
    if !pareto_formats::can_dequantize_ggml(t.ggml_type) {
        return Ok(None);
    }
    let Some(dtype) = types::name(t.ggml_type).and_then(|n| parse_ggml_dtype(n).ok()) else { return Ok(None) };
    let mut bytes = file.read_raw(t)?;
    let arch = file.get("general.architecture").and_then(|v| v.as_str()).unwrap_or("");
    let permuted = names::permuted_heads(arch, &gguf_name, heads, kv_heads);
    if permuted > 0 {
        bytes = names::unpermute_rows(&bytes, bytes.len() / shape[0].max(1), permuted).ok_or_else(|| {
            EvalError::InvalidArgument(format!("{gguf_name}: {} rows do not split into {permuted} heads", shape[0]))
        })?;
    }
    let q = candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, &bytes, shape.to_vec(), device)
        .ctx(|| format!("loading the GGUF blocks of `{gguf_name}`"))?;
    Ok(Some((q, ggml_name(dtype))))
}

/// The label of an in-memory quantization, saying how many tensors fell back to F16 (rows that
/// are not a multiple of the type's block). When every one did, nothing of the type would be
/// measured: refused rather than reported as if it had been.
fn quantized_mode(d: GgmlDType, tensors: &[QuantizedTensor]) -> Result<WeightMode> {
    let fell_back = tensors.iter().filter(|t| t.fallback).count();
    if fell_back == tensors.len() {
        return Err(EvalError::InvalidArgument(format!(
            "--quantize {}: none of the model's {} linear weights has rows that are a multiple of {} values, so every one would stay F16 and nothing of {} would be measured; pick a type with smaller blocks (q8_0, q4_0: 32)",
            ggml_name(d),
            tensors.len(),
            d.block_size(),
            ggml_name(d)
        )));
    }
    Ok(WeightMode::Quantized(if fell_back == 0 {
        ggml_name(d)
    } else {
        format!(
            "{} ({fell_back} of {} linear weights in f16: rows not a multiple of {})",
            ggml_name(d),
            tensors.len(),
            d.block_size()
        )
    }))
}

fn ggml_name(d: GgmlDType) -> String {
    match d {
        GgmlDType::F32 => "f32",
        GgmlDType::F16 => "f16",
        GgmlDType::BF16 => "bf16",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::Q4_1 => "q4_1",
        GgmlDType::Q5_0 => "q5_0",
        GgmlDType::Q5_1 => "q5_1",
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q8_1 => "q8_1",
        GgmlDType::Q2K => "q2_k",
        GgmlDType::Q3K => "q3_k",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q5K => "q5_k",
        GgmlDType::Q6K => "q6_k",
        GgmlDType::Q8K => "q8_k",
    }
    .to_string()
}

fn emit(sink: &mut Option<&mut dyn ActivationSink>, layer: usize, linears: &[String], x: &Tensor) -> Result<()> {
    let Some(sink) = sink.as_deref_mut() else {
        return Ok(());
    };
    let cols = x.dim(D::Minus1)?;
    let flat = x.reshape(((), cols))?.to_dtype(DType::F32)?;
    let rows = flat.dim(0)?;
    let data = flat.flatten_all()?.to_vec1::<f32>()?;
    sink.accept(LinearInput { layer, linears, rows, cols, data: &data })
}

/// cos/sin tables `[max_pos, head_dim / 2]` for rotate_half RoPE.
fn rope_tables(cfg: &LlamaConfig, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = cfg.head_dim();
    let divisors = cfg
        .rope_divisors()
        .map_err(|message| EvalError::InvalidArgument(format!("rope_scaling: {message}")))?
        .unwrap_or_else(|| vec![1.0; hd / 2]);
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| (1.0 / cfg.rope_theta.powf(2.0 * i as f64 / hd as f64) / f64::from(divisors[i])) as f32)
        .collect();
    let n = cfg.max_position_embeddings;
    let mut angles = Vec::with_capacity(n * inv.len());
    for p in 0..n {
        angles.extend(inv.iter().map(|f| p as f32 * f));
    }
    let t = Tensor::from_vec(angles, (n, hd / 2), device)?;
    Ok((t.cos()?, t.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn stories() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K")
    }

    /// Karpathy's documented stories260K sample, as ids (PROVENANCE reference 1).
    pub(crate) const GREEDY_REFERENCE: [u32; 61] = [
        1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410,
        408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388,
        426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415,
    ];

    #[test]
    fn greedy_60_steps_from_bos_equals_the_reference() {
        let m = LlamaModel::load(&stories(), &Device::Cpu).unwrap();
        assert_eq!(m.greedy(&[1], 60).unwrap(), GREEDY_REFERENCE.to_vec());
    }

    #[test]
    fn top5_logits_after_bos_match_the_reference() {
        let m = LlamaModel::load(&stories(), &Device::Cpu).unwrap();
        let ids = Tensor::new(&[[1u32]], &Device::Cpu).unwrap();
        let logits = m.forward(&ids, None, None).unwrap().flatten_all().unwrap();
        let v = logits.to_vec1::<f32>().unwrap();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        let expected = [(403, 17.0235), (385, 15.4062), (410, 13.1083), (317, 12.7692), (407, 12.4181)];
        for (k, (id, logit)) in expected.iter().enumerate() {
            assert_eq!(idx[k], *id);
            assert!((f64::from(v[*id]) - logit).abs() < 1e-3, "{id}: {} vs {logit}", v[*id]);
        }
    }

    #[test]
    fn cached_decoding_equals_one_full_pass() {
        let m = LlamaModel::load(&stories(), &Device::Cpu).unwrap();
        let ids: Vec<u32> = GREEDY_REFERENCE[..20].to_vec();
        let full =
            m.forward(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(), None, None).unwrap();
        let mut cache = m.new_cache();
        let head = Tensor::new(&ids[..12], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        m.forward(&head, Some(&mut cache), None).unwrap();
        let mut last = None;
        for &t in &ids[12..] {
            let x = Tensor::new(&[t], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            last = Some(m.forward(&x, Some(&mut cache), None).unwrap());
        }
        assert_eq!(cache.pos, 20);
        let a = full.get(0).unwrap().get(19).unwrap().to_vec1::<f32>().unwrap();
        let b = last.unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "max |Δlogit| {diff}");
    }

    #[test]
    fn quantized_q8_0_keeps_172_wide_rows_in_f16_and_stays_close() {
        let m = LlamaModel::load_quantized(&stories(), &Device::Cpu, GgmlDType::Q8_0).unwrap();
        let q = m.quantized_tensors();
        assert_eq!(q.len(), 5 * 7 + 1);
        for t in q {
            let down = t.name.ends_with("down_proj");
            assert_eq!(t.fallback, down, "{t:?}");
            assert_eq!(t.format, if down { "f16" } else { "q8_0" });
        }
        let out = m.greedy(&[1], 20).unwrap();
        assert_eq!(out, GREEDY_REFERENCE[..21].to_vec(), "q8_0 should not change the greedy text");
        // q4_k's 256-value blocks fit none of its rows (64 and 172 wide): nothing would be
        // measured, so nothing is reported.
        let e = LlamaModel::load_quantized(&stories(), &Device::Cpu, GgmlDType::Q4K).unwrap_err().to_string();
        assert!(e.contains("multiple of 256") && e.contains("nothing of q4_k would be measured"), "{e}");
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("pareto-eval-llama-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = std::fs::read_to_string(stories().join("config.json")).unwrap();
        std::fs::write(
            dir.join("config.json"),
            cfg.replace("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3"),
        )
        .unwrap();
        let e = LlamaModel::load(&dir, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("multiple of num_key_value_heads 3"), "{e}");
        std::fs::write(dir.join("config.json"), cfg).unwrap();
        let e = LlamaModel::load(&dir, &Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("no .safetensors weights"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(parse_ggml_dtype("q9_9").is_err());
        assert_eq!(parse_ggml_dtype("Q4_K").unwrap(), GgmlDType::Q4K);
    }
}
