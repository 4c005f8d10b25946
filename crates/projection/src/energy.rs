//! Energy and CO₂: `kWh = instances × TDP × tdp_fraction × hours × PUE / 1000`,
//! `kg CO₂ = kWh × grid g/kWh / 1000`, `$ = kWh × $/kWh` (codecarbon / Cloud Carbon Footprint
//! methodology, PROJECTION.md §5). Without a measured power the average is a fraction of TDP
//! (codecarbon's fallback is 50 %), so the figures are estimates.

use serde::{Deserialize, Serialize};

use crate::catalog::Device;
use crate::quantity::{Quantity, n};
use crate::scenario::Scenario;

/// Energy figures per month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyNumbers {
    pub kwh_month: f64,
    pub co2_kg_month: f64,
    pub usd_month: f64,
}

/// Energy for `instances` devices running all month; `None` when the device has no TDP.
pub fn energy_numbers(device: &Device, instances: f64, sc: &Scenario) -> Option<EnergyNumbers> {
    let tdp = device.tdp_w?;
    let kwh = instances * tdp * sc.energy.tdp_fraction * sc.pricing.hours_per_month * sc.energy.pue / 1000.0;
    Some(EnergyNumbers {
        kwh_month: kwh,
        co2_kg_month: kwh * sc.energy.grid_g_per_kwh / 1000.0,
        usd_month: kwh * sc.energy.usd_per_kwh,
    })
}

/// The energy section of a projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyProjection {
    pub kwh_month: Quantity,
    pub co2_kg_month: Quantity,
    pub usd_month: Quantity,
    pub kwh_per_1m_requests: Quantity,
}

/// Builds the energy section.
pub fn energy_projection(e: &EnergyNumbers, device: &Device, instances: f64, sc: &Scenario) -> EnergyProjection {
    let req_month = sc.requests_per_day * sc.pricing.hours_per_month / 24.0;
    let kwh_month = Quantity::estimate(
        e.kwh_month,
        "kWh/month",
        format!(
            "{} instances × {} W TDP × {} × {} h × PUE {} / 1000",
            n(instances),
            n(device.tdp_w.unwrap_or(0.0)),
            n(sc.energy.tdp_fraction),
            n(sc.pricing.hours_per_month),
            n(sc.energy.pue)
        ),
    )
    .src(device.spec_cite())
    .src("codecarbon methodology: TDP fraction fallback 0.5, energy *= PUE (PROJECTION.md §5)")
    .src("scenario energy.pue, energy.tdp_fraction");
    let co2_kg_month = Quantity::estimate(
        e.co2_kg_month,
        "kg CO2e/month",
        format!("kWh × {} g/kWh / 1000", n(sc.energy.grid_g_per_kwh)),
    )
    .src("scenario energy.grid_g_per_kwh (codecarbon world average 475 g/kWh, IEA 2019)");
    let usd_month = Quantity::estimate(e.usd_month, "USD/month", format!("kWh × {} $/kWh", n(sc.energy.usd_per_kwh)))
        .src("scenario energy.usd_per_kwh");
    let kwh_per_1m_requests = Quantity::estimate(
        e.kwh_month / req_month * 1e6,
        "kWh/1M requests",
        format!(
            "kWh/month / ({} requests/day × {} h / 24) × 1e6",
            n(sc.requests_per_day),
            n(sc.pricing.hours_per_month)
        ),
    );
    EnergyProjection { kwh_month, co2_kg_month, usd_month, kwh_per_1m_requests }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::error::Result;

    #[test]
    fn one_h100_month_at_full_tdp() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mut sc = Scenario::preset("high-volume-api")?;
        sc.energy.tdp_fraction = 1.0;
        let e = energy_numbers(cat.get("h100_sxm")?, 1.0, &sc)
            .ok_or(crate::ProjectionError::Calibration("no tdp".into()))?;
        // PROJECTION.md §5: one H100-hour at full TDP and PUE 1.135 ≈ 0.79 kWh.
        assert!((e.kwh_month / 730.0 - 0.7945).abs() < 1e-3, "{}", e.kwh_month);
        assert!((e.co2_kg_month - e.kwh_month * 0.475).abs() < 1e-9);
        assert!(energy_numbers(cat.get("apple_m2_max")?, 1.0, &sc).is_none());
        Ok(())
    }
}
