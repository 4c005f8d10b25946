//! One variant end to end: compress → validate → project → run record.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pareto_core::job::JobContext;
use pareto_core::plan_projection::project_plan;
use pareto_core::{CompressOptions, Model, Recipe};
use pareto_eval::baseline::BaselineCache;
use pareto_eval::{Compressed, EvalOptions, EvalReport, ModelFamily};
use pareto_projection::{Catalog, Scenario};
use pareto_report::{Artifact, FileHash, RecipeInfo, RunRecord, SCHEMA_VERSION, ToolInfo};

use crate::calibrate::CalibrationSpec;
use crate::error::{Result, RunError};
use crate::hashing::{hash_files, variant_id};
use crate::record::{projection_record, source_model, tensor_records, totals, validation_record};

/// What to run. Paths are taken as given; the recipe is a preset name or a TOML file.
/// The fewest validation windows a variant may ask for: a standard error needs two.
pub const MIN_VALIDATION_WINDOWS: usize = 2;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VariantSpec {
    pub model: PathBuf,
    pub recipe: String,
    /// Sample set for validation; the family's bundled default when `None`.
    pub samples: Option<PathBuf>,
    /// Traffic scenario preset or TOML file.
    pub scenario: String,
    /// Hardware catalog id; the scenario's default device when `None`.
    pub device: Option<String>,
    pub validate: bool,
    /// Validate on the first N windows of the protocol only (a quicker, noisier measurement; the
    /// KL's standard error says how much; at least [`MIN_VALIDATION_WINDOWS`]). All of them when
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_windows: Option<usize>,
    pub measure_speed: bool,
    /// The calibration set of recipes with GPTQ or Wanda rules (ignored by the others).
    pub calibration: Option<CalibrationSpec>,
    /// Where the original's evaluation is kept and reused (a cluster sweep's shared folder); the
    /// user's cache folder when `None`. Not part of the variant's address: results are the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_cache: Option<PathBuf>,
}

impl VariantSpec {
    /// `recipe` on `model` under `scenario`, validated on the family's bundled samples and full
    /// protocol, on the scenario's device, without speed measurement or calibration.
    pub fn new(model: impl Into<PathBuf>, recipe: impl Into<String>, scenario: impl Into<String>) -> Self {
        VariantSpec {
            model: model.into(),
            recipe: recipe.into(),
            samples: None,
            scenario: scenario.into(),
            device: None,
            validate: true,
            validation_windows: None,
            measure_speed: false,
            calibration: None,
            baseline_cache: None,
        }
    }

    /// How the variant's validation evaluates the original: its samples and protocol, kept in
    /// [`Self::baseline_cache`] (a variant's validation then adds only the compressed side).
    pub fn original_evaluation(&self) -> EvalOptions {
        let mut options = EvalOptions {
            samples: self.samples.clone(),
            baseline_cache: self.baseline_cache.clone().map_or(BaselineCache::Default, BaselineCache::In),
            ..EvalOptions::default()
        };
        options.protocol.max_windows = self.validation_windows;
        options
    }

    /// The content address of this variant (see [`variant_id`]).
    pub fn id(&self, model_files: &[FileHash]) -> Result<(Recipe, String)> {
        let recipe = Recipe::load(&self.recipe)?;
        let samples = match &self.samples {
            Some(p) => hash_files(&[p.as_path()])?.into_iter().next().map(|h| h.sha256).unwrap_or_default(),
            None => "default samples".into(),
        };
        let device = self.device.clone().unwrap_or_default();
        // A calibrated variant is addressed by its calibration text and protocol too.
        let calibration = match (&self.calibration, recipe.needs_calibration()) {
            (Some(c), true) => {
                let text = hash_files(&[c.samples.as_path()])?.into_iter().next().map(|h| h.sha256).unwrap_or_default();
                format!(
                    "{text}:{}x{}:skip{}:damp{}:{}{}",
                    c.windows,
                    c.window,
                    c.skip_chars,
                    c.damp,
                    if c.act_order { "ao" } else { "nat" },
                    if c.true_sequential { ":ts" } else { "" }
                )
            }
            _ => String::new(),
        };
        let mut extra =
            vec![samples.as_str(), self.scenario.as_str(), device.as_str(), if self.validate { "v" } else { "-" }];
        if !calibration.is_empty() {
            extra.push(calibration.as_str());
        }
        // Fewer validation windows measure something else; the full protocol keeps its old address.
        let windows = self.validation_windows.map(|n| format!("windows{n}"));
        if let Some(w) = &windows {
            extra.push(w);
        }
        let id = variant_id(model_files, &recipe.to_toml()?, &extra);
        Ok((recipe, id))
    }
}

/// Runs one variant, writing its compressed artifact under `artifacts_dir` and returning the
/// record (the caller writes it).
pub fn run_variant(
    spec: &VariantSpec,
    model_files: &[FileHash],
    artifacts_dir: &Path,
    ctx: &JobContext,
) -> Result<RunRecord> {
    let started_at = rfc3339(SystemTime::now());
    let (recipe, id) = spec.id(model_files)?;
    let model = Model::open(&spec.model)?;
    let plan = recipe.resolve(&model)?;

    ctx.progress.log(&format!("{}: compressing", recipe.name));
    let artifact_dir = artifacts_dir.join(format!("{}-{id}", sanitize(&recipe.name)));
    let mut opts = CompressOptions::new(&artifact_dir);
    opts.force = true;
    if plan.totals.calibrated > 0 {
        let calibration = spec.calibration.as_ref().ok_or_else(|| {
            RunError::Calibration(format!(
                "{} tensors of `{}` are decided by a calibration set (GPTQ or Wanda): give the sweep one (--calibration FILE)",
                plan.totals.calibrated, recipe.name
            ))
        })?;
        ctx.progress.log(&format!("{}: calibrating", recipe.name));
        opts.solver = Some(crate::calibrate::calibrate(model.root(), &plan, calibration, ctx)?.0);
    }
    let report = pareto_core::compress(&model, &plan, &opts, ctx)?;

    let validation = if spec.validate {
        ctx.checkpoint()?;
        ctx.progress.log(&format!("{}: validating", recipe.name));
        validate(spec, &artifact_dir, ctx)?
    } else {
        None
    };

    ctx.checkpoint()?;
    let catalog = Catalog::builtin()?;
    let scenario = Scenario::load(&spec.scenario)?;
    let projection = project_plan(&model, &plan, &catalog, &scenario, spec.device.as_deref(), true)?;

    assemble(&model, &plan, &recipe, &report, model_files, id, started_at, validation, Some(&projection))
}

/// Puts a finished run's parts together as a record. `id` is the variant's content address
/// (see [`VariantSpec::id`]); validation and projection are `None` when those steps did not run.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    model: &Model,
    plan: &pareto_core::Plan,
    recipe: &Recipe,
    report: &pareto_core::CompressReport,
    model_files: &[FileHash],
    id: String,
    started_at: String,
    validation: Option<pareto_report::Validation>,
    projection: Option<&pareto_projection::Projection>,
) -> Result<RunRecord> {
    Ok(RunRecord {
        schema_version: SCHEMA_VERSION,
        id,
        tool: ToolInfo { name: "pareto".into(), version: env!("CARGO_PKG_VERSION").into() },
        started_at,
        finished_at: rfc3339(SystemTime::now()),
        device: format!(
            "cpu ({}, {} threads)",
            std::env::consts::ARCH,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        source: source_model(model, model_files.to_vec()),
        recipe: RecipeInfo {
            name: recipe.name.clone(),
            description: recipe.description.clone(),
            toml: recipe.to_toml()?,
        },
        totals: totals(plan),
        tensors: tensor_records(plan, Some(report)),
        artifact: Some(Artifact {
            path: report.output.display().to_string(),
            format: report.format.as_str().to_string(),
            bytes: report.written_bytes,
            content_hash: report.content_hash.clone(),
        }),
        validation,
        projection: projection.map(projection_record),
    })
}

fn validate(spec: &VariantSpec, artifact: &Path, ctx: &JobContext) -> Result<Option<pareto_report::Validation>> {
    if let ModelFamily::Other(_) = pareto_eval::detect_family(&spec.model)? {
        return Ok(None);
    }
    let options = EvalOptions {
        compressed: Some(Compressed::Folder(artifact.to_path_buf())),
        speed: spec.measure_speed.then(Default::default),
        ..spec.original_evaluation()
    };
    let eval = pareto_eval::evaluate(&spec.model, &options, ctx)?;
    validation_of(&eval)
}

/// The run record's validation section for an evaluation of original vs compressed: its metrics,
/// and the sample set by content hash and protocol. `None` when the family has no metric.
pub fn validation_of(eval: &EvalReport) -> Result<Option<pareto_report::Validation>> {
    let Some(samples) = eval.samples.clone() else { return Ok(None) };
    let sha = hash_files(&[samples.as_path()])?.into_iter().next().map(|h| h.sha256).unwrap_or_default();
    let (rows, description) = match (&eval.decoder, &eval.encoder) {
        (Some(d), _) => (
            d.original.scored as u64,
            format!(
                "perplexity protocol: first {} chars, windows of {} tokens ({} windows)",
                d.protocol.max_chars.map_or("all".to_string(), |c| c.to_string()),
                d.protocol.window,
                d.original.windows
            ),
        ),
        (_, Some(e)) => {
            (e.original.sts.map_or(0, |s| s.pairs as u64), "sentence pairs with gold similarity scores".into())
        }
        _ => (0, String::new()),
    };
    Ok(validation_record(eval, sha, rows, description))
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// RFC 3339 UTC from the system clock (civil-from-days; no time-zone data needed).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_888_800), "2026-11-28T18:00:00Z");
    }

    #[test]
    fn fewer_validation_windows_are_another_variant_with_the_protocol_cut() {
        let full = VariantSpec::new("m", "w8", "edge");
        let cut = VariantSpec { validation_windows: Some(8), ..full.clone() };
        assert_ne!(full.id(&[]).unwrap().1, cut.id(&[]).unwrap().1);
        assert_eq!(full.original_evaluation().protocol.max_windows, None);
        assert_eq!(cut.original_evaluation().protocol.max_windows, Some(8));
        // Plans written before the field existed still read, as the full protocol.
        let old = serde_json::to_string(&full).unwrap();
        assert!(!old.contains("validation_windows"));
        assert_eq!(serde_json::from_str::<VariantSpec>(&old).unwrap(), full);
    }
}
