//! The `pareto` binary end to end: exit codes, one-line errors, `--json` on stdout.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pareto(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pareto")).args(args).current_dir(repo()).output().expect("run pareto")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn inspect_json_describes_stories260k() {
    let out = pareto(&["inspect", "models/stories260K", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["summary"]["parameters"], 292_800);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 48);
}

#[test]
fn inspect_prints_a_readable_summary_on_stdout() {
    let out = pareto(&["inspect", "models/stories260K"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "architecture: llama",
        "5 layers, hidden 64, 8 heads, 4 KV heads, FFN 172, vocab 512",
        "parameters:   292.8K",
        "role",
        "model.embed_tokens.weight",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(!text.trim_start().starts_with('{'), "not JSON");
}

#[test]
fn compress_writes_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("q");
    let out =
        pareto(&["compress", "models/stories260K", "--recipe", "gguf-q8_0", "--out", dest.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["totals"]["tensors"], 48);
    assert!(v["totals"]["planned_bytes"].as_u64().unwrap() < v["totals"]["source_bytes"].as_u64().unwrap());
    assert!(dest.join("model.safetensors").exists());
    // Human mode prints the result (the table) on stdout, as cargo and ripgrep do; stderr keeps
    // progress and notes only.
    let dest2 = tmp.path().join("q2");
    let out = pareto(&["compress", "models/stories260K", "-r", "w8", "-o", dest2.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("int8_channel") && stdout.contains("wrote "), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("int8_channel"));
}

#[test]
fn failures_exit_non_zero_with_one_line_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let d = dest.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["compress", "models/stories260K", "--recipe", "w3", "--out", d], "valid presets"),
        (&["inspect", "models/does-not-exist"], "does-not-exist"),
        (&["compress", "models/stories260K", "--recipe", "w8", "--out", "models/stories260K"], "source"),
        (&["plan", "models/stories260K", "--recipe", "assets/presets/../../Cargo.toml"], "recipe"),
    ];
    for (args, needle) in cases {
        let out = pareto(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    assert!(!dest.exists());
    let out = pareto(&["inspect", "models/nope", "--json"]);
    assert!(!out.status.success());
    assert!(json(&out)["error"].as_str().unwrap().contains("nope"));
}

/// A model big enough that a q4_k compress runs for seconds (the k-quant scale search is the
/// slowest codec), so signals arrive mid-job: 24 tensors of 2048×2048 F32, 400 MB.
#[cfg(unix)]
fn slow_job(dir: &Path) -> (PathBuf, PathBuf) {
    use std::io::Write;
    let model = dir.join("big");
    std::fs::create_dir(&model).unwrap();
    let (rows, cols, n) = (2048usize, 2048usize, 24usize);
    let mut header = serde_json::Map::new();
    for i in 0..n {
        let begin = i * rows * cols * 4;
        header.insert(
            format!("model.layers.{i}.mlp.down_proj.weight"),
            serde_json::json!({ "dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, begin + rows * cols * 4] }),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(model.join("model.safetensors")).unwrap());
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&header).unwrap();
    let mut x = 0x2545_F491u32;
    let row: Vec<u8> = (0..cols)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x as f32 / u32::MAX as f32 - 0.5) * 0.1).to_le_bytes()
        })
        .collect();
    for _ in 0..n * rows {
        f.write_all(&row).unwrap();
    }
    f.flush().unwrap();
    let recipe = dir.join("q4k.toml");
    std::fs::write(&recipe, "name = \"q4k\"\nignore = []\n[default.quantize]\nformat = \"q4_k\"\n").unwrap();
    (model, recipe)
}

#[cfg(unix)]
fn temp_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pareto-tmp"))
        .collect()
}

/// Starts `pareto compress` and returns once its temporary output folder exists.
#[cfg(unix)]
fn start_compress(model: &Path, recipe: &Path, out: &Path) -> std::process::Child {
    start_writing(&["compress", model.to_str().unwrap(), "--recipe", recipe.to_str().unwrap()], out)
}

/// Starts `pareto ARGS --out OUT` and returns once its temporary output folder exists.
#[cfg(unix)]
fn start_writing(args: &[&str], out: &Path) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_pareto"))
        .args(args)
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pareto");
    let dir = out.parent().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while temp_folders(dir).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no temporary folder appeared");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Into the tensors (past the folder's creation).
    std::thread::sleep(std::time::Duration::from_millis(300));
    child
}

#[cfg(unix)]
fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{sig}");
}

/// The fault matrix of the CLI: SIGTERM and SIGINT (once: a clean cancel; twice: exit at once)
/// and SIGKILL (the next run sweeps what it left). Each time: exit 130 where the process could
/// say so, nothing under the output name, no temporary folder left, the source unchanged.
#[cfg(unix)]
#[test]
fn signals_leave_no_partial_output_and_kill_9_leftovers_are_swept() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, recipe) = slow_job(tmp.path());
    let weights = model.join("model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("out");
    for signals in [&["TERM"][..], &["INT"], &["INT", "INT"], &["TERM", "TERM"]] {
        let mut child = start_compress(&model, &recipe, &out);
        for s in signals {
            signal(&child, s);
        }
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(130), "{signals:?}: {status:?} {err}");
        assert!(!out.exists(), "{signals:?}: an output appeared");
        assert!(temp_folders(&work).is_empty(), "{signals:?}: left {:?}", temp_folders(&work));
    }
    let mut child = start_compress(&model, &recipe, &out);
    signal(&child, "KILL");
    child.wait().unwrap();
    assert!(!out.exists());
    assert_eq!(temp_folders(&work).len(), 1, "a killed run cannot clean up");
    // The next run into the same folder removes it and finishes.
    let done = pareto(
        &["compress", model.to_str().unwrap(), "--recipe", recipe.to_str().unwrap(), "--out"]
            .into_iter()
            .chain([out.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(err.contains("was killed"), "{err}");
    assert!(temp_folders(&work).is_empty() && out.join("model.safetensors").is_file());
    assert!(std::fs::read(&weights).unwrap() == before, "the source changed");
}

/// kill -9 in the middle of `pareto export` (a recorded run written again): nothing appears under
/// the output's name, the source is unchanged, and the next export into the same place removes
/// what the killed one left and finishes.
#[cfg(unix)]
#[test]
fn a_killed_export_leaves_nothing_under_its_name_and_the_next_one_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, _) = slow_job(tmp.path());
    let weights = model.join("model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    let sweep = tmp.path().join("sweep");
    let (m, sw) = (model.to_str().unwrap(), sweep.to_str().unwrap());
    let o = pareto(&["sweep", m, "--recipes", "w8", "--no-validate", "--out", sw]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let record = std::fs::read_dir(sweep.join("runs")).unwrap().next().unwrap().unwrap().path();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("exported");
    // Dense safetensors: this synthetic model has no config.json, which the engine formats need.
    let args = ["export", record.to_str().unwrap(), "--format", "safetensors"];
    let mut child = start_writing(&args, &out);
    signal(&child, "KILL");
    child.wait().unwrap();
    assert!(!out.exists(), "a killed export left something under the final name");
    assert_eq!(temp_folders(&work).len(), 1, "a killed run cannot clean up");
    let done = pareto(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(err.contains("was killed"), "{err}");
    assert!(temp_folders(&work).is_empty() && out.join("model.safetensors").is_file());
    assert!(std::fs::read(&weights).unwrap() == before, "the source changed");
}

/// `pareto export` writes a recorded run again in another format, from the model the record names,
/// and refuses a model whose weights are not the ones the run was made from.
#[test]
fn export_rewrites_a_recorded_run_and_checks_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    std::fs::create_dir(&m).unwrap();
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        std::fs::copy(repo().join("models/stories260K").join(f), m.join(f)).unwrap();
    }
    let sweep_dir = tmp.path().join("sweep");
    let (ms, sd) = (m.to_str().unwrap(), sweep_dir.to_str().unwrap());
    let out = pareto(&["sweep", ms, "--recipes", "gguf-q8_0", "--no-validate", "--scenario", "edge", "--out", sd]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = std::fs::read_dir(sweep_dir.join("runs")).unwrap().next().unwrap().unwrap().path();
    let gguf = tmp.path().join("gguf");
    let out = pareto(&["export", record.to_str().unwrap(), "--format", "gguf", "--out", gguf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(gguf.join("model.gguf").is_file());
    // The same path, other weights: refused, nothing written.
    let mut bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(m.join("model.safetensors"), bytes).unwrap();
    let again = tmp.path().join("again");
    let out = pareto(&["export", record.to_str().unwrap(), "--format", "gguf", "--out", again.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the model this run was made from"));
    assert!(!again.exists());
}

#[test]
fn shell_completions_and_man_pages_come_from_the_clap_definitions() {
    let out = pareto(&["completions", "bash"]);
    assert!(out.status.success());
    let bash = String::from_utf8_lossy(&out.stdout);
    assert!(bash.contains("_pareto()") && bash.contains("compress") && bash.contains("--gguf-weights-only"), "{bash}");
    let out = pareto(&["completions", "fish"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete -c pareto"));
    let out = pareto(&["man"]);
    let roff = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && roff.contains(".TH pareto") && roff.contains("compress"), "{roff}");
    let tmp = tempfile::tempdir().unwrap();
    let out = pareto(&["man", "--out", tmp.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(tmp.path().join("pareto-compress.1")).unwrap();
    assert!(page.contains("\\-\\-force") || page.contains("--force"), "{page}");
    assert!(tmp.path().join("pareto-export.1").is_file() && tmp.path().join("pareto.1").is_file());
}

/// An output folder the user may not write to: a named error, nothing left behind. Root ignores
/// mode bits, so under root the command runs as `nobody` (setpriv, util-linux).
#[cfg(target_os = "linux")]
#[test]
fn a_read_only_output_folder_is_a_named_error() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = ro.join("out");
    // The model and the binary are copied into the world-readable test folder: the checkout itself
    // may sit in a folder `nobody` cannot enter.
    let model = tmp.path().join("m");
    std::fs::create_dir(&model).unwrap();
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        std::fs::copy(repo().join("models/stories260K").join(f), model.join(f)).unwrap();
    }
    let bin = tmp.path().join("pareto");
    std::fs::copy(env!("CARGO_BIN_EXE_pareto"), &bin).unwrap();
    let args = ["compress", model.to_str().unwrap(), "-r", "w8", "-o", out.to_str().unwrap()];
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let result = if root {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .env("PARETO_HASH_CACHE", "off")
            .current_dir(tmp.path())
            .output()
            .expect("setpriv (util-linux) runs the command as nobody")
    } else {
        pareto(&args)
    };
    let err = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied") && err.contains(ro.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0, "nothing left in the read-only folder");
}

/// A real full disk: a 200 KiB tmpfs as the output's file system, too small for each export
/// (dense safetensors, GGUF, compressed-tensors). Each time a named error (ENOSPC, "disk full"),
/// exit 1, nothing under the output name and no temporary folder left; the source unchanged.
/// Mounting needs root (CI runs as root); elsewhere the test says it was skipped.
#[cfg(target_os = "linux")]
#[test]
fn a_full_tmpfs_gives_a_named_error_and_leaves_nothing() {
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(&disk)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _mount = Mount(disk.clone());
    let model = repo().join("models/stories260K");
    let before = std::fs::read(model.join("model.safetensors")).unwrap();
    for (recipe, format) in [("w8", "safetensors"), ("gguf-q8_0", "gguf"), ("w4-g128", "compressed-tensors")] {
        let out = disk.join(format!("out-{format}"));
        let args = ["compress", model.to_str().unwrap(), "-r", recipe, "--format", format, "-o", out.to_str().unwrap()];
        let result = pareto(&args);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{format}: {err}");
        assert!(err.contains("No space left on device") && err.contains("disk full"), "{format}: {err}");
        let left: Vec<_> = std::fs::read_dir(&disk).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{format}: left {left:?} on the full disk");
    }
    assert!(std::fs::read(model.join("model.safetensors")).unwrap() == before, "the source changed");
}

#[test]
fn scan_then_allocate_writes_a_recipe_within_budget_that_compress_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan.json");
    let samples = "assets/samples/tinystories/tinystories-valid-excerpt.txt";
    let s = scan.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let run_scan = |extra: &[&str]| {
        let args = ["scan", "models/stories260K", "--samples", samples, "--skip", "65536", "--windows", "4"];
        Command::new(env!("CARGO_BIN_EXE_pareto"))
            .args([&args[..], &["--formats", "q4_0,q5_0,q8_0"], extra].concat())
            .current_dir(repo())
            .env("PARETO_CACHE_DIR", &cache)
            .output()
            .expect("run pareto")
    };
    let out = run_scan(&["--out", s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&scan).unwrap()).unwrap();
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 37, "the embedding, 35 layer linears and the untied head");
    // More bits, less divergence, for every tensor that takes both formats.
    for t in tensors {
        let kl = |f: &str| {
            t["candidates"].as_array().unwrap().iter().find(|c| c["format"] == f).map(|c| c["kl"].as_f64().unwrap())
        };
        if let (Some(a), Some(b)) = (kl("q4_0"), kl("q8_0")) {
            assert!(b < a, "{}: q8_0 {b} vs q4_0 {a}", t["name"]);
        }
    }
    assert!(v["proxy_spearman"].as_f64().unwrap() > 0.5, "the proxy ranks roughly like the measurement");
    // The same scan measuring q4_0 only, the others predicted from the proxies: one measured
    // candidate per tensor, each prediction the anchor's KL scaled by the proxy ratio, and the
    // predictions rank like the full scan's measurements of the same candidates.
    let predicted_scan = tmp.path().join("anchor.json");
    let out = run_scan(&["--predict-from", "q4_0", "--out", predicted_scan.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every q4_0 measurement comes from the first scan's journal.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("measurements reused from an earlier run of the same scan"), "{stderr}");
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&predicted_scan).unwrap()).unwrap();
    let (mut measured_kl, mut predicted_kl) = (Vec::new(), Vec::new());
    for (full, pred) in tensors.iter().zip(a["tensors"].as_array().unwrap()) {
        let cands = pred["candidates"].as_array().unwrap();
        let anchor = cands.iter().find(|c| c.get("measured").is_none()).expect("the measured anchor");
        assert_eq!(cands.iter().filter(|c| c.get("measured").is_none()).count(), 1, "{}", pred["name"]);
        for c in cands.iter().filter(|c| c["measured"] == false) {
            let expect =
                anchor["kl"].as_f64().unwrap() * c["proxy"].as_f64().unwrap() / anchor["proxy"].as_f64().unwrap();
            assert!((c["kl"].as_f64().unwrap() - expect).abs() <= 1e-12 * expect.abs().max(1.0));
            let same = full["candidates"].as_array().unwrap().iter().find(|f| f["format"] == c["format"]).unwrap();
            measured_kl.push(same["kl"].as_f64().unwrap());
            predicted_kl.push(c["kl"].as_f64().unwrap());
        }
    }
    let rank = |v: &[f64]| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        idx.iter().enumerate().for_each(|(k, &i)| r[i] = k as f64);
        r
    };
    let (rm, rp) = (rank(&measured_kl), rank(&predicted_kl));
    let n = rm.len() as f64;
    let d2: f64 = rm.iter().zip(&rp).map(|(a, b)| (a - b).powi(2)).sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(rho > 0.85, "predicted vs measured KL rank correlation {rho} over {n} candidates");

    // A budget: the size of llama.cpp's Q4_K_M policy; the recipe plans within it and compresses.
    let recipe = tmp.path().join("auto.toml");
    let r = recipe.to_str().unwrap();
    let out = pareto(&["allocate", "models/stories260K", "--scan", s, "--like", "gguf-q4_k_m", "--out", r, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = json(&out);
    assert!(a["bytes"].as_u64().unwrap() <= a["budget_bytes"].as_u64().unwrap());
    let frontier = a["frontier"].as_array().unwrap();
    assert!(frontier.len() > 2);
    assert!(frontier.windows(2).all(|w| w[1]["predicted_kl"].as_f64() <= w[0]["predicted_kl"].as_f64()));
    let plan = pareto(&["plan", "models/stories260K", "--recipe", r, "--json"]);
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let gguf = tmp.path().join("gguf");
    let out =
        pareto(&["compress", "models/stories260K", "--recipe", r, "--format", "gguf", "--out", gguf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Again without --force: refused; a user's file is never replaced, even with --force.
    let again = pareto(&["allocate", "models/stories260K", "--scan", s, "--like", "gguf-q4_k_m", "--out", r]);
    assert!(!again.status.success());
    let mine = tmp.path().join("mine.toml");
    std::fs::write(&mine, "name = \"mine\"\n").unwrap();
    let m = mine.to_str().unwrap();
    let out = pareto(&["allocate", "models/stories260K", "--scan", s, "--like", "gguf-q4_k_m", "--out", m, "--force"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "name = \"mine\"\n");
    // An infeasible budget names the smallest allocation.
    let out = pareto(&["allocate", "models/stories260K", "--scan", s, "--max-bytes", "1000", "--out", r, "--force"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1000 bytes") && err.contains("smallest") || err.contains("other tensors"), "{err}");
    // A device budget: what the MCU's memory leaves beside one sequence's KV cache; a device that
    // cannot hold the KV cache at all is named.
    let fits = |concurrent: &str| {
        pareto(&[
            "allocate",
            "models/stories260K",
            "--scan",
            s,
            "--fits",
            "cortex_m7_stm32h743",
            "--scenario",
            "edge",
            "--concurrent",
            concurrent,
            "--out",
            r,
            "--force",
            "--json",
        ])
    };
    let out = fits("1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json(&out)["budget_bytes"].as_u64().unwrap() < 1 << 20);
    let out = fits("1000");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot hold even the KV cache"));
    // A serving target: the most accurate allocation whose projected decode on the device meets it.
    // `pareto project` of the written recipe meets it too; a stricter target takes fewer bytes; one
    // no allocation meets is named with what the smallest projects.
    let target = |tok_s: &str, file: &str| {
        let f = tmp.path().join(file);
        let o = pareto(&[
            "allocate",
            "models/stories260K",
            "--scan",
            s,
            "--min-decode-tok-s",
            tok_s,
            "--device",
            "rpi5",
            "--scenario",
            "edge",
            "--out",
            f.to_str().unwrap(),
            "--json",
        ]);
        (o, f)
    };
    let decode = |recipe: &Path| {
        let o = pareto(&[
            "project",
            "models/stories260K",
            "--recipe",
            recipe.to_str().unwrap(),
            "--device",
            "rpi5",
            "--scenario",
            "edge",
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json(&o)["compressed"]["latency"]["decode_tok_s_batch1"]["value"].as_f64().unwrap()
    };
    let (never, _) = target("1000000", "never.toml");
    assert!(!never.status.success());
    let err = String::from_utf8_lossy(&never.stderr).to_string();
    assert!(err.contains("even the smallest allocation"), "{err}");
    // Targets between the original's speed and the smallest allocation's (both from the fitted
    // projection, so the test follows a refit of its constants).
    let fastest: f64 =
        err.split(" projects ").nth(1).and_then(|t| t.split(' ').next()).and_then(|t| t.parse().ok()).expect(&err);
    let original = pareto(&["project", "models/stories260K", "--device", "rpi5", "--scenario", "edge", "--json"]);
    let slowest = json(&original)["original"]["latency"]["decode_tok_s_batch1"]["value"].as_f64().unwrap();
    assert!(fastest > slowest * 1.05, "{slowest} {fastest}");
    // The strict one only the smallest allocation meets (its speed as printed, less the rounding).
    let (t_loose, t_strict) = (slowest + 0.05 * (fastest - slowest), fastest - 0.5);
    let (loose, loose_file) = target(&format!("{t_loose:.1}"), "fast.toml");
    assert!(loose.status.success(), "{}", String::from_utf8_lossy(&loose.stderr));
    let (strict, strict_file) = target(&format!("{t_strict:.1}"), "faster.toml");
    assert!(strict.status.success(), "{}", String::from_utf8_lossy(&strict.stderr));
    assert!(decode(&loose_file) >= t_loose && decode(&strict_file) >= t_strict);
    assert!(json(&strict)["bytes"].as_u64() < json(&loose)["bytes"].as_u64(), "{slowest} {fastest}");
    assert!(json(&strict)["predicted_kl"].as_f64() > json(&loose)["predicted_kl"].as_f64());
    // A sweep of allocations along the predicted frontier: one recipe file and one record each.
    let sweep = tmp.path().join("sweep");
    let out = pareto(&[
        "sweep",
        "models/stories260K",
        "--auto",
        "3",
        "--scan",
        s,
        "--no-validate",
        "--scenario",
        "edge",
        "--out",
        sweep.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_dir(sweep.join("auto")).unwrap().count(), 3);
    assert_eq!(std::fs::read_dir(sweep.join("runs")).unwrap().count(), 3);
    // Its report carries the scan: a heatmap per format (layers × tensor kinds) and the worst tensors.
    let html = std::fs::read_to_string(sweep.join("report.html")).unwrap();
    for f in ["q4_0", "q5_0", "q8_0"] {
        assert!(html.contains(&format!(r#"aria-label="sensitivity to {f} by layer and tensor""#)), "{f}");
    }
    assert!(html.contains("<title>4, self_attn.q_proj: KL "), "a layer-4 q_proj cell");
    let md = std::fs::read_to_string(sweep.join("report.md")).unwrap();
    assert!(md.contains("**Sensitivity scan.**") && md.contains("| most sensitive | format | KL (nats/token) |"));
    // `pareto report --scan` gives the same; a scan of other weights is refused by name.
    let records: Vec<String> = std::fs::read_dir(sweep.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    let again = tmp.path().join("again.md");
    let mut args = vec!["report", "--scan", s, "--out", again.to_str().unwrap()];
    args.extend(records.iter().map(String::as_str));
    let out = pareto(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let section = |text: &str| text[text.find("**Sensitivity scan.**").unwrap()..].to_string();
    assert_eq!(section(&std::fs::read_to_string(&again).unwrap()), section(&md));
    let mut other: serde_json::Value = serde_json::from_slice(&std::fs::read(&scan).unwrap()).unwrap();
    other["model_key"] = serde_json::json!("0000");
    let other_scan = tmp.path().join("other-scan.json");
    std::fs::write(&other_scan, other.to_string()).unwrap();
    let mut args = vec!["report", "--scan", other_scan.to_str().unwrap(), "--out", again.to_str().unwrap()];
    args.extend(records.iter().map(String::as_str));
    let out = pareto(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("measured on other weights"));
    // A sample set too short for a stable estimate says how many tokens it needs.
    let short = tmp.path().join("short.txt");
    std::fs::write(&short, "Once upon a time there was a cat. ".repeat(80)).unwrap();
    let out = pareto(&[
        "scan",
        "models/stories260K",
        "--samples",
        short.to_str().unwrap(),
        "--out",
        tmp.path().join("s2.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1024"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fidelity_reports_held_out_error_and_names_bad_measurement_files() {
    let out = pareto(&["project", "--fidelity", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert!(v["points"].as_array().unwrap().len() >= 40);
    assert!(v["overall"]["median_abs"].as_f64().unwrap() < v["overall"]["default_median_abs"].as_f64().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("m.csv");
    std::fs::write(&bad, "id,device\nx,y\n").unwrap();
    let out = pareto(&["project", "--fidelity", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing column"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--quiet` keeps stderr free of progress and notes (the result still on stdout); the help states
/// the exit statuses.
#[test]
fn quiet_leaves_stderr_to_warnings_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // A GGUF source: the run notes where its conversion is read from.
    let run = |extra: &[&str], out: &str| {
        let out = tmp.path().join(out);
        let mut args = vec!["compress", "models/gguf/stories260K.gguf", "-r", "gguf-q8_0", "--format", "gguf", "-o"];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_pareto"))
            .args(&args)
            .current_dir(repo())
            .env("PARETO_CACHE_DIR", tmp.path().join("cache"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let loud = run(&[], "a");
    let quiet = run(&["--quiet"], "b");
    assert!(String::from_utf8_lossy(&loud.stderr).contains("note: "), "the notes of a normal run");
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("token_embd.weight"));
    let help = String::from_utf8_lossy(&pareto(&["--help"]).stdout).into_owned();
    assert!(help.contains("Exit status: 0 done, 1 error") && help.contains("130 cancelled"), "{help}");
}

/// `pareto cache` measures hit rates on a log and `pareto project --cache-from` prices them: the
/// measured rates and tenants replace the scenario's assumptions, and say where they came from.
#[test]
fn cache_estimates_feed_the_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log.jsonl");
    let asks = ["How do I reset my password?", "What is the refund policy?", "Where is my order?"];
    let mut body = String::new();
    // Each question three times, a minute apart, from two teams; nothing semantic at 0.99.
    for (i, q) in asks.iter().cycle().take(9).enumerate() {
        let team = if i % 3 == 0 { "ads" } else { "search" };
        body.push_str(&format!(
            "{{\"query\":\"{q}\",\"ts\":{},\"team\":\"{team}\",\"input_tokens\":10,\"output_tokens\":30}}\n",
            1_767_225_600 + 60 * i
        ));
    }
    std::fs::write(&log, body).unwrap();
    let est = tmp.path().join("est.json");
    let args = ["cache", log.to_str().unwrap(), "--no-pairs", "--thresholds", "0.99", "--ttl", "none,2m", "-o"];
    let out = pareto(&[&args[..], &[est.to_str().unwrap(), "--json"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let rows = v["rows"].as_array().unwrap();
    // No expiry: 6 of 9 repeat an earlier question. A 2-minute TTL: each repeat comes 3 minutes later.
    assert_eq!(rows[0]["exact_hits"], 6);
    assert_eq!(rows[1]["exact_hits"], 0);
    assert_eq!(v["tenants"][0]["name"], "search");
    // Per team, in the one shared cache: ads asks q0 three times (2 hits), search q1 and q2 (4 of 6).
    let team = |row: usize, name: &str| {
        rows[row]["tenants"].as_array().unwrap().iter().find(|t| t["name"] == name).cloned().unwrap()
    };
    assert_eq!((team(0, "ads")["requests"].as_u64(), team(0, "search")["requests"].as_u64()), (Some(3), Some(6)));
    assert!((team(0, "ads")["exact_hit_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(team(1, "search")["exact_hit_rate"].as_f64(), Some(0.0), "none within a 2-minute TTL");
    let again = pareto(&[&args[..], &[est.to_str().unwrap()]].concat());
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--force"));

    let proj = pareto(&[
        "project",
        "models/stories260K",
        "--scenario",
        "multi-tenant",
        "--cache-from",
        est.to_str().unwrap(),
        "--json",
    ]);
    assert!(proj.status.success(), "{}", String::from_utf8_lossy(&proj.stderr));
    let p = json(&proj);
    let savings = &p["original"]["cost"]["caching_savings_usd_month"];
    assert!(savings["formula"].as_str().unwrap().contains("with 0% exact"), "the conservative row (TTL): {savings}");
    assert!(
        savings["sources"][0].as_str().unwrap().contains("measured by `pareto cache`")
            && savings["sources"][0].as_str().unwrap().contains("ttl 120 s")
    );
    let tenants: Vec<&str> =
        p["original"]["tenants"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tenants, ["search", "ads"]);
    // The same rates as a scenario file every command reads.
    let sc = tmp.path().join("measured.toml");
    let args = ["cache", log.to_str().unwrap(), "--no-pairs", "--thresholds", "0.99", "--base", "multi-tenant"];
    let wrote = pareto(&[&args[..], &["--scenario-out", sc.to_str().unwrap()]].concat());
    assert!(wrote.status.success(), "{}", String::from_utf8_lossy(&wrote.stderr));
    let text = std::fs::read_to_string(&sc).unwrap();
    assert!(text.contains("exact_hit_rate = 0.6666") && text.contains("name = \"search\""), "{text}");
    assert!(text.contains("cache_hit_rate = 0.6666"), "each team's measured hit rate: {text}");
    let by_team = pareto(&["project", "models/stories260K", "--scenario", sc.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&by_team.stdout);
    assert!(table.contains("cost by team") && table.contains("real-time vs batch:"), "{table}");
    let bad = pareto(&["project", "models/stories260K", "--cache-from", log.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a `pareto cache --out` estimate"));
}

/// Names under `dir`, recursively, that a killed run may leave behind: temporary folders and
/// half-written files.
#[cfg(unix)]
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains("pareto-tmp") || name.contains(".tmp-") {
                out.push(e.path().display().to_string());
            }
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

/// `kill -9` in the middle of a sweep: every record on disk is whole, and the next run resumes the
/// finished variants, redoes the rest and leaves nothing temporary behind.
#[cfg(unix)]
#[test]
fn a_killed_sweep_leaves_whole_records_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let recipes = "w8,w4-g32,gguf-q8_0,gguf-q4_0,w4-g128,fp8";
    let args = ["sweep", "models/stories260K", "--recipes", recipes, "--out", out.to_str().unwrap()];
    let mut child = Command::new(env!("CARGO_BIN_EXE_pareto"))
        .args(args)
        .current_dir(repo())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = out.join("runs");
    let records = || -> Vec<PathBuf> {
        std::fs::read_dir(&runs)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while records().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no record appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(&child, "KILL");
    child.wait().unwrap();
    let before = records();
    for r in &before {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(r).unwrap()).expect("a whole record");
        assert!(v["schema_version"].is_u64(), "{}", r.display());
    }
    let again = pareto(&args);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert_eq!(records().len(), 6, "every variant recorded after the resume");
    assert_eq!(err.matches("resumed: ").count(), before.len(), "{err}");
    assert!(leftovers(&out).is_empty(), "left behind: {:?}", leftovers(&out));
    assert!(out.join("report.html").is_file());
}

/// `pareto eval --speed --batches` measured on a machine calibrates `pareto project` on it: the
/// projected batch-1 decode lands on the measured one (within the per-sequence cost the batched
/// sweep adds), where the defaults were far off.
#[test]
fn a_speed_report_calibrates_the_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let out = pareto(&["eval", "models/stories260K", "--speed", "--batches", "1,2,4", "--repeats", "2", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = json(&out);
    // The fit takes batch 1 from the sweep (the run its per-sequence slope comes from).
    let measured = eval["speed"]["original"]["batched"]["points"][0]["decode_tokens_per_s"].as_f64().unwrap();
    assert_eq!(eval["speed"]["original"]["batched"]["points"][0]["batch"], 1);
    let file = tmp.path().join("speed.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let project = |extra: &[&str]| {
        let args = ["project", "models/stories260K", "--device", "x86_c7i_8xlarge", "--scenario", "edge", "--json"];
        let o = pareto(&[&args[..], extra].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        json(&o)
    };
    let decode = |v: &serde_json::Value| v["original"]["latency"]["decode_tok_s_batch1"]["value"].as_f64().unwrap();
    let calibrated = project(&["--calibration", file.to_str().unwrap()]);
    let default = project(&[]);
    assert!(calibrated["efficiency"]["source"].as_str().unwrap().contains("measured on x86_c7i_8xlarge"));
    // The batched sweep's slope (a tiny model's can come out at or below zero: then none is used).
    let slope = eval["speed"]["original"]["batched"]["fit"]["per_seq_ms"].as_f64().unwrap();
    let per_seq = calibrated["efficiency"]["per_seq_s"].as_f64().unwrap();
    assert!((per_seq - slope.max(0.0) / 1e3).abs() < 1e-12, "{per_seq} vs slope {slope} ms");
    let (c, d) = (decode(&calibrated), decode(&default));
    assert!((c / measured - 1.0).abs() < 0.15, "calibrated {c} vs measured {measured}");
    assert!((d / measured - 1.0).abs() > (c / measured - 1.0).abs(), "defaults {d} are no closer");
    // The table says the measured points beside the projection, batch by batch.
    let args =
        ["project", "models/stories260K", "--device", "x86_c7i_8xlarge", "--calibration", file.to_str().unwrap()];
    let table = pareto(&args);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("decode measured on this machine vs projected"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.split_whitespace().count() >= 7 && l.contains("tok/s")).collect();
    let batches: Vec<&str> = rows.iter().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(&batches[..3], ["1", "2", "4"], "{text}");
    let bad = pareto(&["project", "models/stories260K", "--calibration", "assets/scenarios/edge.toml"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a `pareto eval --speed --json` report"));
}

/// A sample file past the size cap is refused by name with the way to raise the cap, and the cap
/// can be raised (here lowered to 1 MiB so an endless stream meets it quickly).
#[cfg(unix)]
#[test]
fn the_sample_size_cap_is_named_and_can_be_set() {
    let tmp = tempfile::tempdir().unwrap();
    let zero = tmp.path().join("zero.txt");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let out = pareto(&["eval", "models/stories260K", "--samples", zero.to_str().unwrap(), "--max-sample-mib", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("over the limit of 1048576") && err.contains("--max-sample-mib"), "{err}");
    let out = pareto(&["eval", "models/stories260K", "--max-sample-mib", "0"]);
    assert!(!out.status.success());
}

/// `plan --imatrix` previews what `compress --imatrix` does: llama.cpp's Q4_0 policy guards the
/// first eighth of ffn_down (SmolLM2's layers 0..3) with Q4_1 only with an importance matrix, and a
/// matrix of another model is refused by name.
#[test]
fn plan_with_an_importance_matrix_shows_the_guarded_layers_and_refuses_another_models() {
    let tmp = tempfile::tempdir().unwrap();
    let smol = "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    let (im, other) = (tmp.path().join("smol.gguf"), tmp.path().join("stories.gguf"));
    for (model, out) in [(smol, &im), ("models/stories260K", &other)] {
        let args = ["imatrix", model, "--samples", "assets/samples/tinystories/tinystories-valid-excerpt.txt"];
        let made =
            pareto(&[&args[..], &["--windows", "1", "--window", "32", "-q", "-o", out.to_str().unwrap()]].concat());
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    }
    let down = |extra: &[&str]| -> Vec<(u64, String)> {
        let out = pareto(&[&["plan", smol, "--recipe", "gguf-q4_0", "--json"], extra].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out)["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"].as_str().unwrap().ends_with("mlp.down_proj.weight"))
            .map(|t| (t["layer"].as_u64().unwrap(), t["action"]["format"].as_str().unwrap().to_string()))
            .collect()
    };
    let plain = down(&[]);
    assert_eq!(plain.len(), 30);
    assert!(plain.iter().all(|(_, f)| f == "q4_0"), "{plain:?}");
    let guarded = down(&["--imatrix", im.to_str().unwrap()]);
    assert!(guarded.iter().all(|(layer, f)| f == if *layer < 3 { "q4_1" } else { "q4_0" }), "{guarded:?}");

    let human = pareto(&["plan", smol, "--recipe", "gguf-q4_0", "--imatrix", im.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("importance matrix") && text.contains("210 weights covered"), "{text}");
    let refused = pareto(&["plan", smol, "--recipe", "gguf-q4_0", "--imatrix", other.to_str().unwrap()]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("64 columns in the imatrix, 576 in the model"), "{err}");
}
