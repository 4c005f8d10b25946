//! Calibration of the decode roofline from measured local timings: fit `η_bw` and the fixed
//! per-token overhead so that `1/tok_s = bytes/(η_bw·BW) + t_fixed`, then show measured vs
//! projected.

use serde::{Deserialize, Serialize};

use crate::error::{ProjectionError, Result};
use crate::latency::{DEFAULT_OVERHEAD_S, Efficiency};

/// One measured decode timing (e.g. from the eval crate's local latency run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub label: String,
    /// Bytes of weights (+ KV) read per generated token.
    pub bytes_per_token: f64,
    /// The device's peak memory bandwidth, GB/s.
    pub bandwidth_gbs: f64,
    pub tokens_per_s: f64,
}

/// Fitted efficiency for one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub eta_bw: f64,
    pub overhead_s: f64,
    pub points: usize,
    /// Root-mean-square relative error of the fitted model on the measurements.
    pub rms_rel_error: f64,
    pub method: String,
}

/// Measured vs projected for one measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationPoint {
    pub label: String,
    pub measured_tok_s: f64,
    /// With the crate defaults.
    pub default_tok_s: f64,
    /// With the fitted calibration.
    pub calibrated_tok_s: f64,
}

fn bw_seconds(m: &Measurement) -> f64 {
    m.bytes_per_token / (m.bandwidth_gbs * 1e9)
}

impl Calibration {
    /// Fits `(η_bw, t_fixed)` by least squares on relative error (weights 1/t²). Two or more
    /// distinct byte counts fit both; a single size fixes `t_fixed` at the default and solves
    /// `η_bw`. A negative intercept is clamped to 0 and `η_bw` refitted through the origin.
    pub fn fit(measured: &[Measurement]) -> Result<Self> {
        if measured.is_empty() {
            return Err(ProjectionError::Calibration("no measurements".to_owned()));
        }
        for m in measured {
            let ok = [m.bytes_per_token, m.bandwidth_gbs, m.tokens_per_s].iter().all(|v| v.is_finite() && *v > 0.0);
            if !ok {
                return Err(ProjectionError::Calibration(format!(
                    "measurement `{}` needs positive bytes_per_token, bandwidth_gbs and tokens_per_s",
                    m.label
                )));
            }
        }
        let xs: Vec<f64> = measured.iter().map(bw_seconds).collect();
        let ts: Vec<f64> = measured.iter().map(|m| 1.0 / m.tokens_per_s).collect();
        let (min_x, max_x) = xs.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        let (slope, intercept, method) = if max_x > min_x * 1.05 {
            let (mut sw, mut swx, mut swt, mut swxx, mut swxt) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (x, t) in xs.iter().zip(&ts) {
                let w = 1.0 / (t * t);
                sw += w;
                swx += w * x;
                swt += w * t;
                swxx += w * x * x;
                swxt += w * x * t;
            }
            let det = sw * swxx - swx * swx;
            let a = (sw * swxt - swx * swt) / det;
            let c = (swt - a * swx) / sw;
            if c >= 0.0 && a > 0.0 {
                (a, c, "weighted least squares on 1/tok_s = x/η_bw + t_fixed".to_owned())
            } else {
                (swxt / swxx, 0.0, "fit through the origin (free intercept came out negative)".to_owned())
            }
        } else {
            let c = DEFAULT_OVERHEAD_S.min(ts.iter().copied().fold(f64::INFINITY, f64::min) * 0.5);
            let a = ts.iter().zip(&xs).map(|(t, x)| (t - c) / x).sum::<f64>() / xs.len() as f64;
            (a, c, format!("one model size: t_fixed held at {} ms, η_bw solved", c * 1e3))
        };
        if !(slope.is_finite() && slope > 0.0) {
            return Err(ProjectionError::Calibration("could not fit a positive bandwidth term".to_owned()));
        }
        let eta_bw = 1.0 / slope;
        if eta_bw > 1.0 {
            return Err(ProjectionError::Calibration(format!(
                "fitted η_bw = {eta_bw:.2} exceeds peak bandwidth: check bytes_per_token and the device bandwidth figure"
            )));
        }
        let sq: f64 = xs.iter().zip(&ts).map(|(x, t)| ((x * slope + intercept) / t - 1.0).powi(2)).sum();
        Ok(Self {
            eta_bw,
            overhead_s: intercept,
            points: measured.len(),
            rms_rel_error: (sq / xs.len() as f64).sqrt(),
            method,
        })
    }

    /// `base` with this calibration's η_bw and overhead.
    pub fn apply(&self, base: &Efficiency) -> Efficiency {
        Efficiency {
            eta_bw: self.eta_bw,
            eta_compute: base.eta_compute,
            eta_prefill: base.eta_prefill,
            overhead_s: self.overhead_s,
            per_seq_s: base.per_seq_s,
            engine: None,
            source: format!("calibrated on {} local measurements ({}); η_c from defaults", self.points, self.method),
        }
    }

    /// Measured vs projected (defaults and calibrated) for each measurement.
    pub fn compare(&self, measured: &[Measurement]) -> Vec<CalibrationPoint> {
        let d = Efficiency::default();
        measured
            .iter()
            .map(|m| {
                let x = bw_seconds(m);
                CalibrationPoint {
                    label: m.label.clone(),
                    measured_tok_s: m.tokens_per_s,
                    default_tok_s: 1.0 / (x / d.eta_bw + d.overhead_s),
                    calibrated_tok_s: 1.0 / (x / self.eta_bw + self.overhead_s),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(bytes: f64, tok_s: f64) -> Measurement {
        Measurement { label: format!("{bytes}"), bytes_per_token: bytes, bandwidth_gbs: 100.0, tokens_per_s: tok_s }
    }

    #[test]
    fn recovers_known_eta_and_overhead() -> Result<()> {
        let (eta, t0) = (0.6, 2e-3);
        let pts: Vec<Measurement> = [1e9, 3e9, 8e9].iter().map(|b| m(*b, 1.0 / (b / (eta * 100e9) + t0))).collect();
        let c = Calibration::fit(&pts)?;
        assert!((c.eta_bw - eta).abs() < 1e-9, "{}", c.eta_bw);
        assert!((c.overhead_s - t0).abs() < 1e-12, "{}", c.overhead_s);
        assert!(c.rms_rel_error < 1e-9);
        let cmp = c.compare(&pts);
        assert!(cmp.iter().all(|p| (p.calibrated_tok_s / p.measured_tok_s - 1.0).abs() < 1e-9));
        Ok(())
    }

    #[test]
    fn single_size_holds_overhead_and_rejects_impossible_data() -> Result<()> {
        let c = Calibration::fit(&[m(1e9, 50.0)])?;
        assert_eq!(c.overhead_s, DEFAULT_OVERHEAD_S);
        assert!((1.0 / (0.01 / c.eta_bw + c.overhead_s) - 50.0).abs() < 1e-9);
        assert!(Calibration::fit(&[]).is_err());
        assert!(Calibration::fit(&[m(1e9, 500.0)]).is_err(), "faster than peak bandwidth");
        assert!(Calibration::fit(&[m(-1.0, 5.0)]).is_err());
        Ok(())
    }
}
