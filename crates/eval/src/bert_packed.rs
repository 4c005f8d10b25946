//! The BERT encoder forward pass on the CPU over packed token rows: the sentences of a batch are
//! laid end to end without padding, so every linear layer is one `[tokens, in] × [in, out]` matrix
//! product (bias and residual folded into its accumulator) and attention runs per sentence and head
//! through the fused kernel of [`crate::attention`]. candle's `BertModel` pads every sentence to the
//! batch's longest, materialises `[batch, heads, len, len]` scores and spends a quarter of its time
//! in scalar `erf`/`exp` calls and per-op buffers; this pass computes the same function (tested
//! against it) at about twice its speed, which is what bounds `pareto cache` on a query log.
//! Other devices keep candle's model.

use std::path::Path;

use candle_core::DType;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

use crate::attention::{Head, transpose};
use crate::error::{CandleContext, EvalError, Result};
use crate::vector::{dot, erf, exp, sum};

/// One sentence's token ids (special tokens included, no padding).
pub(crate) type Ids<'a> = &'a [u32];

/// A linear layer stored for row-major products: `weight` is `[in, out]` (transposed from the
/// checkpoint's `[out, in]` once at load).
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections side by side: `[hidden, 3·hidden]`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    up: Dense,
    down: Dense,
    output_norm: Norm,
}

pub(crate) struct PackedBert {
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's row: sentence encoders embed single segments.
    segment: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    vocab: usize,
    max_positions: usize,
    eps: f32,
    act: HiddenAct,
}

fn load_vec(vb: &VarBuilder, shape: &[usize], name: &str) -> Result<Vec<f32>> {
    let t = vb.get(shape, name).ctx(|| format!("loading `{}.{name}`", vb.prefix()))?;
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn dense(vb: VarBuilder, inputs: usize, outputs: usize) -> Result<Dense> {
    let weight = transpose(&load_vec(&vb, &[outputs, inputs], "weight")?, inputs);
    Ok(Dense { weight, bias: load_vec(&vb, &[outputs], "bias")?, inputs, outputs })
}

/// Three projections of the same input as one: their `[in, out]` weights side by side.
fn concat(parts: [Dense; 3]) -> Dense {
    let inputs = parts[0].inputs;
    let outputs: usize = parts.iter().map(|d| d.outputs).sum();
    let mut weight = Vec::with_capacity(inputs * outputs);
    for i in 0..inputs {
        for d in &parts {
            weight.extend_from_slice(&d.weight[i * d.outputs..(i + 1) * d.outputs]);
        }
    }
    let bias = parts.iter().flat_map(|d| d.bias.iter().copied()).collect();
    Dense { weight, bias, inputs, outputs }
}

fn norm(vb: VarBuilder, width: usize) -> Result<Norm> {
    Ok(Norm { weight: load_vec(&vb, &[width], "weight")?, bias: load_vec(&vb, &[width], "bias")? })
}

impl PackedBert {
    /// Loads the weights candle's `BertModel` would, under the same prefixes (none, `bert.` or the
    /// config's `model_type.`), as F32.
    pub(crate) fn load(vb: VarBuilder, config: &Config, config_path: &Path) -> Result<Self> {
        let mut prefixes = vec![String::new(), "bert".to_string()];
        prefixes.extend(config.model_type.clone());
        let vb = prefixes
            .iter()
            .map(|p| if p.is_empty() { vb.clone() } else { vb.pp(p) })
            .find(|vb| vb.contains_tensor("embeddings.word_embeddings.weight"))
            .unwrap_or(vb);
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || h % config.num_attention_heads != 0 {
            return Err(EvalError::Config {
                path: config_path.to_path_buf(),
                message: format!(
                    "hidden size {h} is not a multiple of the {} attention heads",
                    config.num_attention_heads
                ),
            });
        }
        let emb = vb.pp("embeddings");
        let word = load_vec(&emb, &[config.vocab_size, h], "word_embeddings.weight")?;
        let position = load_vec(&emb, &[config.max_position_embeddings, h], "position_embeddings.weight")?;
        let types = load_vec(&emb, &[config.type_vocab_size, h], "token_type_embeddings.weight")?;
        let embedding_norm = norm(emb.pp("LayerNorm"), h)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            let qkv = concat([
                dense(att.pp("self.query"), h, h)?,
                dense(att.pp("self.key"), h, h)?,
                dense(att.pp("self.value"), h, h)?,
            ]);
            layers.push(Layer {
                qkv,
                attention_out: dense(att.pp("output.dense"), h, h)?,
                attention_norm: norm(att.pp("output.LayerNorm"), h)?,
                up: dense(l.pp("intermediate.dense"), h, inter)?,
                down: dense(l.pp("output.dense"), inter, h)?,
                output_norm: norm(l.pp("output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            word,
            position,
            segment: types[..h].to_vec(),
            embedding_norm,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
            act: config.hidden_act,
        })
    }

    /// Mean-pooled, L2-normalised embedding of each sentence.
    pub(crate) fn embed(&self, sentences: &[Ids]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let spans: Vec<(usize, usize)> = sentences
            .iter()
            .scan(0, |start, ids| {
                let span = (*start, ids.len());
                *start += ids.len();
                Some(span)
            })
            .collect();
        let tokens: usize = sentences.iter().map(|s| s.len()).sum();
        let mut x = vec![0f32; tokens * h];
        for (ids, &(start, len)) in sentences.iter().zip(&spans) {
            if len > self.max_positions {
                return Err(EvalError::InvalidArgument(format!(
                    "a sentence of {len} tokens exceeds the encoder's {} positions",
                    self.max_positions
                )));
            }
            for (p, (&id, row)) in ids.iter().zip(x[start * h..(start + len) * h].chunks_exact_mut(h)).enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(EvalError::InvalidArgument(format!(
                        "token id {id} is outside the encoder's {}-word vocabulary",
                        self.vocab
                    )));
                }
                let (w, pos) = (&self.word[id * h..][..h], &self.position[p * h..][..h]);
                for (((r, &a), &b), &c) in row.iter_mut().zip(w).zip(pos).zip(&self.segment) {
                    *r = a + b + c;
                }
            }
        }
        self.layer_norm(&mut x, &self.embedding_norm);
        let mut qkv = Vec::new();
        let mut ctx = vec![0f32; tokens * h];
        let (mut attended, mut up) = (Vec::new(), Vec::new());
        for layer in &self.layers {
            self.linear(&x, &layer.qkv, None, &mut qkv);
            self.attention(&qkv, &spans, &mut ctx);
            self.linear(&ctx, &layer.attention_out, Some(&x), &mut attended);
            self.layer_norm(&mut attended, &layer.attention_norm);
            self.linear(&attended, &layer.up, None, &mut up);
            self.activate(&mut up);
            self.linear(&up, &layer.down, Some(&attended), &mut x);
            self.layer_norm(&mut x, &layer.output_norm);
        }
        Ok(spans
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; h];
                for row in x[start * h..(start + len) * h].chunks_exact(h) {
                    for (m, &v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let count = len.max(1) as f32;
                mean.iter_mut().for_each(|m| *m /= count);
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect())
    }

    /// `out = residual + bias + input · weight` over all token rows.
    fn linear(&self, input: &[f32], d: &Dense, residual: Option<&[f32]>, out: &mut Vec<f32>) {
        let rows = input.len() / d.inputs;
        out.clear();
        out.reserve(rows * d.outputs);
        match residual {
            Some(r) => {
                for row in r.chunks_exact(d.outputs) {
                    out.extend(row.iter().zip(&d.bias).map(|(a, b)| a + b));
                }
            }
            None => (0..rows).for_each(|_| out.extend_from_slice(&d.bias)),
        }
        matmul_accumulate(input, &d.weight, out, rows, d.inputs, d.outputs);
    }

    /// Scaled dot-product attention of every sentence and head; `qkv` rows hold queries, keys
    /// and values side by side.
    fn attention(&self, qkv: &[f32], spans: &[(usize, usize)], ctx: &mut [f32]) {
        let (h, heads) = (self.hidden, self.heads);
        let hd = h / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut rest = ctx;
        let mut parts = Vec::with_capacity(spans.len());
        for &(start, len) in spans {
            let (mine, tail) = rest.split_at_mut(len * h);
            parts.push((start, len, mine));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(start, len, out)| {
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            // One head's queries as rows `[len, hd]`, its keys and values transposed to `[hd, len]`
            // as the kernel reads them, gathered straight from the packed rows.
            let (mut q, mut kt, mut vt, mut o) =
                (vec![0f32; len * hd], vec![0f32; len * hd], vec![0f32; len * hd], vec![0f32; len * hd]);
            for head in 0..heads {
                let c = head * hd;
                for (j, r) in rows.chunks_exact(3 * h).enumerate() {
                    q[j * hd..(j + 1) * hd].copy_from_slice(&r[c..c + hd]);
                    for d in 0..hd {
                        kt[d * len + j] = r[h + c + d];
                        vt[d * len + j] = r[2 * h + c + d];
                    }
                }
                Head { q: &q, kt: &kt, vt: &vt, hd, t: len, pos: len, scale, softcap: None }.run(&mut o);
                for (dst, src) in out.chunks_exact_mut(h).zip(o.chunks_exact(hd)) {
                    dst[c..c + hd].copy_from_slice(src);
                }
            }
        });
    }

    fn layer_norm(&self, x: &mut [f32], n: &Norm) {
        let (h, eps) = (self.hidden, self.eps);
        x.par_chunks_mut(h * 64).for_each(|rows| {
            for row in rows.chunks_exact_mut(h) {
                let mean = sum(row) / h as f32;
                row.iter_mut().for_each(|v| *v -= mean);
                let var = dot(row, row) / h as f32;
                let inv = 1.0 / (var + eps).sqrt();
                for ((v, &w), &b) in row.iter_mut().zip(&n.weight).zip(&n.bias) {
                    *v = *v * inv * w + b;
                }
            }
        });
    }

    fn activate(&self, x: &mut [f32]) {
        let act = self.act;
        x.par_chunks_mut(16 * 1024).for_each(|chunk| {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
                #[allow(unsafe_code)]
                return unsafe { activate_avx2(act, chunk) };
            }
            activate(act, chunk)
        });
    }
}

/// The activation over a slice; the erf and exp loops vectorize (8-wide under AVX2).
#[inline(always)]
fn activate(act: HiddenAct, chunk: &mut [f32]) {
    match act {
        HiddenAct::Gelu => chunk.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        HiddenAct::GeluApproximate => chunk.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        HiddenAct::Relu => chunk.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// [`activate`] compiled for 8-wide vectors (no FMA: the same roundings as the portable loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn activate_avx2(act: HiddenAct, chunk: &mut [f32]) {
    activate(act, chunk)
}

/// GELU with the exact (erf) form, as BERT's `"gelu"`.
#[inline(always)]
pub(crate) fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU's tanh approximation (`"gelu_approximate"`), tanh from the fast exp of |y|.
#[inline(always)]
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    let y = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    let e = exp(-2.0 * y.abs());
    let tanh = ((1.0 - e) / (1.0 + e)).copysign(y);
    0.5 * x * (1.0 + tanh)
}

/// `out[m×n] += a[m×k] · b[k×n]`, all row-major, on every core (the `gemm` crate candle uses,
/// with its AVX-512 kernels where the CPU has them).
fn matmul_accumulate(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() == m * k && b.len() == k * n && out.len() == m * n, "matrix shapes disagree");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the slices hold exactly the row-major m×k, k×n and m×n matrices the strides describe
    // (asserted above), and `out` is borrowed mutably, so it aliases neither input.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SampleOptions, SampleSet, bundled, load_samples};
    use crate::weights::{load_tensors, read_config};
    use candle_core::{Device, Tensor};
    use candle_transformers::models::bert::BertModel;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn activations_equal_candles_within_a_few_ulp() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 2.5e-3).chain([-30.0, -9.0, 9.0, 30.0]).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        for (ours, theirs) in [
            (xs.iter().map(|&x| gelu_erf(x)).collect::<Vec<_>>(), t.gelu_erf().unwrap()),
            (xs.iter().map(|&x| gelu_tanh(x)).collect::<Vec<_>>(), t.gelu().unwrap()),
        ] {
            let theirs = theirs.to_vec1::<f32>().unwrap();
            for ((x, a), b) in xs.iter().zip(&ours).zip(&theirs) {
                assert!((a - b).abs() <= 4e-7 * x.abs().max(1.0), "gelu({x}): {a} vs candle's {b}");
            }
        }
    }

    #[test]
    fn portable_and_avx2_activations_agree_bit_for_bit() {
        let xs: Vec<f32> = (-5000..=5000).map(|i| i as f32 * 1.7e-3).collect();
        for act in [HiddenAct::Gelu, HiddenAct::GeluApproximate, HiddenAct::Relu] {
            let (mut portable, mut wide) = (xs.clone(), xs.clone());
            activate(act, &mut portable);
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                unsafe {
                    activate_avx2(act, &mut wide)
                };
            } else {
                activate(act, &mut wide);
            }
            #[cfg(not(target_arch = "x86_64"))]
            activate(act, &mut wide);
            let same = portable.iter().zip(&wide).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{act:?}");
            let scalar: Vec<f32> = xs.iter().map(|&x| gelu_erf(x)).collect();
            if act == HiddenAct::Gelu {
                assert!(scalar.iter().zip(&portable).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }

    /// The packed pass against candle's padded `BertModel` on the same weights: every STS-B dev
    /// sentence of the first 600 pairs (3 to 60 tokens), in batches that mix lengths so that most
    /// are padded there.
    #[test]
    fn packed_embeddings_equal_candles_padded_model() {
        let dir = root().join("models/all-MiniLM-L6-v2");
        let SampleSet::Pairs(pairs) = load_samples(&root().join(bundled::STSB_DEV), &SampleOptions::default()).unwrap()
        else {
            panic!("pairs expected")
        };
        let sentences: Vec<&str> =
            pairs.iter().take(600).flat_map(|p| [p.sentence1.as_str(), p.sentence2.as_str()]).collect();
        let (config_path, json) = read_config(&dir).unwrap();
        let config: Config = serde_json::from_value(json).unwrap();
        let vb = || VarBuilder::from_tensors(load_tensors(&dir, &Device::Cpu).unwrap(), DType::F32, &Device::Cpu);
        let packed = PackedBert::load(vb(), &config, &config_path).unwrap();
        let model = BertModel::load(vb(), &config).unwrap();
        let tok = crate::bert::load_bert_tokenizer(&dir.join("tokenizer.json")).unwrap();
        let (mut worst, mut padded) = (1f32, 0);
        for batch in sentences.chunks(48) {
            let enc = tok.encode_batch(batch.to_vec(), true).unwrap();
            let len = enc[0].get_ids().len();
            let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Tensor {
                let v: Vec<u32> = enc.iter().flat_map(|e| f(e).iter().copied()).collect();
                Tensor::from_vec(v, (batch.len(), len), &Device::Cpu).unwrap()
            };
            let (ids, mask) = (flat(|e| e.get_ids()), flat(|e| e.get_attention_mask()));
            let hidden = model.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
            let maskf = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
            let mean = hidden
                .broadcast_mul(&maskf)
                .unwrap()
                .sum(1)
                .unwrap()
                .broadcast_div(&maskf.sum(1).unwrap())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let unpadded: Vec<Vec<u32>> = enc
                .iter()
                .map(|e| e.get_ids()[..e.get_attention_mask().iter().filter(|&&m| m == 1).count()].to_vec())
                .collect();
            padded += unpadded.iter().filter(|ids| ids.len() < len).count();
            let refs: Vec<&[u32]> = unpadded.iter().map(Vec::as_slice).collect();
            for (ours, theirs) in packed.embed(&refs).unwrap().iter().zip(&mean) {
                worst = worst.min(crate::metrics::cosine(ours, theirs) as f32);
            }
        }
        assert!(padded > 1000, "only {padded} sentences were padded");
        assert!(worst > 0.999_999, "worst cosine {worst}");
    }

    #[test]
    fn token_ids_and_lengths_beyond_the_model_are_named_errors() {
        let dir = root().join("models/all-MiniLM-L6-v2");
        let (config_path, json) = read_config(&dir).unwrap();
        let config: Config = serde_json::from_value(json).unwrap();
        let vb = VarBuilder::from_tensors(load_tensors(&dir, &Device::Cpu).unwrap(), DType::F32, &Device::Cpu);
        let packed = PackedBert::load(vb, &config, &config_path).unwrap();
        let err = packed.embed(&[&[101, 40_000, 102]]).unwrap_err().to_string();
        assert!(err.contains("token id 40000") && err.contains("30522"), "{err}");
        let long = vec![101u32; 513];
        let err = packed.embed(&[&long]).unwrap_err().to_string();
        assert!(err.contains("513 tokens") && err.contains("512 positions"), "{err}");
    }
}
