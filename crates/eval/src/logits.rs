//! Next-token statistics of logit rows — log-sum-exp, the negative log-likelihood of the target,
//! argmax agreement and KL(p ‖ q) — read twice per row (its maximum, then the exponential sums),
//! with no temporaries.
//!
//! Composed from candle ops the same numbers take a log-softmax of each side (max, subtract, exp,
//! sum, log, subtract: a pass over `[positions, vocab]` and an allocation of that size each), an
//! exponential of the reference, a difference, a product and a sum. At SmolLM2's 49,152-token
//! vocabulary that was a third of a sensitivity-scan measurement and, after the forward passes,
//! the largest cost of a validation. CPU F32 logits take the fused rows; other devices and dtypes the composed
//! ops, which are also what the fused rows are tested against. Sums are kept in f64.

use candle_core::{CpuStorage, D, DType, Storage, Tensor};
use rayon::prelude::*;

use crate::error::{EvalError, Result};
use crate::vector::{exp, max};

/// Sums over the positions of a comparison of a reference model's next-token distributions `p`
/// with another model's `q`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RowSums {
    pub rows: usize,
    /// Σ −log p(target) and Σ −log q(target).
    pub nll_p: f64,
    pub nll_q: f64,
    /// Σ KL(p ‖ q) over positions (each clamped at 0 against rounding) and its largest term.
    pub kl: f64,
    pub kl_max: f64,
    /// Positions where both argmaxes agree.
    pub agree: usize,
}

impl RowSums {
    fn add(mut self, o: RowSums) -> RowSums {
        self.rows += o.rows;
        self.nll_p += o.nll_p;
        self.nll_q += o.nll_q;
        self.kl += o.kl;
        self.kl_max = self.kl_max.max(o.kl_max);
        self.agree += o.agree;
        self
    }
}

/// Compares logits `p` (the reference) and `q`, both `[..., vocab]`, at every position;
/// `targets` (`[...]`, u32) are the tokens that follow.
pub fn compare(p: &Tensor, q: &Tensor, targets: &Tensor) -> Result<RowSums> {
    if p.dims() != q.dims() {
        return Err(EvalError::InvalidArgument(format!("logits differ in shape: {:?} vs {:?}", p.dims(), q.dims())));
    }
    let vocab = p.dim(D::Minus1)?;
    let targets = target_ids(targets, p.elem_count() / vocab.max(1), vocab)?;
    if !p.device().is_cpu() {
        return composed(p, q, &targets);
    }
    with_rows(p, |p| {
        with_rows(q, |q| {
            let rows: Vec<RowSums> = p
                .par_chunks(vocab)
                .zip(q.par_chunks(vocab))
                .zip(targets.par_iter())
                .map(|((p, q), &t)| dispatch_compare(p, q, t as usize))
                .collect();
            // Summed in row order: the same bits on every run, however the rows were scheduled.
            Ok(rows.into_iter().fold(RowSums::default(), RowSums::add))
        })
    })
}

/// Σ −log softmax(logits)[target] over the positions of `logits` (`[..., vocab]`).
pub fn nll(logits: &Tensor, targets: &Tensor) -> Result<f64> {
    let vocab = logits.dim(D::Minus1)?;
    let targets = target_ids(targets, logits.elem_count() / vocab.max(1), vocab)?;
    if !logits.device().is_cpu() {
        let lp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
        return picked_nll(&lp, &targets);
    }
    with_rows(logits, |rows| {
        let nll: Vec<f64> =
            rows.par_chunks(vocab).zip(targets.par_iter()).map(|(r, &t)| dispatch_nll(r, t as usize)).collect();
        Ok(nll.iter().sum())
    })
}

/// The reference side of many comparisons against the same next-token distributions (a
/// sensitivity scan compares one original with hundreds of perturbed models): its probabilities
/// and Σ p·ln p per row are kept, so each comparison exponentiates the other side only.
pub struct Reference {
    probs: Vec<f32>,
    /// Per row: Σ p·ln p and Σ p of the stored f32 probabilities (whose rounding moves Σ p off 1
    /// by ~1e-8, a first-order error in the KL that renormalising removes).
    neg_entropy: Vec<f64>,
    mass: Vec<f64>,
    vocab: usize,
}

impl Reference {
    /// From logits `[..., vocab]` (any device; kept on the CPU).
    pub fn new(logits: &Tensor) -> Result<Self> {
        let vocab = logits.dim(D::Minus1)?;
        let mut probs: Vec<f32> = logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let rows = probs.len() / vocab.max(1);
        let mut neg_entropy = vec![0.0; rows];
        let mut mass = vec![0.0; rows];
        probs.par_chunks_mut(vocab).zip(neg_entropy.par_iter_mut().zip(mass.par_iter_mut())).for_each(
            |(row, (h, m))| {
                let lse = dispatch_lse(row);
                let (mut sh, mut sm) = (0.0f64, 0.0f64);
                for z in row.iter_mut() {
                    let p = ((f64::from(*z) - lse).exp()) as f32;
                    *z = p;
                    if p > 0.0 {
                        sh += f64::from(p) * f64::from(p).ln();
                        sm += f64::from(p);
                    }
                }
                (*h, *m) = (sh, sm);
            },
        );
        Ok(Reference { probs, neg_entropy, mass, vocab })
    }

    /// Positions held.
    pub fn rows(&self) -> usize {
        self.mass.len()
    }

    /// Σ KL(p ‖ softmax(logits)) over rows `first..` of the reference, one per row of `logits`
    /// (`[..., vocab]`); each term clamped at 0 against rounding.
    pub fn kl_sum(&self, first: usize, logits: &Tensor) -> Result<f64> {
        let vocab = logits.dim(D::Minus1)?;
        let n = logits.elem_count() / vocab.max(1);
        if vocab != self.vocab || first + n > self.rows() {
            return Err(EvalError::InvalidArgument(format!(
                "{n} rows of {vocab} logits from row {first} against a reference of {} rows of {}",
                self.rows(),
                self.vocab
            )));
        }
        let logits = logits.to_device(&candle_core::Device::Cpu)?;
        let p = &self.probs[first * vocab..(first + n) * vocab];
        let (h, m) = (&self.neg_entropy[first..first + n], &self.mass[first..first + n]);
        with_rows(&logits, |q| {
            let kl: Vec<f64> = p
                .par_chunks(vocab)
                .zip(q.par_chunks(vocab))
                .zip(h.par_iter().zip(m.par_iter()))
                .map(|((p, q), (&h, &m))| dispatch_kl_against(p, q, h, m).max(0.0))
                .collect();
            Ok(kl.iter().sum())
        })
    }
}

/// Runs `f` on the contiguous F32 values of a CPU tensor (converted or copied only when it is
/// not already that).
fn with_rows<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.to_dtype(DType::F32)?.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(all)), Some((start, end))) = (&*storage, layout.contiguous_offsets()) else {
        return Err(EvalError::InvalidArgument("fused logit rows take contiguous CPU F32 tensors".into()));
    };
    f(&all[start..end])
}

/// The target ids, one per row, each checked against the vocabulary.
fn target_ids(targets: &Tensor, rows: usize, vocab: usize) -> Result<Vec<u32>> {
    let ids: Vec<u32> = targets.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?;
    if ids.len() != rows {
        return Err(EvalError::InvalidArgument(format!("{} targets for {rows} positions", ids.len())));
    }
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
        return Err(EvalError::InvalidArgument(format!("target token {bad} is outside the {vocab}-token vocabulary")));
    }
    Ok(ids)
}

/// The same sums from candle ops (any device; the reference the fused rows are tested against).
fn composed(p: &Tensor, q: &Tensor, targets: &[u32]) -> Result<RowSums> {
    let lp = candle_nn::ops::log_softmax(&p.to_dtype(DType::F32)?, D::Minus1)?;
    let lq = candle_nn::ops::log_softmax(&q.to_dtype(DType::F32)?, D::Minus1)?;
    let kl = (lp.exp()? * (&lp - &lq)?)?.sum(D::Minus1)?;
    let mut sums = RowSums { rows: targets.len(), ..RowSums::default() };
    for v in kl.flatten_all()?.to_vec1::<f32>()? {
        let v = f64::from(v).max(0.0);
        sums.kl += v;
        sums.kl_max = sums.kl_max.max(v);
    }
    let a = lp.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?;
    let b = lq.argmax(D::Minus1)?.flatten_all()?.to_vec1::<u32>()?;
    sums.agree = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    sums.nll_p = picked_nll(&lp, targets)?;
    sums.nll_q = picked_nll(&lq, targets)?;
    Ok(sums)
}

/// Σ −lp[row, target] over rows of log-probabilities `[..., vocab]`.
fn picked_nll(lp: &Tensor, targets: &[u32]) -> Result<f64> {
    let vocab = lp.dim(D::Minus1)?;
    let ids = Tensor::from_slice(targets, (targets.len(), 1), lp.device())?;
    let picked = lp.reshape(((), vocab))?.gather(&ids, D::Minus1)?;
    Ok(-picked.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| f64::from(x)).sum::<f64>())
}

// Per-row kernels: compiled once more for AVX2 (8-wide f32, 4-wide f64) and chosen at run time,
// as the attention kernel is; the default x86-64 target has 4-wide SSE2 only.

macro_rules! dispatch {
    ($name:ident, $avx2:ident, $row:ident, ($($arg:ident: $ty:ty),*) -> $out:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2($($arg: $ty),*) -> $out {
            $row($($arg),*)
        }

        fn $name($($arg: $ty),*) -> $out {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
                #[allow(unsafe_code)]
                return unsafe { $avx2($($arg),*) };
            }
            $row($($arg),*)
        }
    };
}

dispatch!(dispatch_compare, compare_row_avx2, compare_row, (p: &[f32], q: &[f32], target: usize) -> RowSums);
dispatch!(dispatch_nll, nll_row_avx2, nll_row, (row: &[f32], target: usize) -> f64);
dispatch!(dispatch_lse, lse_row_avx2, lse_row, (row: &[f32]) -> f64);
dispatch!(dispatch_kl_against, kl_against_row_avx2, kl_against_row, (p: &[f32], q: &[f32], neg_entropy: f64, mass: f64) -> f64);

/// The first index holding the row's maximum, and that maximum.
#[inline(always)]
fn argmax(row: &[f32]) -> (usize, f32) {
    let m = max(row);
    (row.iter().position(|&x| x == m).unwrap_or(0), m)
}

/// ln Σ e^z of a row.
#[inline(always)]
fn lse_row(row: &[f32]) -> f64 {
    let m = max(row);
    let mut acc = [0f64; 8];
    let chunks = row.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&z| f64::from(exp(z - m))).sum();
    for z in chunks {
        for l in 0..8 {
            acc[l] += f64::from(exp(z[l] - m));
        }
    }
    f64::from(m) + (acc.iter().sum::<f64>() + tail).ln()
}

#[inline(always)]
fn nll_row(row: &[f32], target: usize) -> f64 {
    lse_row(row) - f64::from(row[target])
}

/// One position of [`compare`]: KL = Σ p (z_p − z_q) − lse_p + lse_q, with p = e^(z_p − m_p) / S_p
/// summed in the same pass as both normalisers.
#[inline(always)]
fn compare_row(p: &[f32], q: &[f32], target: usize) -> RowSums {
    let (ap, mp) = argmax(p);
    let (aq, mq) = argmax(q);
    let (mut sp, mut sq, mut a) = ([0f64; 8], [0f64; 8], [0f64; 8]);
    let (cp, cq) = (p.chunks_exact(8), q.chunks_exact(8));
    let (mut tp, mut tq, mut ta) = (0f64, 0f64, 0f64);
    for (&x, &y) in cp.remainder().iter().zip(cq.remainder()) {
        let e = exp(x - mp);
        tp += f64::from(e);
        tq += f64::from(exp(y - mq));
        ta += f64::from(e * (x - y));
    }
    for (x, y) in cp.zip(cq) {
        for l in 0..8 {
            let e = exp(x[l] - mp);
            sp[l] += f64::from(e);
            sq[l] += f64::from(exp(y[l] - mq));
            a[l] += f64::from(e * (x[l] - y[l]));
        }
    }
    let (sp, sq) = (sp.iter().sum::<f64>() + tp, sq.iter().sum::<f64>() + tq);
    let (lse_p, lse_q) = (f64::from(mp) + sp.ln(), f64::from(mq) + sq.ln());
    let kl = ((a.iter().sum::<f64>() + ta) / sp - lse_p + lse_q).max(0.0);
    RowSums {
        rows: 1,
        nll_p: lse_p - f64::from(p[target]),
        nll_q: lse_q - f64::from(q[target]),
        kl,
        kl_max: kl,
        agree: usize::from(ap == aq),
    }
}

/// KL(p/m ‖ softmax(q)) for stored probabilities p of mass m: (Σ p ln p − Σ p·z_q)/m + lse_q − ln m.
#[inline(always)]
fn kl_against_row(p: &[f32], q: &[f32], neg_entropy: f64, mass: f64) -> f64 {
    let mq = max(q);
    let (mut s, mut d) = ([0f64; 8], [0f64; 8]);
    let (cp, cq) = (p.chunks_exact(8), q.chunks_exact(8));
    let (mut ts, mut td) = (0f64, 0f64);
    for (&x, &y) in cp.remainder().iter().zip(cq.remainder()) {
        ts += f64::from(exp(y - mq));
        td += f64::from(x) * f64::from(y);
    }
    for (x, y) in cp.zip(cq) {
        for l in 0..8 {
            s[l] += f64::from(exp(y[l] - mq));
            d[l] += f64::from(x[l]) * f64::from(y[l]);
        }
    }
    let lse_q = f64::from(mq) + (s.iter().sum::<f64>() + ts).ln();
    (neg_entropy - (d.iter().sum::<f64>() + td)) / mass + lse_q - mass.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Logits shaped like a trained model's: a few likely tokens over a long flat tail.
    fn logits(rows: usize, vocab: usize, seed: u64) -> Tensor {
        let mut state = seed;
        let data: Vec<f32> = (0..rows * vocab)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let noise = (state >> 40) as f32 / (1u64 << 24) as f32;
                noise * 6.0 - 3.0 + if i % 97 == 0 { 9.0 } else { 0.0 }
            })
            .collect();
        Tensor::from_vec(data, (1, rows, vocab), &Device::Cpu).unwrap()
    }

    fn perturbed(p: &Tensor, by: f64, seed: u64) -> Tensor {
        let dims = p.dims().to_vec();
        let noise = logits(dims[1], dims[2], seed);
        (p + (noise * by).unwrap()).unwrap()
    }

    fn targets(rows: usize, vocab: usize) -> Tensor {
        let ids: Vec<u32> = (0..rows).map(|i| ((i * 7919) % vocab) as u32).collect();
        Tensor::from_vec(ids, (1, rows), &Device::Cpu).unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn fused_rows_equal_the_composed_ops() {
        // 1,003 columns: a tail after the 8-wide chunks.
        for (rows, vocab, by) in [(37, 1003, 0.05), (5, 4096, 0.5), (3, 9, 1.0)] {
            let p = logits(rows, vocab, 1);
            let q = perturbed(&p, by, 2);
            let t = targets(rows, vocab);
            let fused = compare(&p, &q, &t).unwrap();
            let reference = composed(&p, &q, &t.flatten_all().unwrap().to_vec1::<u32>().unwrap()).unwrap();
            assert_eq!(fused.rows, rows);
            assert_eq!(fused.agree, reference.agree, "{rows}×{vocab}");
            assert!(close(fused.kl, reference.kl, 1e-4), "KL {} vs {}", fused.kl, reference.kl);
            assert!(close(fused.kl_max, reference.kl_max, 1e-4));
            assert!(close(fused.nll_p, reference.nll_p, 1e-6) && close(fused.nll_q, reference.nll_q, 1e-6));
            assert!(close(nll(&q, &t).unwrap(), reference.nll_q, 1e-6));
            assert!(fused.kl > 0.0);
        }
    }

    #[test]
    fn a_model_against_itself_has_no_divergence_and_full_agreement() {
        let p = logits(16, 2000, 3);
        let t = targets(16, 2000);
        let s = compare(&p, &p, &t).unwrap();
        assert!(s.kl < 1e-9, "{}", s.kl);
        assert_eq!(s.agree, 16);
        assert_eq!(s.nll_p, s.nll_q);
        // The kept side's floor is the fast exponential's error in log-sum-exp (~2e-9 per row);
        // candle's f32 log-softmax composition sits near 1e-7.
        let kept = Reference::new(&p).unwrap().kl_sum(0, &p).unwrap() / 16.0;
        assert!(kept < 1e-8, "{kept}");
    }

    #[test]
    fn a_kept_reference_gives_the_comparison_s_divergence_from_any_row() {
        let p = logits(24, 3001, 4);
        let q = perturbed(&p, 0.1, 5);
        let whole = compare(&p, &q, &targets(24, 3001)).unwrap().kl;
        let reference = Reference::new(&p).unwrap();
        assert_eq!(reference.rows(), 24);
        let kept = reference.kl_sum(0, &q.narrow(1, 0, 10).unwrap()).unwrap()
            + reference.kl_sum(10, &q.narrow(1, 10, 14).unwrap()).unwrap();
        assert!(close(kept, whole, 1e-6), "{kept} vs {whole}");
        assert!(kept > 1e-3);
    }

    #[test]
    fn sums_are_the_same_bits_on_every_run() {
        let p = logits(300, 517, 7);
        let q = perturbed(&p, 0.2, 8);
        let t = targets(300, 517);
        let reference = Reference::new(&p).unwrap();
        let first = (compare(&p, &q, &t).unwrap(), nll(&q, &t).unwrap(), reference.kl_sum(0, &q).unwrap());
        for _ in 0..20 {
            let again = (compare(&p, &q, &t).unwrap(), nll(&q, &t).unwrap(), reference.kl_sum(0, &q).unwrap());
            assert_eq!(again, first);
        }
    }

    #[test]
    fn mismatched_shapes_and_targets_are_named_errors() {
        let p = logits(4, 50, 6);
        let e = compare(&p, &logits(4, 51, 6), &targets(4, 50)).unwrap_err();
        assert!(e.to_string().contains("differ in shape"), "{e}");
        let e = compare(&p, &p, &targets(3, 50)).unwrap_err();
        assert!(e.to_string().contains("3 targets for 4 positions"), "{e}");
        let bad = Tensor::from_vec(vec![0u32, 1, 2, 50], (1, 4), &Device::Cpu).unwrap();
        assert!(nll(&p, &bad).unwrap_err().to_string().contains("outside the 50-token vocabulary"));
        let e = Reference::new(&p).unwrap().kl_sum(2, &p).unwrap_err();
        assert!(e.to_string().contains("from row 2"), "{e}");
    }
}
