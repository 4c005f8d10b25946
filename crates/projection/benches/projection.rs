//! Full projection of an 8B-shaped plan (Llama-3-8B, 291 tensors): original BF16 vs int4,
//! on one device, with the right-sizing ranking over the whole catalog.

use criterion::{Criterion, criterion_group, criterion_main};
use pareto_projection::*;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("catalog");
    let scenario = Scenario::preset("high-volume-api").expect("preset");
    let shape = ModelShape::llama3_8b();
    let original = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
    let int4 = llama3_8b_weights("int4_g128_sym", 4.25, ComputePrecision::Fp16);
    assert_eq!(original.len(), 291);
    let device = catalog.get("h100_sxm").expect("device");
    let with_rank = ProjectionRequest {
        shape: Some(&shape),
        original: &original,
        compressed: Some(&int4),
        device,
        scenario: &scenario,
        catalog: Some(&catalog),
        efficiency: Efficiency::default(),
    };
    c.bench_function("project_8b_orig_vs_int4_with_ranking", |b| b.iter(|| project(black_box(&with_rank))));
    let plain = ProjectionRequest { catalog: None, ..with_rank.clone() };
    c.bench_function("project_8b_orig_vs_int4", |b| b.iter(|| project(black_box(&plain))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
