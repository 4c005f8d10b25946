//! Fidelity against published batch-1 decode measurements (decode_reference_points.csv): the same
//! decode roofline as the projection, fed each row's bytes, bandwidth and peak.

use serde::{Deserialize, Serialize};

use crate::catalog::GIB;
use crate::csv;
use crate::error::{ProjectionError, Result};
use crate::latency::{Efficiency, Roofline, Work, decode_step};

/// The reference CSV shipped with the crate (header comments keep its sources).
pub const REFERENCE_POINTS_CSV: &str = include_str!("../tests/data/decode_reference_points.csv");

/// One reference row with its projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferencePointResult {
    pub id: String,
    pub device: String,
    pub model: String,
    pub format: String,
    pub batch: u32,
    pub measured_tok_s: f64,
    pub projected_tok_s: f64,
    /// projected / measured.
    pub ratio: f64,
    pub formula: String,
    pub source: String,
}

/// Projects every row of a reference-points CSV with the default efficiencies.
pub fn reference_points(csv_text: &str) -> Result<Vec<ReferencePointResult>> {
    reference_points_with(csv_text, &Efficiency::default())
}

/// Projects every row with the given efficiencies.
pub fn reference_points_with(csv_text: &str, eff: &Efficiency) -> Result<Vec<ReferencePointResult>> {
    const WHAT: &str = "reference points";
    let (header, rows) = csv::parse(csv_text, WHAT)?;
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| ProjectionError::Csv {
            what: WHAT.to_owned(),
            line: 0,
            message: format!("missing column `{name}`"),
        })
    };
    let [id, device, bw, fp16, model, params, format, gib, batch, measured, source] = [
        "id",
        "device",
        "bw_gbs",
        "fp16_tflops",
        "model",
        "params_b",
        "format",
        "model_gib",
        "batch",
        "measured_tok_s",
        "source",
    ]
    .map(col);
    let (id, device, bw, fp16, model, params, format, gib, batch, measured, source) =
        (id?, device?, bw?, fp16?, model?, params?, format?, gib?, batch?, measured?, source?);
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let f = &r.fields;
        let num = |i: usize, name: &str| -> Result<f64> {
            csv::opt_f64(&f[i], name, WHAT, r.line)?.filter(|v| *v > 0.0).ok_or_else(|| ProjectionError::Csv {
                what: WHAT.to_owned(),
                line: r.line,
                message: format!("column `{name}` needs a positive number"),
            })
        };
        let (bw_gbs, tflops, params_b, model_gib, b, tok_s) = (
            num(bw, "bw_gbs")?,
            num(fp16, "fp16_tflops")?,
            num(params, "params_b")?,
            num(gib, "model_gib")?,
            num(batch, "batch")?,
            num(measured, "measured_tok_s")?,
        );
        let work = Work {
            bytes_per_step: model_gib * GIB,
            matmul_params: [params_b * 1e9, 0.0, 0.0],
            kv_bytes_per_token: None,
            attn_flops_per_ctx: 0.0,
        };
        let roof = Roofline { bw: Some(bw_gbs * 1e9), peak: [Some(tflops * 1e12), None, None] };
        let step = decode_step(&work, &roof, eff, b, 0.0);
        let t = step.total.unwrap_or(f64::INFINITY);
        let projected = b / t;
        out.push(ReferencePointResult {
            id: f[id].trim().to_owned(),
            device: f[device].trim().to_owned(),
            model: f[model].trim().to_owned(),
            format: f[format].trim().to_owned(),
            batch: b as u32,
            measured_tok_s: tok_s,
            projected_tok_s: projected,
            ratio: projected / tok_s,
            formula: format!(
                "{b} / (max({model_gib} GiB / ({} × {bw_gbs} GB/s), 2 × {params_b}e9 × {b} / ({} × {tflops} TFLOP/s)) + {} ms); short context, KV ignored",
                eff.eta_bw,
                eff.eta_compute,
                eff.overhead_s * 1e3
            ),
            source: f[source].trim().to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_row_within_30_percent() -> Result<()> {
        let rows = reference_points(REFERENCE_POINTS_CSV)?;
        assert_eq!(rows.len(), 7);
        for r in &rows {
            assert!(
                (0.7..=1.3).contains(&r.ratio),
                "{}: projected {:.1} vs measured {:.1} tok/s",
                r.id,
                r.projected_tok_s,
                r.measured_tok_s
            );
        }
        Ok(())
    }

    #[test]
    fn missing_column_and_bad_cell_are_errors() {
        assert!(reference_points("id,device\nx,y\n").is_err());
        let bad = REFERENCE_POINTS_CSV.replace(",61.0,", ",-61.0,");
        let e = reference_points(&bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("measured_tok_s"), "{e}");
    }
}
