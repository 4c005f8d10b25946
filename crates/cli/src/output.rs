//! Output conventions, as cargo and ripgrep have them: the command's result on stdout (human tables,
//! or one JSON document with `--json`); progress, warnings, notes and errors on stderr, so
//! `pareto inspect m | less` shows the model and a pipe never receives a progress bar.

use serde::Serialize;

/// Opens the model a command works on; what the user should know about how it was read (weight
/// files that are not part of it) goes to stderr as notes.
pub fn open_model(path: &std::path::Path) -> anyhow::Result<pareto_core::Model> {
    use anyhow::Context;
    let model = pareto_core::Model::open(path).with_context(|| format!("opening {}", path.display()))?;
    for note in model.notes() {
        eprintln!("note: {note}");
    }
    Ok(model)
}

/// Prints `value` as the command's JSON document.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Reports a failure: a one-line cause (with its chain) and a non-zero exit.
pub fn fail(err: &anyhow::Error, as_json: bool) -> ! {
    let chain: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    let line = dedup_chain(&chain);
    if as_json {
        println!("{}", serde_json::json!({ "error": line, "causes": chain }));
    }
    eprintln!("error: {line}");
    let cancelled =
        err.chain().any(|e| matches!(e.downcast_ref::<pareto_core::Error>(), Some(pareto_core::Error::Cancelled)));
    std::process::exit(if cancelled { 130 } else { 1 });
}

/// Joins an error chain into one line, skipping causes already quoted by their parent.
fn dedup_chain(chain: &[String]) -> String {
    let mut line = String::new();
    for c in chain {
        if !line.contains(c.as_str()) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(c);
        }
    }
    line
}

/// Human-readable byte counts (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.2} {}", UNITS[u]) }
}

/// A plain left-aligned text table on stdout (part of a command's result).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|s| s.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}
