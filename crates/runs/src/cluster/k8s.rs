//! Kubernetes: an Indexed Job whose completion index selects the variant (the pod reads
//! `JOB_COMPLETION_INDEX`, which Kubernetes sets in Indexed mode), the shared folder mounted
//! from a PersistentVolumeClaim at the same path the submitter sees it, GPUs as resource limits.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::plan::TaskPlan;
use crate::error::{Result, RunError};

#[derive(Debug, Clone)]
pub struct K8sOptions {
    /// The container image that holds `pareto` (on its PATH, or at `bin`).
    pub image: String,
    /// The PersistentVolumeClaim that holds the shared folder.
    pub pvc: String,
    /// Where the claim is mounted in the pods: the model, the sample files and the output folder
    /// must all lie under it, at the same paths as here.
    pub shared_root: PathBuf,
    pub namespace: Option<String>,
    /// GPUs per pod (`nvidia.com/gpu`), 0 for none.
    pub gpus: u32,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// Pods at once (default: every variant).
    pub parallelism: Option<usize>,
    pub bin: String,
}

/// A job name Kubernetes accepts (a DNS label, ≤ 63 characters with room for the pod suffix).
fn job_name(plan: &TaskPlan) -> String {
    format!("pareto-sweep-{}", plan.key())
}

/// The Indexed Job that runs every variant of `plan` (written at `plan_path`).
pub fn manifest(plan: &TaskPlan, plan_path: &Path, o: &K8sOptions) -> Result<Value> {
    let root =
        std::path::absolute(&o.shared_root).map_err(|e| RunError::Io { path: o.shared_root.clone(), source: e })?;
    let outside: Vec<String> = std::iter::once(plan.out.clone())
        .chain(plan.inputs())
        .filter(|p| !p.starts_with(&root))
        .map(|p| p.display().to_string())
        .collect();
    if !outside.is_empty() {
        return Err(RunError::Cluster(format!(
            "the pods mount the claim `{}` at {} and would not see: {} (move them under it, or choose another --shared-root)",
            o.pvc,
            root.display(),
            outside.join(", ")
        )));
    }
    let n = plan.jobs.len();
    let mut limits = serde_json::Map::new();
    let mut requests = serde_json::Map::new();
    if o.gpus > 0 {
        limits.insert("nvidia.com/gpu".into(), json!(o.gpus.to_string()));
    }
    if let Some(c) = &o.cpu {
        requests.insert("cpu".into(), json!(c));
    }
    if let Some(m) = &o.memory {
        requests.insert("memory".into(), json!(m));
        limits.insert("memory".into(), json!(m));
    }
    let mut metadata = json!({ "name": job_name(plan), "labels": { "app.kubernetes.io/name": "pareto", "app.kubernetes.io/component": "sweep" } });
    if let Some(ns) = &o.namespace {
        metadata["namespace"] = json!(ns);
    }
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": o.parallelism.unwrap_or(n).clamp(1, n.max(1)),
            // One retry per variant, counted per index: a failing variant does not stop the others.
            "backoffLimitPerIndex": 1,
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "pareto" } },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "variant",
                        "image": o.image,
                        "command": [o.bin, "--quiet", "sweep-task", plan_path.display().to_string()],
                        "resources": { "limits": limits, "requests": requests },
                        "volumeMounts": [{ "name": "shared", "mountPath": root.display().to_string() }],
                    }],
                    "volumes": [{ "name": "shared", "persistentVolumeClaim": { "claimName": o.pvc } }],
                },
            },
        },
    }))
}

/// Writes the manifest beside the plan as `k8s-job-<key>.json` (kubectl takes JSON as it takes
/// YAML) and returns its path.
pub fn write_manifest(plan: &TaskPlan, plan_path: &Path, o: &K8sOptions) -> Result<PathBuf> {
    let m = manifest(plan, plan_path, o)?;
    let path = plan.cluster_dir().join(format!("k8s-job-{}.json", plan.key()));
    let text = serde_json::to_string_pretty(&m).map_err(|e| RunError::Cluster(e.to_string()))?;
    pareto_report::write_atomic(&path, &(text + "\n"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::VariantSpec;

    fn plan(out: &str, model: &str, n: usize) -> TaskPlan {
        let job = |i: usize| VariantSpec::new(model, format!("w{}", if i == 0 { 8 } else { 4 }), "high-volume-api");
        TaskPlan {
            tool: "pareto".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            out: out.into(),
            model_files: vec![],
            jobs: (0..n).map(job).collect(),
        }
    }

    fn options() -> K8sOptions {
        K8sOptions {
            image: "registry.example/pareto:0.1.0".into(),
            pvc: "models".into(),
            shared_root: "/shared".into(),
            namespace: Some("ml".into()),
            gpus: 1,
            cpu: Some("8".into()),
            memory: Some("64Gi".into()),
            parallelism: Some(2),
            bin: "pareto".into(),
        }
    }

    /// Checked against Kubernetes' own Job schema (v1.33, strict: unknown fields are errors), as
    /// published in kubernetes-validate 1.37.0 (see assets/schema/PROVENANCE.md).
    fn validator() -> jsonschema::Validator {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/schema/kubernetes-v1.33-job-batch-v1.strict.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    }

    #[test]
    fn the_manifest_is_a_valid_indexed_job() {
        let p = plan("/shared/out", "/shared/models/m", 3);
        let m = manifest(&p, Path::new("/shared/out/.pareto-cluster/plan-x.json"), &options()).unwrap();
        let v = validator();
        let errors: Vec<String> = v.iter_errors(&m).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(m["spec"]["completionMode"], "Indexed");
        assert_eq!(m["spec"]["completions"], 3);
        assert_eq!(m["spec"]["parallelism"], 2);
        let c = &m["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"][3], "/shared/out/.pareto-cluster/plan-x.json");
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/shared");
    }

    #[test]
    fn the_schema_check_can_fail() {
        // The same manifest with a misspelt field and a wrong type is rejected: the check above
        // is not vacuous.
        let p = plan("/shared/out", "/shared/models/m", 2);
        let mut m = manifest(&p, Path::new("/shared/out/.pareto-cluster/plan-x.json"), &options()).unwrap();
        m["spec"]["completionMod"] = json!("Indexed");
        assert!(!validator().is_valid(&m));
        let mut m = manifest(&p, Path::new("/shared/out/.pareto-cluster/plan-x.json"), &options()).unwrap();
        m["spec"]["completions"] = json!("three");
        assert!(!validator().is_valid(&m));
    }

    #[test]
    fn inputs_outside_the_mounted_claim_are_named() {
        let p = plan("/shared/out", "/home/me/models/m", 1);
        let e = manifest(&p, Path::new("/shared/out/.pareto-cluster/plan-x.json"), &options()).unwrap_err();
        assert!(e.to_string().contains("/home/me/models/m"), "{e}");
    }
}
