//! Wall time of one GPTQ solve (Hessian factorisation + column sweep) per layer shape, on random
//! correlated inputs. `cargo run --release -p pareto-solve --example gptq_timing -- 4096x4096 ...`
//! (shapes `ROWSxCOLS`, rows = output features). Results in BENCHMARKS.md.

use std::time::Instant;

use pareto_solve::{GptqFactor, GptqOptions, Hessian};

fn main() {
    let shapes: Vec<(usize, usize)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            let (r, c) = a.split_once('x')?;
            Some((r.parse().ok()?, c.parse().ok()?))
        })
        .collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    for (rows, cols) in shapes {
        let id = if cols % 128 == 0 { "int4_g128_sym" } else { "int4_g32_sym" };
        let fmt = pareto_formats::lookup(id).expect("registry format");
        // A Gram matrix of rank > cols from 2·cols rows with a shared component (correlated inputs).
        let n = 2 * cols;
        let common: Vec<f32> = (0..cols).map(|_| rnd()).collect();
        let x: Vec<f32> = (0..n * cols).map(|i| rnd() + 0.5 * common[i % cols]).collect();
        let mut h = Hessian::new(cols);
        let t = Instant::now();
        h.add_rows(&x, n).expect("finite inputs");
        let accumulate = t.elapsed().as_secs_f64();
        let w: Vec<f32> = (0..rows * cols).map(|_| rnd() * 0.1).collect();
        let t = Instant::now();
        let factor = GptqFactor::new(&h, &GptqOptions::default()).expect("factor");
        let factored = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = factor.solve(&w, rows, cols, fmt).expect("solve");
        println!(
            "{rows}x{cols} {id}: factor {factored:.3} s, sweep {:.3} s (XᵀX of {n} rows on one core, not part of the solve: {accumulate:.2} s), loss {:.4e}",
            t.elapsed().as_secs_f64(),
            r.loss
        );
    }
}
