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
    /// Where the number lands for 80 % of the published measurements the decode model was judged
    /// on (its held-out error's 10th–90th percentile, carried through the projection); `None`
    /// for exact counts and numbers the decode speed does not move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

impl Quantity {
    /// An exact count (bytes summed from the plan, prices times hours).
    pub fn exact(value: f64, unit: &str, formula: impl Into<String>) -> Self {
        Self {
            value,
            unit: unit.to_owned(),
            formula: formula.into(),
            sources: Vec::new(),
            estimate: false,
            range: None,
        }
    }

    /// A model estimate.
    pub fn estimate(value: f64, unit: &str, formula: impl Into<String>) -> Self {
        Self { value, unit: unit.to_owned(), formula: formula.into(), sources: Vec::new(), estimate: true, range: None }
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

/// Gives every estimate in `base` the range of its values across `variants` (the same structure
/// projected with other decode efficiencies) and its own value; values that do not move get none.
/// Works on the serialized form, so every `Quantity` of any projection type is reached.
pub(crate) fn widen<T: Serialize + serde::de::DeserializeOwned>(base: &mut T, variants: &[T]) {
    let (Ok(mut b), Ok(vs)) =
        (serde_json::to_value(&*base), variants.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>())
    else {
        return;
    };
    walk(&mut b, &vs.iter().collect::<Vec<_>>());
    if let Ok(t) = serde_json::from_value(b) {
        *base = t;
    }
}

fn walk(b: &mut serde_json::Value, vs: &[&serde_json::Value]) {
    use serde_json::Value;
    match b {
        Value::Object(map) => {
            let is_quantity = map.get("estimate") == Some(&Value::Bool(true)) && map.contains_key("formula");
            if is_quantity && let Some(v) = map.get("value").and_then(Value::as_f64) {
                let others: Vec<f64> = vs.iter().filter_map(|o| o.get("value").and_then(Value::as_f64)).collect();
                let lo = others.iter().copied().fold(v, f64::min);
                let hi = others.iter().copied().fold(v, f64::max);
                if others.len() == vs.len()
                    && lo.is_finite()
                    && hi.is_finite()
                    && hi - lo > 1e-9 * hi.abs().max(lo.abs())
                {
                    map.insert("range".into(), serde_json::json!([lo, hi]));
                }
                return;
            }
            for (k, child) in map.iter_mut() {
                let sub: Vec<&Value> = vs.iter().filter_map(|o| o.get(k.as_str())).collect();
                if sub.len() == vs.len() {
                    walk(child, &sub);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                let sub: Vec<&Value> = vs.iter().filter_map(|o| o.get(i)).collect();
                if sub.len() == vs.len() {
                    walk(child, &sub);
                }
            }
        }
        _ => {}
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

    #[test]
    fn estimates_that_move_get_a_range_and_nothing_else_does() {
        let pair = |v: f64, c: f64| {
            vec![Quantity::estimate(v, "tok/s", "f"), Quantity::exact(c, "B", "g"), Quantity::estimate(5.0, "x", "h")]
        };
        let mut base = pair(100.0, 7.0);
        widen(&mut base, &[pair(40.0, 9.0), pair(150.0, 7.0)]);
        assert_eq!(base[0].range, Some([40.0, 150.0]));
        assert_eq!(base[0].value, 100.0);
        assert_eq!(base[1].range, None, "exact counts carry no range");
        assert_eq!(base[2].range, None, "an estimate the speeds do not move carries none");
    }
}
