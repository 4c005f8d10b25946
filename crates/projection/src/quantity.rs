//! Every projected number carries its unit, the formula that produced it and the sources of its
//! constants, so the UI can show the formula on hover and JSON keeps it.

use serde::{Deserialize, Serialize};

/// A projected or exact number with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
    /// The formula with the values substituted, e.g. `2 × 32 × 8 × 128 × 2 B`.
    pub formula: String,
    /// Where each constant came from (catalog row, reference document, scenario field).
    pub sources: Vec<String>,
    /// True when the number is a model estimate rather than an exact count.
    pub estimate: bool,
}

impl Quantity {
    /// An exact count (bytes summed from the plan, prices times hours).
    pub fn exact(value: f64, unit: &str, formula: impl Into<String>) -> Self {
        Self { value, unit: unit.to_owned(), formula: formula.into(), sources: Vec::new(), estimate: false }
    }

    /// A model estimate.
    pub fn estimate(value: f64, unit: &str, formula: impl Into<String>) -> Self {
        Self { value, unit: unit.to_owned(), formula: formula.into(), sources: Vec::new(), estimate: true }
    }

    /// Adds a source.
    #[must_use]
    pub fn src(mut self, source: impl Into<String>) -> Self {
        self.sources.push(source.into());
        self
    }

    /// Adds several sources.
    #[must_use]
    pub fn srcs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sources: I) -> Self {
        self.sources.extend(sources.into_iter().map(Into::into));
        self
    }
}

/// Formats a number compactly for formulas: integers without decimals, others with up to 4
/// significant decimals.
pub(crate) fn n(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.3}")
    } else if x.abs() >= 1e-3 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting_is_compact() {
        assert_eq!(n(131072.0), "131072");
        assert_eq!(n(153.04), "153.0");
        assert_eq!(n(0.9), "0.9000");
        assert_eq!(n(0.00002), "2.000e-5");
        assert_eq!(n(2.5), "2.500");
    }

    #[test]
    fn quantity_serialises_formula_and_sources() {
        let q = Quantity::estimate(1.5, "ms", "a / b").src("catalog row x");
        let v = serde_json::to_value(&q).expect("serialise");
        assert_eq!(v["formula"], "a / b");
        assert_eq!(v["sources"][0], "catalog row x");
        assert_eq!(v["estimate"], true);
    }
}
