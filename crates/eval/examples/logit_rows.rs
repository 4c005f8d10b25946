//! Times the next-token statistics of a validation and of a sensitivity-scan measurement on
//! SmolLM2-135M-shaped logits (2,048 positions × 49,152 tokens): candle's composed ops (log-softmax
//! of each side, exp, difference, product, sum, argmax) against the fused rows of
//! `pareto_eval::logits`, in the same process, with the results side by side.
//!
//! `cargo run --release -p pareto-eval --example logit_rows [POSITIONS] [VOCAB]`

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor};
use pareto_eval::logits::{Reference, compare};

fn main() -> pareto_eval::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a count"));
    let (positions, vocab) = (args.next().unwrap_or(2048), args.next().unwrap_or(49_152));
    let dev = Device::Cpu;
    let p = Tensor::randn(0f32, 3.0, (1, positions, vocab), &dev)?;
    let q = (&p + Tensor::randn(0f32, 0.3, (1, positions, vocab), &dev)?)?;
    let targets = Tensor::zeros((1, positions), DType::U32, &dev)?;
    let reps = 3;

    let t = Instant::now();
    let mut composed = 0.0;
    for _ in 0..reps {
        let lp = candle_nn::ops::log_softmax(&p, D::Minus1)?;
        let lq = candle_nn::ops::log_softmax(&q, D::Minus1)?;
        let kl = (lp.exp()? * (&lp - &lq)?)?.sum(D::Minus1)?;
        composed = f64::from(kl.sum_all()?.to_scalar::<f32>()?);
        let _ = (lp.argmax(D::Minus1)?, lq.argmax(D::Minus1)?);
    }
    let composed_s = t.elapsed().as_secs_f64() / reps as f64;

    let t = Instant::now();
    let mut fused = 0.0;
    for _ in 0..reps {
        fused = compare(&p, &q, &targets)?.kl;
    }
    let fused_s = t.elapsed().as_secs_f64() / reps as f64;

    let t = Instant::now();
    let reference = Reference::new(&p)?;
    let reference_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut kept = 0.0;
    for _ in 0..reps {
        kept = reference.kl_sum(0, &q)?;
    }
    let kept_s = t.elapsed().as_secs_f64() / reps as f64;

    println!("{positions} positions × {vocab} tokens, {} threads", rayon::current_num_threads());
    println!(
        "composed candle ops (log-softmax ×2, exp, sub, mul, sum, argmax ×2): {composed_s:.3} s  Σ KL {composed:.4}"
    );
    println!("fused rows, both sides (logits::compare):                          {fused_s:.3} s  Σ KL {fused:.4}");
    println!(
        "fused rows, kept reference (Reference::kl_sum; built once in {reference_s:.3} s): {kept_s:.3} s  Σ KL {kept:.4}"
    );
    Ok(())
}
