//! Output conventions, as cargo and ripgrep have them: the command's result on stdout (human tables,
//! or one JSON document with `--json`); progress, warnings, notes and errors on stderr, so
//! `pareto inspect m | less` shows the model and a pipe never receives a progress bar.

use serde::Serialize;

/// Opens the model a command works on; what the user should know about how it was read (weight
/// files that are not part of it) goes to stderr as notes.
pub fn open_model(path: &std::path::Path) -> anyhow::Result<pareto_core::Model> {
    use anyhow::Context;
    let folder = model_folder(path)?;
    let model = pareto_core::Model::open(&folder).with_context(|| format!("opening {}", path.display()))?;
    for note in model.notes() {
        crate::note!("note: {note}");
    }
    Ok(model)
}

/// The model folder a command reads: `path` itself, or for a GGUF its Hugging Face conversion
/// (made once into the cache, with a progress bar, and reused).
pub fn model_folder(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    if !pareto_core::import::is_gguf(path) {
        return Ok(path.to_path_buf());
    }
    let ctx = crate::progress::bar_context();
    let folder =
        pareto_core::import::open_cached(path, &ctx).with_context(|| format!("reading the GGUF {}", path.display()))?;
    crate::note!("note: {} is read through its Hugging Face conversion {}", path.display(), folder.display());
    Ok(folder)
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--quiet`: no progress bars and no notes for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// An informational line on stderr (what was written, what was resumed, a hint), left out under
/// `--quiet`; warnings and errors use `eprintln!` directly.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            eprintln!($($arg)*);
        }
    };
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
    let cancelled = err.chain().any(|e| {
        matches!(e.downcast_ref::<pareto_core::Error>(), Some(pareto_core::Error::Cancelled))
            || e.downcast_ref::<pareto_runs::RunError>().is_some_and(pareto_runs::RunError::is_cancelled)
    });
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

/// A measured or projected number with the precision it has: three significant digits, whole
/// numbers from 100 up with thousands separators (3,263 tok/s, 697 USD/month, 2.29, 0.0000937),
/// never a scientific exponent in the common range.
pub fn sig(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{v:.decimals$}");
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_carry_the_precision_they_have() {
        let cases = [(3262.9442, "3,263"), (697.0041, "697"), (2.2915, "2.29"), (9.37e-5, "0.0000937")];
        for (v, want) in cases {
            assert_eq!(super::sig(v), want, "{v}");
        }
        assert_eq!(super::sig(-1_234_567.8), "-1,234,568");
        assert_eq!(super::sig(0.0), "0");
    }
}
