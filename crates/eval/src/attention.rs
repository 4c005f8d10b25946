//! Causal scaled-dot-product attention with grouped KV heads.
//!
//! On the CPU with F32 inputs a fused kernel runs: one pass per query row computes the scores of the
//! visible keys only, the softmax and the weighted sum of values. Composed candle ops (repeat KV,
//! matmul, additive mask, softmax, matmul) would materialise a `[batch, heads, seq, keys]` score tensor
//! three times and exponentiate the masked half too; at the small head dims of edge models that memory
//! traffic and per-op dispatch, not arithmetic, is the cost. Other devices and dtypes use the composed
//! ops, which are also the reference the fused kernel is tested against.

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::vector::{dot, exp, max, sum};

/// How scores are formed from q·k: the scale (default 1/√head_dim) and Gemma 2's soft cap
/// (`cap · tanh(score / cap)`, before the mask and softmax).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub scale: Option<f32>,
    pub softcap: Option<f32>,
}

/// Attention output `[b, heads, s, d]` for queries `[b, heads, s, d]` and keys/values
/// `[b, kv_heads, pos + s, d]`: query `i` sees keys `0..=pos + i`.
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize) -> Result<Tensor> {
    causal_attention_with(q, k, v, pos, Scores::default())
}

/// [`causal_attention`] with the scores formed as `scores` says.
pub fn causal_attention_with(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize, scores: Scores) -> Result<Tensor> {
    let fused = matches!(q.device(), Device::Cpu) && [q, k, v].iter().all(|t| t.dtype() == DType::F32);
    if fused {
        Ok(q.apply_op3_no_bwd(k, v, &CausalAttention { pos, scores })?)
    } else {
        composed_with(q, k, v, pos, scores)
    }
}

/// The same attention from candle's generic ops (any device and dtype).
pub fn composed(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize) -> Result<Tensor> {
    composed_with(q, k, v, pos, Scores::default())
}

fn composed_with(q: &Tensor, k: &Tensor, v: &Tensor, pos: usize, scores: Scores) -> Result<Tensor> {
    let (_, nh, s, hd) = q.dims4()?;
    let rep = nh / k.dim(1)?;
    let k = repeat_kv(k, rep)?;
    let v = repeat_kv(v, rep)?;
    let scale = scores.scale.map_or(1.0 / (hd as f64).sqrt(), f64::from);
    let mut att = (q.matmul(&k.t()?)? * scale)?;
    if let Some(cap) = scores.softcap {
        att = ((att / f64::from(cap))?.tanh()? * f64::from(cap))?;
    }
    let att = if s > 1 { att.broadcast_add(&causal_mask(s, pos, q.device())?.to_dtype(att.dtype())?)? } else { att };
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    Ok(att.matmul(&v)?)
}

/// Additive mask `[s, pos + s]`: 0 where query i may see key j (j <= pos + i), -inf elsewhere.
fn causal_mask(s: usize, pos: usize, device: &Device) -> Result<Tensor> {
    let total = pos + s;
    let data: Vec<f32> =
        (0..s).flat_map(|i| (0..total).map(move |j| if j <= pos + i { 0.0 } else { f32::NEG_INFINITY })).collect();
    Ok(Tensor::from_vec(data, (s, total), device)?)
}

/// `[b, n_kv, s, d]` → `[b, n_kv * rep, s, d]`, each kv head repeated for its query group.
fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, nkv, s, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?.expand((b, nkv, rep, s, d))?.reshape((b, nkv * rep, s, d))?)
}

struct CausalAttention {
    pos: usize,
    scores: Scores,
}

/// Contiguous F32 data of a rank-4 tensor with its dims.
fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<(&'a [f32], [usize; 4])> {
    let CpuStorage::F32(all) = s else { candle_core::bail!("{what}: the fused attention kernel takes F32") };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{what}: the fused attention kernel takes contiguous tensors")
    };
    let dims: [usize; 4] =
        l.dims().try_into().map_err(|_| candle_core::Error::Msg(format!("{what}: expected a rank-4 tensor")))?;
    Ok((&all[start..end], dims))
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "pareto-causal-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (q, [b, nh, s, hd]) = f32_data(qs, ql, "queries")?;
        let (k, kd) = f32_data(ks, kl, "keys")?;
        let (v, vd) = f32_data(vs, vl, "values")?;
        let (nkv, t) = (kd[1], kd[2]);
        if kd != vd || kd[0] != b || kd[3] != hd || nkv == 0 || nh % nkv != 0 || t != self.pos + s {
            candle_core::bail!("attention shapes disagree: q {:?}, k {:?}, v {:?}, pos {}", ql.dims(), kd, vd, self.pos)
        }
        let rep = nh / nkv;
        let scale = self.scores.scale.unwrap_or(1.0 / (hd as f32).sqrt());
        let softcap = self.scores.softcap;
        let mut out = vec![0f32; b * nh * s * hd];
        out.par_chunks_mut(s * hd).enumerate().for_each(|(bh, o)| {
            let (bi, h) = (bh / nh, bh % nh);
            let kv = (bi * nkv + h / rep) * t * hd;
            let q = &q[bh * s * hd..][..s * hd];
            attend_head(q, &k[kv..kv + t * hd], &v[kv..kv + t * hd], hd, self.pos, scale, softcap, o);
        });
        Ok((CpuStorage::F32(out), Shape::from((b, nh, s, hd))))
    }
}

/// One head's attention output `[s, d]` into `out`, for queries `q` `[s, d]` and keys and values
/// `[t, d]` (row-major): query `i` sees keys `0..min(pos + i + 1, t)`, so `pos >= t` lets every query
/// see every key (an encoder).
#[allow(clippy::too_many_arguments)]
fn attend_head(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    hd: usize,
    pos: usize,
    scale: f32,
    softcap: Option<f32>,
    out: &mut [f32],
) {
    let t = k.len() / hd;
    // Keys and values transposed to `[d, t]` so that every inner loop runs along the keys:
    // contiguous and long, where the head dim may be as short as 8.
    let kt = transpose(k, hd);
    let vt = transpose(v, hd);
    Head { q, kt: &kt, vt: &vt, hd, t, pos, scale, softcap }.run(out);
}

/// One (batch, head) pair: its queries `[s, d]` and its KV head's keys and values, transposed to
/// `[d, t]`; query `i` sees keys `0..min(pos + i + 1, t)`.
pub(crate) struct Head<'a> {
    pub q: &'a [f32],
    pub kt: &'a [f32],
    pub vt: &'a [f32],
    pub hd: usize,
    pub t: usize,
    pub pos: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
}

impl Head<'_> {
    /// Output rows `[s, d]`, 8-wide where the CPU has AVX2.
    pub(crate) fn run(&self, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
            #[allow(unsafe_code)]
            return unsafe { self.attend_avx2(out) };
        }
        self.attend(out);
    }

    /// The same loops compiled for 8-wide vectors; the default x86-64 target only has 4-wide SSE2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn attend_avx2(&self, out: &mut [f32]) {
        self.attend(out)
    }

    /// Output rows `[s, d]` of this head.
    #[inline(always)]
    fn attend(&self, out: &mut [f32]) {
        let (hd, t) = (self.hd, self.t);
        let mut p = vec![0f32; t];
        for (i, (qi, oi)) in self.q.chunks_exact(hd).zip(out.chunks_exact_mut(hd)).enumerate() {
            let n = (self.pos + i + 1).min(t);
            let p = &mut p[..n];
            p.fill(0.0);
            for (qd, kd) in qi.iter().zip(self.kt.chunks_exact(t)) {
                axpy(p, qd * self.scale, &kd[..n]);
            }
            if let Some(cap) = self.softcap {
                for pj in p.iter_mut() {
                    *pj = cap * (*pj / cap).tanh();
                }
            }
            let max = max(p);
            for pj in p.iter_mut() {
                *pj = exp(*pj - max);
            }
            let inv = 1.0 / sum(p);
            for (od, vd) in oi.iter_mut().zip(self.vt.chunks_exact(t)) {
                *od = dot(p, &vd[..n]) * inv;
            }
        }
    }
}

/// `[t, d]` row-major → `[d, t]`.
pub(crate) fn transpose(x: &[f32], d: usize) -> Vec<f32> {
    let t = x.len() / d;
    let mut out = vec![0f32; x.len()];
    for (j, row) in x.chunks_exact(d).enumerate() {
        for (c, &value) in row.iter().enumerate() {
            out[c * t + j] = value;
        }
    }
    out
}

#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let mut state = seed;
        let data: Vec<f32> = (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn fused_kernel_equals_composed_ops_with_grouped_heads_and_a_cache_offset() {
        for (b, nh, nkv, s, pos, hd) in [(2, 8, 4, 17, 0, 8), (1, 4, 4, 1, 9, 16), (3, 6, 2, 5, 3, 64)] {
            let q = random((b, nh, s, hd), 1);
            let k = random((b, nkv, pos + s, hd), 2);
            let v = random((b, nkv, pos + s, hd), 3);
            let fused = causal_attention(&q, &k, &v, pos).unwrap();
            let reference = composed(&q, &k, &v, pos).unwrap();
            assert_eq!(fused.dims(), reference.dims());
            let d = max_abs_diff(&fused, &reference);
            assert!(d < 1e-5, "b{b} nh{nh} nkv{nkv} s{s} pos{pos} hd{hd}: max |diff| {d}");
            // Gemma 2's scale and soft cap, in both.
            let scores = Scores { scale: Some(0.3), softcap: Some(0.7) };
            let fused = causal_attention_with(&q, &k, &v, pos, scores).unwrap();
            let d = max_abs_diff(&fused, &composed_with(&q, &k, &v, pos, scores).unwrap());
            assert!(d < 1e-5, "soft-capped, hd{hd}: max |diff| {d}");
            assert!(max_abs_diff(&fused, &reference) > 1e-3, "the cap and scale change the output");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn portable_and_avx2_loops_agree() {
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        let (t, hd, s) = (37, 8, 5);
        let data = |seed: u64| random((1, 1, t, hd), seed).flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (q, kt, vt) = (data(1), transpose(&data(2), hd), transpose(&data(3), hd));
        let head = Head { q: &q[..s * hd], kt: &kt, vt: &vt, hd, t, pos: t - s, scale: 0.35, softcap: None };
        let (mut portable, mut avx2) = (vec![0f32; s * hd], vec![0f32; s * hd]);
        head.attend(&mut portable);
        #[allow(unsafe_code)]
        // SAFETY: AVX2 support was checked above.
        unsafe {
            head.attend_avx2(&mut avx2)
        };
        let worst = portable.iter().zip(&avx2).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "max |diff| {worst}");
    }

    #[test]
    fn shapes_that_disagree_are_an_error_not_a_panic() {
        let q = random((1, 4, 3, 8), 1);
        let k = random((1, 3, 3, 8), 2);
        let e = causal_attention(&q, &k, &k, 0).unwrap_err();
        assert!(e.to_string().contains("attention shapes disagree"), "{e}");
    }
}
