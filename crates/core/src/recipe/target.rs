//! Target patterns: which tensors a rule or the ignore list selects.

use crate::error::{Error, Result};
use crate::store::Role;

#[derive(Debug, Clone)]
pub enum Target {
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
    Role(Role),
}

impl Target {
    /// `role:<attention|mlp|embedding|norm|head|other>`, `re:<regex>`, else a glob on the name.
    pub fn parse(text: &str) -> Result<Target> {
        let bad = |message: String| Error::BadTarget { target: text.to_string(), message };
        if let Some(role) = text.strip_prefix("role:") {
            let role = match role {
                "attention" => Role::Attention,
                "mlp" => Role::Mlp,
                "embedding" => Role::Embedding,
                "norm" => Role::Norm,
                "head" => Role::Head,
                "other" => Role::Other,
                _ => {
                    return Err(bad("unknown role; valid: attention, mlp, embedding, norm, head, other".into()));
                }
            };
            return Ok(Target::Role(role));
        }
        if let Some(re) = text.strip_prefix("re:") {
            return regex::Regex::new(re).map(Target::Regex).map_err(|e| bad(e.to_string()));
        }
        globset::GlobBuilder::new(text)
            .literal_separator(false)
            .build()
            .map(|g| Target::Glob(g.compile_matcher()))
            .map_err(|e| bad(e.to_string()))
    }

    pub fn matches(&self, name: &str, role: Role) -> bool {
        match self {
            Target::Glob(g) => g.is_match(name),
            Target::Regex(r) => r.is_match(name),
            Target::Role(r) => *r == role,
        }
    }
}

/// The decoder/encoder block index in a tensor name (`model.layers.7.`, `encoder.layer.3.`,
/// `blk.2.`, `h.5.`), if any.
pub fn layer_index(name: &str) -> Option<usize> {
    let parts: Vec<&str> = name.split('.').collect();
    parts.windows(2).find_map(|w| match w {
        [key, idx] if matches!(*key, "layers" | "layer" | "blk" | "h" | "blocks") => idx.parse().ok(),
        _ => None,
    })
}

/// What a tensor is within its block, for grids of layers × kinds:
/// `model.layers.3.self_attn.q_proj.weight` → `self_attn.q_proj`; a tensor outside the blocks keeps
/// its name without `.weight` (`lm_head`).
pub fn tensor_kind(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    let after = parts
        .windows(2)
        .position(|w| matches!(w, [k, i] if matches!(*k, "layers" | "layer" | "blk" | "h" | "blocks") && i.parse::<usize>().is_ok()))
        .map_or(0, |p| p + 2);
    let mut tail: Vec<&str> = parts.get(after..).unwrap_or_default().to_vec();
    if tail.last().is_some_and(|l| *l == "weight") && tail.len() > 1 {
        tail.pop();
    }
    tail.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_targets() {
        let t = Target::parse("*.mlp.*").unwrap();
        assert!(t.matches("model.layers.0.mlp.up_proj.weight", Role::Mlp));
        assert!(!t.matches("model.layers.0.self_attn.q_proj.weight", Role::Attention));
        let t = Target::parse(r"re:layers\.(0|1)\.").unwrap();
        assert!(t.matches("model.layers.1.mlp.up_proj.weight", Role::Mlp));
        assert!(!t.matches("model.layers.10.mlp.up_proj.weight", Role::Mlp));
        let t = Target::parse("role:norm").unwrap();
        assert!(t.matches("anything", Role::Norm));
        assert!(matches!(Target::parse("role:ffn"), Err(Error::BadTarget { .. })));
        assert!(matches!(Target::parse("re:(("), Err(Error::BadTarget { .. })));
    }

    #[test]
    fn kinds_strip_layer_prefix_and_weight() {
        assert_eq!(tensor_kind("model.layers.3.self_attn.q_proj.weight"), "self_attn.q_proj");
        assert_eq!(tensor_kind("encoder.layer.0.attention.self.query.weight"), "attention.self.query");
        assert_eq!(tensor_kind("lm_head.weight"), "lm_head");
    }

    #[test]
    fn layer_indices() {
        assert_eq!(layer_index("model.layers.12.mlp.up_proj.weight"), Some(12));
        assert_eq!(layer_index("encoder.layer.3.attention.self.query.weight"), Some(3));
        assert_eq!(layer_index("blk.0.attn_q.weight"), Some(0));
        assert_eq!(layer_index("lm_head.weight"), None);
    }
}
