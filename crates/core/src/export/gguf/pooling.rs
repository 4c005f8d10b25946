//! How a sentence-transformers model pools its token vectors, as llama.cpp's `{arch}.pooling_type`
//! (`enum llama_pooling_type`, include/llama.h: 1 mean, 2 CLS, 3 last token). Read the way
//! convert_hf_to_gguf.py reads it: the Pooling module named in `modules.json`, then that module's
//! `config.json`.

use std::path::{Component, Path};

use serde_json::Value;

use crate::bounded::{CONFIG_CAP, read};
use crate::error::{Error, Result};

pub const MEAN: u32 = 1;
pub const CLS: u32 = 2;
pub const LAST: u32 = 3;

/// Each pooling type with its sentence-transformers flag and `pooling_mode` name.
const MODES: [(u32, &str, &str); 3] = [
    (MEAN, "pooling_mode_mean_tokens", "mean"),
    (CLS, "pooling_mode_cls_token", "cls"),
    (LAST, "pooling_mode_lasttoken", "lasttoken"),
];

/// The pooling type of the model in `root`, or `None` for a plain transformers folder (no
/// `modules.json`, or no Pooling module in it): llama.cpp then uses its own default.
pub fn of(root: &Path) -> Result<Option<u32>> {
    let modules_path = root.join("modules.json");
    if !modules_path.is_file() {
        return Ok(None);
    }
    let bad = |path: &Path, problem: String| Error::ConfigInvalid { path: path.to_path_buf(), problem };
    let modules: Value = serde_json::from_slice(&read(&modules_path, CONFIG_CAP, "modules.json")?)
        .map_err(|e| bad(&modules_path, format!("not JSON: {e}")))?;
    let Some(sub) = modules.as_array().into_iter().flatten().find_map(|m| {
        let is_pooling = m.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("Pooling"));
        is_pooling.then(|| m.get("path").and_then(Value::as_str).unwrap_or_default())
    }) else {
        return Ok(None);
    };
    // The module folder is a name inside the model, never a way out of it.
    if Path::new(sub).components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(bad(&modules_path, format!("the Pooling module's path {sub:?} is not a folder inside the model")));
    }
    let path = root.join(sub).join("config.json");
    let cfg: Value = serde_json::from_slice(&read(&path, CONFIG_CAP, "pooling config.json")?)
        .map_err(|e| bad(&path, format!("not JSON: {e}")))?;
    let flag = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mode = cfg.get("pooling_mode").and_then(Value::as_str);
    match MODES.iter().find(|(_, f, m)| flag(f) || mode == Some(*m)) {
        Some((ty, ..)) => Ok(Some(*ty)),
        None => {
            let problem = "pools by a mode llama.cpp does not have (it pools by mean, CLS token or last token): \
                           a GGUF of it would embed differently from the model";
            Err(Error::ExportConfig {
                target: super::writer::TARGET,
                problem: format!("{}: {problem}", path.display()),
            })
        }
    }
}

/// [`of`] backwards: sentence-transformers' modules.json and Pooling config (relative path,
/// contents) for `pooling` of `hidden`-wide vectors, so a folder pools as the GGUF it came from did;
/// `None` for a type that has no such module.
pub fn module_files(pooling: u32, hidden: usize) -> Option<[(&'static str, Value); 2]> {
    let (_, flag, _) = MODES.iter().find(|(ty, ..)| *ty == pooling)?;
    let modules = serde_json::json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]);
    let config = serde_json::json!({"word_embedding_dimension": hidden, *flag: true});
    Some([("modules.json", modules), ("1_Pooling/config.json", config)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(modules: &str, pooling: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("modules.json"), modules).unwrap();
        if let Some(p) = pooling {
            std::fs::create_dir(d.path().join("1_Pooling")).unwrap();
            std::fs::write(d.path().join("1_Pooling/config.json"), p).unwrap();
        }
        d
    }

    const MODULES: &str = r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
                              {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#;

    #[test]
    fn reads_the_sentence_transformers_pooling() {
        let minilm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
        assert_eq!(of(&minilm).unwrap(), Some(MEAN));
        let d = folder(MODULES, Some(r#"{"pooling_mode_cls_token": true}"#));
        assert_eq!(of(d.path()).unwrap(), Some(CLS));
        let d = folder(MODULES, Some(r#"{"pooling_mode": "lasttoken"}"#));
        assert_eq!(of(d.path()).unwrap(), Some(LAST));
        // What module_files writes reads back as the same type.
        for ty in [MEAN, CLS, LAST] {
            let [(_, modules), (_, config)] = module_files(ty, 8).unwrap();
            let d = folder(&modules.to_string(), Some(&config.to_string()));
            assert_eq!(of(d.path()).unwrap(), Some(ty));
        }
        assert!(module_files(0, 8).is_none());
        // No modules.json, or no Pooling module: nothing to state.
        assert_eq!(of(tempfile::tempdir().unwrap().path()).unwrap(), None);
        assert_eq!(of(folder("[]", None).path()).unwrap(), None);
    }

    #[test]
    fn refuses_what_llama_cpp_cannot_pool_and_paths_out_of_the_model() {
        let d = folder(MODULES, Some(r#"{"pooling_mode_max_tokens": true}"#));
        assert!(matches!(of(d.path()), Err(Error::ExportConfig { .. })));
        let d = folder(r#"[{"path": "../x", "type": "Pooling"}]"#, None);
        assert!(matches!(of(d.path()), Err(Error::ConfigInvalid { .. })));
        let d = folder("{not json", None);
        assert!(matches!(of(d.path()), Err(Error::ConfigInvalid { .. })));
    }
}
