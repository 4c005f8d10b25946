//! Mixed precision under a budget on the trained stories260K: the scan's single-tensor KLs, the
//! knapsack's recipe at the size of a uniform recipe, and the measured KL on held-out text.

use std::path::Path;

use pareto_core::job::JobContext;
use pareto_core::recipe::allocate::{Knapsack, allocated_recipe};
use pareto_core::{CompressOptions, Model, Recipe, compress};
use pareto_eval::{Compressed, EvalOptions};
use pareto_runs::scan::{ScanSpec, groups, scan};

use crate::common::{repo_root, stories};

fn held_out_kl(original: &Path, compressed: &Path) -> f64 {
    let opts = EvalOptions {
        compressed: Some(Compressed::Folder(compressed.to_path_buf())),
        greedy_steps: 0,
        ..Default::default()
    };
    let r = pareto_eval::compare(original, compressed, &opts, &JobContext::silent()).unwrap();
    r.decoder.unwrap().comparison.unwrap().mean_kl
}

#[test]
fn allocation_beats_uniform_int4_at_the_same_size_on_held_out_text() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    // Scanned on text after the first 65,536 characters; judged on those (eval's default protocol).
    let spec = ScanSpec {
        skip_chars: 65_536,
        formats: ["int4_g32_asym", "int4_g32_sym", "int4_g64_sym", "int8_channel", "f16"].map(String::from).to_vec(),
        ..ScanSpec::new(repo_root().join("assets/samples/tinystories/tinystories-valid-excerpt.txt"))
    };
    let s = scan(&stories(), &spec, &JobContext::silent()).unwrap();
    assert_eq!(s.tokens, 2048);
    assert!(s.proxy_spearman.unwrap() > 0.6, "{:?}", s.proxy_spearman);
    let uniform = Recipe::load("w4-g32").unwrap();
    let plan = uniform.resolve(&model).unwrap();
    let names: Vec<String> =
        plan.tensors.iter().filter(|t| t.action.format.is_some()).map(|t| t.source_name.clone()).collect();
    let fixed: u64 = plan.tensors.iter().filter(|t| t.action.format.is_none()).map(|t| t.planned_bytes).sum();
    let g = groups(&s, &names, false);
    let ks = Knapsack::new(&g).unwrap();
    let alloc = ks.solve(plan.totals.planned_bytes - fixed).unwrap();
    let auto = allocated_recipe(&uniform, &g, &alloc, "auto", "test");
    let auto_plan = auto.resolve(&model).unwrap();
    assert!(auto_plan.totals.planned_bytes <= plan.totals.planned_bytes);
    let mut kl = Vec::new();
    for (name, p) in [("uniform", &plan), ("auto", &auto_plan)] {
        let out = tmp.path().join(name);
        compress(&model, p, &CompressOptions::new(&out), &JobContext::silent()).unwrap();
        kl.push(held_out_kl(&stories(), &out));
    }
    // Measured: 0.0974 vs 0.0737 (0.76×); the sum of single-tensor KLs predicts the order.
    assert!(kl[1] < 0.85 * kl[0], "allocation {} vs uniform int4 g32 {}", kl[1], kl[0]);
}
