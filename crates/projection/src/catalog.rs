//! The hardware catalog: devices with memory, bandwidth, peaks, power and prices, each row with
//! its sources. The built-in catalog is `assets/hardware/catalog.csv` (embedded); users override
//! prices or add devices from a local TOML or CSV file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::csv;
use crate::error::{ProjectionError, Result};

const BUILTIN_CSV: &str = include_str!("../../../assets/hardware/catalog.csv");

/// What class of device a row is; selects runtime-overhead defaults and edge handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Gpu,
    Cpu,
    Edge,
    Mcu,
}

impl DeviceKind {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gpu" => Some(Self::Gpu),
            "cpu" => Some(Self::Cpu),
            "edge" => Some(Self::Edge),
            "mcu" => Some(Self::Mcu),
            _ => None,
        }
    }
}

/// One catalog row. Missing figures are `None` (not published or not applicable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub kind: DeviceKind,
    /// Device memory in GiB (SRAM for the MCU class).
    pub mem_gib: f64,
    /// Peak memory bandwidth in GB/s (1e9 B/s).
    pub mem_bw_gbs: Option<f64>,
    /// Dense FP16/BF16 peak in TFLOP/s.
    pub fp16_tflops: Option<f64>,
    /// Dense INT8 peak in TOP/s.
    pub int8_tops: Option<f64>,
    /// Dense FP8 peak in TFLOP/s.
    pub fp8_tflops: Option<f64>,
    pub tdp_w: Option<f64>,
    pub ondemand_usd_h: Option<f64>,
    pub spot_usd_h: Option<f64>,
    pub price_source: String,
    pub spec_source: String,
    /// Staleness warning for the price, if any.
    pub price_note: String,
    /// `builtin` or the override file that last changed this row.
    pub origin: String,
}

impl Device {
    /// Memory in bytes.
    pub fn mem_bytes(&self) -> f64 {
        self.mem_gib * GIB
    }

    /// A short citation for this row's specifications.
    pub fn spec_cite(&self) -> String {
        format!("catalog `{}` ({}): {}", self.id, self.origin, self.spec_source)
    }

    /// A short citation for this row's prices.
    pub fn price_cite(&self) -> String {
        if self.price_note.is_empty() {
            format!("catalog `{}` price: {}", self.id, self.price_source)
        } else {
            format!("catalog `{}` price: {} [NOTE: {}]", self.id, self.price_source, self.price_note)
        }
    }
}

pub(crate) const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A set of devices, in catalog order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub devices: Vec<Device>,
}

/// A partial device row from an override file; `None` keeps the existing value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicePatch {
    id: String,
    name: Option<String>,
    kind: Option<String>,
    mem_gib: Option<f64>,
    mem_bw_gbs: Option<f64>,
    fp16_tflops: Option<f64>,
    int8_tops: Option<f64>,
    fp8_tflops: Option<f64>,
    tdp_w: Option<f64>,
    ondemand_usd_h: Option<f64>,
    spot_usd_h: Option<f64>,
    price_source: Option<String>,
    spec_source: Option<String>,
    price_note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    #[serde(default)]
    device: Vec<DevicePatch>,
}

impl Catalog {
    /// The embedded catalog (`assets/hardware/catalog.csv`).
    pub fn builtin() -> Result<Self> {
        let patches = patches_from_csv(BUILTIN_CSV, "builtin hardware catalog", true)?;
        let mut cat = Catalog { devices: Vec::with_capacity(patches.len()) };
        for p in patches {
            cat.apply_patch(p, "builtin")?;
        }
        Ok(cat)
    }

    /// The built-in catalog with a local override file applied (`.toml` with `[[device]]` tables,
    /// or `.csv` with the catalog's columns; only `id` is required, empty cells keep the
    /// built-in value). New ids need at least `name`, `kind` and `mem_gib`.
    pub fn with_overrides(path: &Path) -> Result<Self> {
        let mut cat = Self::builtin()?;
        cat.apply_override_file(path)?;
        Ok(cat)
    }

    /// Applies an override file to this catalog.
    pub fn apply_override_file(&mut self, path: &Path) -> Result<()> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ProjectionError::Io { path: path.to_owned(), source })?;
        let origin = path.display().to_string();
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv { self.apply_overrides_csv(&text, &origin) } else { self.apply_overrides_toml(&text, &origin) }
    }

    /// Applies overrides given as TOML text (`[[device]]` tables).
    pub fn apply_overrides_toml(&mut self, text: &str, origin: &str) -> Result<()> {
        let file: OverrideFile = toml::from_str(text).map_err(|e| ProjectionError::Toml {
            what: format!("catalog overrides {origin}"),
            message: e.to_string(),
        })?;
        for p in file.device {
            self.apply_patch(p, origin)?;
        }
        Ok(())
    }

    /// Applies overrides given as CSV text with catalog column names.
    pub fn apply_overrides_csv(&mut self, text: &str, origin: &str) -> Result<()> {
        for p in patches_from_csv(text, &format!("catalog overrides {origin}"), false)? {
            self.apply_patch(p, origin)?;
        }
        Ok(())
    }

    /// Looks a device up; the error lists every valid id.
    pub fn get(&self, id: &str) -> Result<&Device> {
        self.devices
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| ProjectionError::UnknownDevice { id: id.to_owned(), valid: self.ids() })
    }

    /// All device ids in catalog order.
    pub fn ids(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.id.clone()).collect()
    }

    fn apply_patch(&mut self, p: DevicePatch, origin: &str) -> Result<()> {
        let bad = |reason: String| ProjectionError::InvalidDevice { id: p.id.clone(), reason };
        if p.id.trim().is_empty() {
            return Err(bad("empty id".to_owned()));
        }
        for (field, v) in [
            ("mem_gib", p.mem_gib),
            ("mem_bw_gbs", p.mem_bw_gbs),
            ("fp16_tflops", p.fp16_tflops),
            ("int8_tops", p.int8_tops),
            ("fp8_tflops", p.fp8_tflops),
            ("tdp_w", p.tdp_w),
            ("ondemand_usd_h", p.ondemand_usd_h),
            ("spot_usd_h", p.spot_usd_h),
        ] {
            if let Some(x) = v
                && (!x.is_finite() || x < 0.0)
            {
                return Err(bad(format!("`{field}` = {x} must be a non-negative number")));
            }
        }
        let kind = match &p.kind {
            Some(k) => {
                Some(DeviceKind::parse(k).ok_or_else(|| bad(format!("kind `{k}` is not one of gpu, cpu, edge, mcu")))?)
            }
            None => None,
        };
        if let Some(d) = self.devices.iter_mut().find(|d| d.id == p.id) {
            if let Some(v) = p.name {
                d.name = v;
            }
            if let Some(k) = kind {
                d.kind = k;
            }
            if let Some(v) = p.mem_gib {
                d.mem_gib = v;
            }
            macro_rules! set_opt {
                ($($f:ident),*) => { $( if p.$f.is_some() { d.$f = p.$f; } )* };
            }
            set_opt!(mem_bw_gbs, fp16_tflops, int8_tops, fp8_tflops, tdp_w, ondemand_usd_h, spot_usd_h);
            let price_changed = p.ondemand_usd_h.is_some() || p.spot_usd_h.is_some();
            if let Some(v) = p.price_source {
                d.price_source = v;
            } else if price_changed {
                d.price_source = format!("user override ({origin})");
            }
            if let Some(v) = p.spec_source {
                d.spec_source = v;
            }
            if let Some(v) = p.price_note {
                d.price_note = v;
            } else if price_changed {
                d.price_note.clear();
            }
            d.origin = origin.to_owned();
        } else {
            let name = p.name.ok_or_else(|| bad("new device needs `name`".to_owned()))?;
            let kind = kind.ok_or_else(|| bad("new device needs `kind` (gpu, cpu, edge, mcu)".to_owned()))?;
            let mem_gib = p.mem_gib.ok_or_else(|| bad("new device needs `mem_gib`".to_owned()))?;
            self.devices.push(Device {
                id: p.id,
                name,
                kind,
                mem_gib,
                mem_bw_gbs: p.mem_bw_gbs,
                fp16_tflops: p.fp16_tflops,
                int8_tops: p.int8_tops,
                fp8_tflops: p.fp8_tflops,
                tdp_w: p.tdp_w,
                ondemand_usd_h: p.ondemand_usd_h,
                spot_usd_h: p.spot_usd_h,
                price_source: p.price_source.unwrap_or_else(|| format!("user file ({origin})")),
                spec_source: p.spec_source.unwrap_or_else(|| format!("user file ({origin})")),
                price_note: p.price_note.unwrap_or_default(),
                origin: origin.to_owned(),
            });
        }
        Ok(())
    }
}

const COLUMNS: [&str; 14] = [
    "id",
    "name",
    "kind",
    "mem_gib",
    "mem_bw_gbs",
    "fp16_tflops",
    "int8_tops",
    "fp8_tflops",
    "tdp_w",
    "ondemand_usd_h",
    "spot_usd_h",
    "price_source",
    "spec_source",
    "price_note",
];

fn patches_from_csv(text: &str, what: &str, require_all: bool) -> Result<Vec<DevicePatch>> {
    let (header, rows) = csv::parse(text, what)?;
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            return Err(ProjectionError::Csv {
                what: what.to_owned(),
                line: 0,
                message: format!("unknown column `{h}`; valid columns: {}", COLUMNS.join(", ")),
            });
        }
    }
    let need: &[&str] = if require_all { &COLUMNS[..13] } else { &COLUMNS[..1] };
    for c in need {
        if !header.iter().any(|h| h == c) {
            return Err(ProjectionError::Csv {
                what: what.to_owned(),
                line: 0,
                message: format!("missing column `{c}`"),
            });
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut p = DevicePatch::default();
        for (h, cell) in header.iter().zip(&row.fields) {
            let text = cell.trim();
            let s = || (!text.is_empty()).then(|| text.to_owned());
            let f = || csv::opt_f64(text, h, what, row.line);
            match h.as_str() {
                "id" => p.id = text.to_owned(),
                "name" => p.name = s(),
                "kind" => p.kind = s(),
                "mem_gib" => p.mem_gib = f()?,
                "mem_bw_gbs" => p.mem_bw_gbs = f()?,
                "fp16_tflops" => p.fp16_tflops = f()?,
                "int8_tops" => p.int8_tops = f()?,
                "fp8_tflops" => p.fp8_tflops = f()?,
                "tdp_w" => p.tdp_w = f()?,
                "ondemand_usd_h" => p.ondemand_usd_h = f()?,
                "spot_usd_h" => p.spot_usd_h = f()?,
                "price_source" => p.price_source = s(),
                "spec_source" => p.spec_source = s(),
                "price_note" => p.price_note = Some(text.to_owned()),
                _ => {}
            }
        }
        if require_all && p.price_note.is_none() {
            p.price_note = Some(String::new());
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_reference_row() -> Result<()> {
        let cat = Catalog::builtin()?;
        let reference = include_str!("../../../assets/hardware/catalog.csv");
        let data_rows = reference.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count() - 1;
        assert_eq!(cat.devices.len(), data_rows);
        assert_eq!(cat.devices.len(), 18);
        let a100 = cat.get("a100_80gb_sxm")?;
        assert_eq!(a100.mem_bw_gbs, Some(2039.0));
        assert_eq!(a100.fp8_tflops, None);
        assert!(a100.price_note.contains("mid-2025"));
        let mcu = cat.get("cortex_m7_stm32h743")?;
        assert_eq!(mcu.kind, DeviceKind::Mcu);
        assert!(mcu.mem_bytes() < 1.1e6);
        assert!(cat.get("l4")?.price_note.is_empty());
        Ok(())
    }

    #[test]
    fn unknown_device_lists_valid_ids() -> Result<()> {
        let cat = Catalog::builtin()?;
        let msg = cat.get("h1000").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("unknown device `h1000`; valid ids: h200_sxm, h100_sxm"), "{msg}");
        assert!(msg.contains("cortex_m7_stm32h743"));
        Ok(())
    }

    #[test]
    fn toml_override_changes_price_and_adds_device() -> Result<()> {
        let mut cat = Catalog::builtin()?;
        cat.apply_overrides_toml(
            "[[device]]\nid = \"h100_sxm\"\nondemand_usd_h = 2.99\n\n[[device]]\nid = \"rtx4090\"\nname = \"RTX 4090\"\nkind = \"gpu\"\nmem_gib = 24\nmem_bw_gbs = 1008\nfp16_tflops = 165\n",
            "local.toml",
        )?;
        let h = cat.get("h100_sxm")?;
        assert_eq!(h.ondemand_usd_h, Some(2.99));
        assert_eq!(h.mem_bw_gbs, Some(3350.0));
        assert!(h.price_note.is_empty(), "a user price clears the staleness note");
        assert_eq!(h.origin, "local.toml");
        assert_eq!(cat.get("rtx4090")?.mem_bw_gbs, Some(1008.0));
        Ok(())
    }

    #[test]
    fn csv_override_and_bad_rows() -> Result<()> {
        let mut cat = Catalog::builtin()?;
        cat.apply_overrides_csv("id,spot_usd_h\nl4,0.30\n", "o.csv")?;
        assert_eq!(cat.get("l4")?.spot_usd_h, Some(0.30));
        assert!(cat.apply_overrides_csv("id,bogus\nl4,1\n", "o.csv").is_err());
        assert!(cat.apply_overrides_csv("id,mem_gib\nl4,-3\n", "o.csv").is_err());
        let err = cat.apply_overrides_toml("[[device]]\nid = \"new\"\nmem_gib = 1\n", "x").err();
        assert!(err.map(|e| e.to_string()).unwrap_or_default().contains("needs `name`"));
        Ok(())
    }
}
