//! `pareto scan`: per-tensor sensitivity — the measured KL divergence of compressing each linear
//! weight alone in each candidate format — saved for `pareto allocate --scan`.

use std::path::{Path, PathBuf};

use pareto_core::export::write_small_file;
use pareto_runs::{Resume, Scan, ScanSpec, scan_with};

use crate::{output, progress};

/// The sample protocol and candidates, shared by `scan` and `allocate`.
#[derive(clap::Args, Clone)]
pub struct ScanArgs {
    /// Plain text the sensitivity is measured on (keep it apart from the validation text).
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Windows of text measured.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub windows: usize,
    /// Tokens per window, BOS included (capped at the model's positions).
    #[arg(long, default_value_t = 256, value_name = "TOKENS")]
    pub window: usize,
    /// Characters skipped at the start of the samples file.
    #[arg(long, default_value_t = 0, value_name = "CHARS")]
    pub skip: usize,
    /// Candidate formats (registry ids; a shape a format cannot hold follows its fallback chain).
    #[arg(long, value_delimiter = ',', default_values_t = pareto_runs::scan::DEFAULT_FORMATS.iter().map(|f| f.to_string()).collect::<Vec<String>>())]
    pub formats: Vec<String>,
    /// Measure the KL of this format only and predict the other candidates' from the proxy
    /// (KL × proxy ratio): one measurement per tensor instead of one per format.
    #[arg(long, value_name = "FORMAT")]
    pub predict_from: Option<String>,
    /// Measure every candidate again instead of reusing what an earlier run of the same scan
    /// (same weights, text and windows) measured; its journal in the cache folder starts again.
    #[arg(long)]
    pub fresh: bool,
}

impl ScanArgs {
    pub fn spec(&self) -> anyhow::Result<ScanSpec> {
        let Some(samples) = &self.samples else { anyhow::bail!("give --samples FILE (plain text) to measure on") };
        Ok(ScanSpec {
            windows: self.windows,
            window: self.window,
            skip_chars: self.skip,
            formats: self.formats.clone(),
            predict_from: self.predict_from.clone(),
            ..ScanSpec::new(samples)
        })
    }
}

#[derive(clap::Args)]
pub struct ScanCmd {
    /// The source model (a LLaMA-style decoder folder); never modified.
    pub path: PathBuf,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Where to write the scan (JSON).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Replace an earlier scan at `--out` (never any other file).
    #[arg(long)]
    pub force: bool,
}

/// Runs the scan with a progress bar.
pub fn measure(model: &Path, args: &ScanArgs) -> anyhow::Result<Scan> {
    let spec = args.spec()?;
    let ctx = progress::bar_context();
    let resume = match Resume::default() {
        Resume::In(dir) if args.fresh => Resume::Fresh(dir),
        r => r,
    };
    let s = scan_with(model, &spec, &resume, &ctx)?;
    drop(ctx);
    for note in &s.notes {
        crate::note!("note: {note}");
    }
    Ok(s)
}

/// Writes a scan atomically; `--force` replaces only an earlier scan.
pub fn save(s: &Scan, out: &Path, force: bool, sources: &pareto_core::export::SourcePaths) -> anyhow::Result<PathBuf> {
    let text = serde_json::to_vec_pretty(s)?;
    let is_scan = |p: &Path| std::fs::read(p).ok().and_then(|b| serde_json::from_slice::<Scan>(&b).ok()).is_some();
    Ok(write_small_file(out, &text, force, sources, "a pareto scan", &is_scan)?)
}

pub fn run(args: &ScanCmd, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let s = measure(model.root(), &args.scan)?;
    let written = save(&s, &args.out, args.force, &model.source_paths())?;
    if json {
        return output::json(&s);
    }
    let formats: Vec<String> = args.scan.formats.clone();
    let mut header = vec!["tensor"];
    header.extend(formats.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = s
        .tensors
        .iter()
        .map(|t| {
            let mut row = vec![t.name.clone()];
            for f in &formats {
                // A format the shape cannot hold shows what it fell back to.
                let cell = t.candidates.iter().find(|c| &c.format == f).map_or("·".to_string(), |c| output::sig(c.kl));
                row.push(cell);
            }
            row
        })
        .collect();
    println!("mean KL divergence (nats/token) with only that tensor compressed; · = format not used for this shape");
    output::table(&header, &rows);
    println!(
        "{} tensors × {} formats on {} tokens in {:.1} s; proxy (importance-weighted weight error) rank correlation with KL: {}",
        s.tensors.len(),
        formats.len(),
        s.tokens,
        s.seconds,
        s.proxy_spearman.map_or("n/a".into(), |r| format!("{r:.3}"))
    );
    println!("wrote {}", written.display());
    Ok(())
}
