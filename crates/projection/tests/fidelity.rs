//! Fidelity: projected batch-1 decode tok/s within ±30 % of every published measurement in
//! tests/data/decode_reference_points.csv (a copy of shared/reference, header and sources kept).

use pareto_projection::{Calibration, Measurement, reference_points};

fn csv() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/decode_reference_points.csv");
    std::fs::read_to_string(path).expect("reference CSV is part of the crate")
}

#[test]
fn projected_decode_within_30_percent_of_every_reference_row() {
    let rows = reference_points(&csv()).expect("reference CSV parses");
    assert!(rows.len() >= 7, "expected every reference row, got {}", rows.len());
    let misses: Vec<String> = rows
        .iter()
        .filter(|r| !(0.7..=1.3).contains(&r.ratio))
        .map(|r| {
            format!(
                "{} (batch {}): projected {:.2} vs measured {:.2} tok/s, ratio {:.2}",
                r.id, r.batch, r.projected_tok_s, r.measured_tok_s, r.ratio
            )
        })
        .collect();
    assert!(misses.is_empty(), "outside ±30 %:\n{}", misses.join("\n"));
}

#[test]
fn calibrating_on_the_reference_rows_stays_near_the_defaults() {
    let rows = reference_points(&csv()).expect("parses");
    let text = csv();
    // Rebuild measurements from the CSV columns the projection used.
    let ms: Vec<Measurement> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("id,"))
        .zip(&rows)
        .map(|(line, r)| {
            let f: Vec<&str> = line.split(',').collect();
            Measurement {
                label: r.id.clone(),
                bytes_per_token: f[7].parse::<f64>().expect("model_gib") * 1024.0 * 1024.0 * 1024.0,
                bandwidth_gbs: f[2].parse().expect("bw"),
                tokens_per_s: r.measured_tok_s,
            }
        })
        .collect();
    let c = Calibration::fit(&ms).expect("fit");
    assert!((0.6..=0.95).contains(&c.eta_bw), "{c:?}");
    assert!(c.overhead_s < 2e-3, "{c:?}");
    assert!(c.compare(&ms).iter().all(|p| (p.calibrated_tok_s / p.measured_tok_s - 1.0).abs() < 0.3));
}
