//! `pareto sweep --executor slurm` on a real Slurm: the one-node cluster of
//! `scripts/slurm-local.sh`, which CI starts before the tests and sets PARETO_TEST_SLURM=1 for.
//! Elsewhere these tests say why they did not run; with the variable set, a missing scheduler fails.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pareto(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pareto")).args(args).current_dir(repo()).output().expect("run pareto")
}

/// True when a Slurm controller answers; false (and a note) when none is there and none is expected.
fn slurm_up() -> bool {
    let answers = Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("PARETO_TEST_SLURM").is_some() {
        assert!(answers, "PARETO_TEST_SLURM is set but sinfo gets no answer: bash scripts/slurm-local.sh start");
        return true;
    }
    if !answers {
        eprintln!("skipped: no Slurm here (bash scripts/slurm-local.sh start, then PARETO_TEST_SLURM=1)");
    }
    answers
}

const RECIPES: [&str; 3] = ["w8", "w4-g32", "gguf-q4_0"];

const MODEL: &str = "models/stories260K";

fn sweep_args<'a>(model: &'a str, out: &'a Path, recipes: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["sweep", model, "--recipes", recipes, "--out", out.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {}\nstderr: {err}", String::from_utf8_lossy(&out.stdout));
    err
}

/// The run records of a sweep folder by recipe name, with what legitimately differs between two
/// runs of the same variant blanked: when it ran, and the folder its artifact went to.
fn records(out: &Path) -> Vec<(String, serde_json::Value, PathBuf)> {
    let mut v: Vec<(String, serde_json::Value, PathBuf)> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let name = r["recipe"]["name"].as_str().unwrap().to_string();
            r["started_at"] = "".into();
            r["finished_at"] = "".into();
            let artifact = PathBuf::from(r["artifact"]["path"].as_str().unwrap());
            r["artifact"]["path"] = artifact.file_name().unwrap().to_str().unwrap().into();
            (name, r, p)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Where two JSON values first differ, as a path.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value::{Array, Object};
    match (a, b) {
        (Object(x), Object(y)) => x.keys().chain(y.keys()).find_map(|k| match (x.get(k), y.get(k)) {
            (Some(u), Some(v)) => first_difference(u, v, &format!("{at}/{k}")),
            _ => Some(format!("{at}/{k} (missing on one side)")),
        }),
        (Array(x), Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, &format!("{at}[{i}]")))
        }
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

fn squeue(job: &str) -> String {
    let o = Command::new("squeue").args(["-h", "-r", "-o", "%i %T", "-j", job]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_slurm_sweep_records_what_a_local_sweep_records() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local, slurm) = (tmp.path().join("local"), tmp.path().join("slurm"));
    let recipes = RECIPES.join(",");
    // Tasks get every path absolute, and records keep the model's path as the task saw it: give
    // both sweeps the same spelling.
    let model = repo().join(MODEL).canonicalize().unwrap();
    let model = model.to_str().unwrap();
    ok(&pareto(&sweep_args(model, &local, &recipes, &[])));
    let err = ok(&pareto(&sweep_args(model, &slurm, &recipes, &["--executor", "slurm", "--poll", "0.3"])));
    assert!(err.contains("submitted 3 variant(s) as Slurm array job"), "{err}");
    assert!(err.contains("the nodes see the sweep's folder"), "{err}");
    // The original was evaluated once, by the baseline job, into the shared folder.
    assert!(err.contains("and baseline job"), "{err}");
    let cluster = slurm.join(".pareto-cluster");
    let files = |dir: &Path, pick: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
        names.filter(|p| pick(&p.file_name().unwrap().to_string_lossy())).collect()
    };
    assert_eq!(files(&cluster.join("baselines"), &|n| n.ends_with(".bin")).len(), 1);
    let logs = files(&cluster.join("logs"), &|n| n.starts_with("baseline-"));
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("baseline: the original evaluated on 1 sample set(s)"), "{log}");

    let (a, b) = (records(&local), records(&slurm));
    assert_eq!(a.len(), 3);
    for ((name, ra, _), (_, rb, _)) in a.iter().zip(&b) {
        assert!(
            ra == rb,
            "{name}: the Slurm task's record differs from the local one at {:?}",
            first_difference(ra, rb, "")
        );
    }
    // The report is the records' function: the sweep's own equals `pareto report` over them.
    let by_name = |n: &str| b.iter().find(|r| r.0 == n).unwrap().2.to_str().unwrap().to_string();
    let ordered: Vec<String> = RECIPES.iter().map(|n| by_name(n)).collect();
    for ext in ["md", "html"] {
        let again = tmp.path().join(format!("again.{ext}"));
        let mut args = vec!["report", "--out", again.to_str().unwrap()];
        args.extend(ordered.iter().map(String::as_str));
        ok(&pareto(&args));
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(slurm.join(format!("report.{ext}"))).unwrap(),
            "report.{ext}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(local.join("report.md")).unwrap(),
        std::fs::read_to_string(slurm.join("report.md")).unwrap()
    );

    // A second run finds every record and submits nothing.
    let err = ok(&pareto(&sweep_args(model, &slurm, &recipes, &["--executor", "slurm"])));
    assert_eq!(err.matches("resumed: ").count(), 3, "{err}");
    assert!(!err.contains("submitted"), "{err}");
}

#[test]
fn a_cancelled_task_is_resubmitted_and_a_failing_one_is_reported_with_its_log() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    // GPTQ without a calibration set: the recipe loads (its id is computed here), and the task
    // that runs it fails on the node.
    let bad = tmp.path().join("gptq-uncalibrated.toml");
    std::fs::write(
        &bad,
        "name = \"gptq-uncalibrated\"\n\n[default.quantize]\nformat = \"int4_g32_sym\"\nalgorithm = \"gptq\"\n",
    )
    .unwrap();
    let recipes = format!("w8,{},gguf-q4_0", bad.display());
    let args = sweep_args(MODEL, &out, &recipes, &["--executor", "slurm", "--poll", "0.3"]);

    let detached = pareto(&[&args[..], &["--detach", "--json"]].concat());
    ok(&detached);
    let v: serde_json::Value = serde_json::from_slice(&detached.stdout).unwrap();
    let queued = v["queued"].as_array().unwrap();
    assert_eq!(queued.len(), 3, "{v}");
    // The array waits on the probe job, so its tasks are still pending: cancel the third.
    let third = queued[2][1].as_str().unwrap().to_string();
    let array = third.split('_').next().unwrap().to_string();
    assert!(squeue(&third).contains(&third), "{third} not queued: {}", squeue(&array));
    assert!(Command::new("scancel").arg(&third).status().unwrap().success());

    // The same command follows what is still queued (or finds its record), submits the
    // cancelled variant again — never w8, which nobody cancelled — and reports the failure with
    // its log while the others finish.
    let again = pareto(&args);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "the failing variant fails the sweep: {err}");
    let history = std::fs::read_to_string(out.join(".pareto-cluster/submissions.jsonl")).unwrap();
    let submissions: Vec<serde_json::Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(submissions.len(), 2, "{history}");
    let id_of = |name: &str| {
        let (_, r, _) = records(&out).into_iter().find(|r| r.0 == name).unwrap();
        serde_json::Value::from(r["id"].as_str().unwrap())
    };
    let resubmitted = submissions[1]["variants"].as_array().unwrap();
    assert!(resubmitted.contains(&id_of("gguf-q4_0")), "{history}");
    assert!(!resubmitted.contains(&id_of("w8")), "{history}");
    let failed = err.lines().find(|l| l.starts_with("failed: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(failed.contains("gptq-uncalibrated") && failed.contains("log: "), "{failed}");
    assert!(failed.contains("calibration set"), "the log's last lines name the cause: {failed}");
    let log = failed.split("log: ").nth(1).unwrap().split([')', ' ']).next().unwrap();
    assert!(Path::new(log).is_file(), "{log}");
    let names: Vec<String> = records(&out).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["gguf-q4_0", "w8"]);
    assert!(out.join("report.html").is_file(), "the finished variants still get their report");
}

#[test]
fn bad_cluster_input_is_named_before_any_work() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let args = sweep_args(MODEL, &out, "w8", &["--executor", "slurm", "--poll", "0.3"]);

    let o = pareto(&[&args[..], &["--partition", "no-such-partition"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("sbatch") && err.contains("nvalid partition"), "{err}");

    // Nodes that cannot run the binary (not installed there): the probe job fails, the array is
    // cancelled, and the error says where to look.
    let o = pareto(&[&args[..], &["--remote-bin", "/nonexistent/pareto"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("probe job") && err.contains("log: "), "{err}");
    assert!(!out.join("runs").read_dir().is_ok_and(|mut d| d.next().is_some()), "no record was written");

    // No Slurm client on PATH at all.
    let o = Command::new(env!("CARGO_BIN_EXE_pareto"))
        .args(&args)
        .current_dir(repo())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("`sbatch` is not on PATH"), "{err}");
}

/// Records of another Pareto version are never mixed into a sweep (no scheduler needed).
#[test]
fn records_of_another_version_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    ok(&pareto(&sweep_args(MODEL, &out, "w8", &["--no-validate"])));
    let (_, _, path) = records(&out).remove(0);
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    r["tool"]["version"] = "0.0.1".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let o = pareto(&sweep_args(MODEL, &out, "w8", &["--no-validate"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("was written by pareto 0.0.1"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the record is left as it was");
}

/// `--emit k8s` writes the plan and an Indexed Job for the variants not yet recorded; the task
/// contract is the same command the Slurm tasks run (here run by hand, as a pod would).
#[test]
fn a_kubernetes_job_runs_the_same_task_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let args = sweep_args(MODEL, &out, "w8,gguf-q4_0", &["--no-validate"]);
    let model = repo().join("models/stories260K").canonicalize().unwrap();
    let root = model.parent().unwrap().parent().unwrap().to_str().unwrap().to_string();
    // The model lies outside the default shared root (the output folder's parent): named.
    let o = pareto(&[&args[..], &["--emit", "k8s", "--image", "pareto:0.1", "--pvc", "models"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("would not see") && err.contains("stories260K"), "{err}");

    let out_in_root = repo().join("target").join(format!("k8s-test-{}", std::process::id()));
    let args = sweep_args(MODEL, &out_in_root, "w8,gguf-q4_0", &["--no-validate"]);
    let k8s = ["--emit", "k8s", "--image", "pareto:0.1", "--pvc", "models", "--shared-root", &root, "--gpus", "1"];
    let o = pareto(&[&args[..], &k8s[..], &["--json"]].concat());
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v["manifest"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(manifest["spec"]["completions"], 2);
    let command: Vec<String> = manifest["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    // Run the pods' command for both indices, as Kubernetes would (it sets JOB_COMPLETION_INDEX).
    for index in ["0", "1"] {
        let o = Command::new(env!("CARGO_BIN_EXE_pareto"))
            .args(&command[1..])
            .env("JOB_COMPLETION_INDEX", index)
            .output()
            .unwrap();
        ok(&o);
    }
    let err = ok(&pareto(&args));
    assert_eq!(err.matches("resumed: ").count(), 2, "{err}");
    let _ = std::fs::remove_dir_all(&out_in_root);
}

/// Ctrl-C while following: the jobs this run submitted are cancelled on the cluster, and the
/// command exits 130 as every cancelled command does.
#[cfg(unix)]
#[test]
fn interrupting_the_follower_cancels_its_jobs() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let recipes = RECIPES.join(",");
    let args = sweep_args(MODEL, &out, &recipes, &["--executor", "slurm", "--poll", "0.2"]);
    let child = Command::new(env!("CARGO_BIN_EXE_pareto"))
        .args(&args)
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let history = out.join(".pareto-cluster/submissions.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !history.is_file() {
        assert!(std::time::Instant::now() < deadline, "nothing was submitted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let submission: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&history).unwrap().trim()).unwrap();
    let array = submission["array_job"].as_str().unwrap().to_string();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelling Slurm job(s)") && err.contains(&array), "{err}");
    // Nothing of the array is left to run (cancelled elements may linger a moment as such).
    let live = squeue(&array);
    assert!(!live.contains("PENDING") && !live.contains("RUNNING"), "{live}");
}
