//! Codec throughput on LLaMA-8B-shaped rows (cols 14336).
//! `cargo bench -p pareto-formats --bench codecs`; rows via PARETO_BENCH_ROWS (default 512).
//! Prints a markdown table of ns/weight: quantize on 1 thread and on all
//! threads, dequantize on all threads (best of 3 runs each).

use std::time::Instant;

use pareto_formats::{Parallelism, registry};

const COLS: usize = 14336;

fn best_of<F: FnMut()>(n: usize, mut f: F) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let rows: usize = std::env::var("PARETO_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(512);
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let n = rows * COLS;
    let mut state = 0x1234_5678_9abc_def0u64;
    let w: Vec<f32> = (0..n)
        .map(|_| {
            // xorshift + Irwin-Hall(4): roughly N(0, 1), no libm.
            let mut u = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / 16_777_216.0
            };
            (u() + u() + u() + u() - 2.0) * 1.732_050_8
        })
        .collect();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("rayon pool");
    let threads = rayon::current_num_threads();
    println!("shape [{rows}, {COLS}], {threads} threads; ns/weight, best of 3\n");
    println!(
        "| format | quantize 1 thread | quantize {threads} threads | dequantize {threads} threads | fake_quantize {threads} threads |"
    );
    println!("|---|---|---|---|---|");
    for f in registry() {
        if filter.as_deref().is_some_and(|p| !f.id.contains(p)) {
            continue;
        }
        let ns = |s: f64| s * 1e9 / n as f64;
        let q1 = best_of(3, || {
            one.install(|| {
                std::hint::black_box(f.quantize_with(&w, rows, COLS, Parallelism::Rayon).expect("quantize"))
            });
        });
        let qn = best_of(3, || {
            std::hint::black_box(f.quantize(&w, rows, COLS).expect("quantize"));
        });
        let q = f.quantize(&w, rows, COLS).expect("quantize");
        let dn = best_of(3, || {
            std::hint::black_box(f.dequantize(&q).expect("dequantize"));
        });
        let mut scratch = w.clone();
        let fk = best_of(3, || {
            scratch.copy_from_slice(&w);
            f.fake_quantize(&mut scratch, rows, COLS).expect("fake");
        });
        println!("| {} | {:.2} | {:.2} | {:.2} | {:.2} |", f.id, ns(q1), ns(qn), ns(dn), ns(fk));
    }
}
