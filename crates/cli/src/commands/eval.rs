//! `pareto eval`: accuracy (and optionally measured speed) of a model, and of its compressed version
//! on the same samples with the deltas. Defaults follow the model family: a decoder gets the bundled
//! TinyStories excerpt under the PROVENANCE perplexity protocol, an encoder the bundled STS-B dev.

use std::path::PathBuf;

use anyhow::Context;
use pareto_eval::DeviceSpec;
use pareto_eval::compare::{Compressed, EvalOptions, EvalReport, SpeedReport};
use pareto_eval::perplexity::{PerplexityProtocol, Scoring};
use pareto_eval::samples::{Column, Columns, SampleFormat, Selection};
use pareto_eval::speed::SpeedOptions;

use crate::{output, progress};

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The original model: a folder (HF layout: config.json, *.safetensors, tokenizer.json) or a GGUF.
    pub model: PathBuf,
    /// A compressed model folder of the same family: both are evaluated on the same samples.
    #[arg(long)]
    pub compressed: Option<PathBuf>,
    /// Compare against the original quantized in memory to this GGUF type (q8_0, q4_0, q4_k, ...)
    /// and run on candle's quantized kernels (decoders only).
    #[arg(long, conflicts_with = "compressed")]
    pub quantize: Option<String>,
    /// Sample file: .txt (perplexity), .tsv/.csv/.jsonl (sentence pairs with scores, or texts with
    /// labels). Default: the bundled set for the model family.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Columns of a table/JSONL: `s1,s2,score` (pairs) or `text,label`, as names or 0-based indexes.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Plain text: keep the first N Unicode characters.
    #[arg(long, default_value_t = 65_536)]
    pub max_chars: usize,
    /// Perplexity window in tokens (llama-perplexity's -c with --protocol llama.cpp).
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// A GGUF model runs its linear layers on its stored blocks with candle's quantized kernels,
    /// which round activations to 8 bits as llama.cpp's do (closest to llama-perplexity; slow on
    /// the CPU for some types). Default: its dequantized weights in F32 (same values, exact math).
    #[arg(long)]
    pub stored_blocks: bool,
    /// Perplexity protocol: `pareto` (BOS + window, every token scored) or `llama.cpp` (as
    /// `llama-perplexity -c WINDOW`: second half of each window scored), comparable with its tables.
    #[arg(long, default_value = "pareto")]
    pub protocol: String,
    /// Force the sample file's format: text, tsv, csv or jsonl (default: from the extension; any
    /// extension that is not a table or JSONL is plain text).
    #[arg(long)]
    pub sample_format: Option<String>,
    /// Largest sample file read, in MiB (a guard against a wrong path or an endless stream).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub max_sample_mib: u64,
    /// Keep N records (pairs/labelled texts) or N windows (text); with --seed, N random records.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the random selection of --limit records.
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Windows or sentences per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Greedy continuation length compared between original and compressed (decoders).
    #[arg(long, default_value_t = 60)]
    pub greedy_steps: usize,
    /// Also measure speed: load time, prefill/decode tokens/s or sentences/s, peak RSS.
    #[arg(long)]
    pub speed: bool,
    /// Timed repeats of each speed measurement (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// With --speed, decoders: also decode this many sequences together (e.g. 1,4,16) and fit
    /// the step time per batch, judged on held-out batch sizes.
    #[arg(long, value_delimiter = ',', requires = "speed")]
    pub batches: Vec<usize>,
}

/// The batched-decode sweep of one model and its fitted step time.
fn batched_table(name: &str, s: &pareto_eval::speed::DecoderSpeed) {
    let Some(sweep) = &s.batched else { return };
    let held = |b: usize| sweep.fit.as_ref().and_then(|fit| fit.held_out.iter().find(|h| h.0 == b));
    let rows: Vec<Vec<String>> = sweep
        .points
        .iter()
        .map(|p| {
            vec![
                p.batch.to_string(),
                format!("{:.2}", p.step_ms.median),
                format!("{:.0}", p.decode_tokens_per_s),
                format!("{:.0}", p.decode_tokens_per_s / p.batch as f64),
                held(p.batch).map_or("-".into(), |h| format!("{:.2} ({:+.1} %)", h.2, (h.2 / h.1 - 1.0) * 100.0)),
            ]
        })
        .collect();
    println!(
        "batched decode, {name} ({} prompt tokens per sequence, {} steps):",
        pareto_eval::speed::BATCH_PROMPT_TOKENS,
        pareto_eval::speed::BATCH_DECODE_STEPS
    );
    output::table(
        &["batch", "step ms", "tok/s (all)", "tok/s per sequence", "step ms predicted without this point"],
        &rows,
    );
    if let Some(fit) = &sweep.fit {
        println!(
            "step ≈ {:.3} ms + {:.3} ms × batch{}",
            fit.fixed_ms,
            fit.per_seq_ms,
            fit.median_held_out_error.map_or(String::new(), |e| format!("; held-out median error {:.1} %", e * 100.0))
        );
    }
}

fn columns(spec: &[String]) -> anyhow::Result<Columns> {
    let c: Vec<Column> = spec.iter().map(|s| Column::parse(s.trim())).collect();
    match c.as_slice() {
        [a, b, s] => Ok(Columns::Pairs { sentence1: a.clone(), sentence2: b.clone(), score: s.clone() }),
        [t, l] => Ok(Columns::Labelled { text: t.clone(), label: l.clone() }),
        _ => anyhow::bail!("--columns takes 3 (sentence1,sentence2,score) or 2 (text,label) entries"),
    }
}

/// Turns the arguments into engine options.
pub fn options(args: &EvalArgs) -> anyhow::Result<EvalOptions> {
    let device: DeviceSpec = args.device.parse()?;
    let mut opts = EvalOptions {
        compressed: match (&args.compressed, &args.quantize) {
            (Some(dir), _) => Some(Compressed::Folder(dir.clone())),
            (None, Some(q)) => Some(Compressed::InMemory(q.clone())),
            (None, None) => None,
        },
        samples: args.samples.clone(),
        protocol: PerplexityProtocol {
            max_chars: Some(args.max_chars),
            window: args.window,
            max_windows: args.limit,
            batch: args.batch.max(1),
            scoring: Scoring::parse(&args.protocol)
                .ok_or_else(|| anyhow::anyhow!("--protocol {:?}: expected pareto or llama.cpp", args.protocol))?,
        },
        device,
        greedy_steps: args.greedy_steps,
        encoder_batch: args.batch.max(1) * 4,
        speed: args.speed.then(|| SpeedOptions {
            repeats: args.repeats.max(1),
            batches: args.batches.clone(),
            ..SpeedOptions::default()
        }),
        ..EvalOptions::default()
    };
    opts.sample_options.max_chars = Some(args.max_chars);
    anyhow::ensure!(args.max_sample_mib > 0, "--max-sample-mib 0: give 1 or more");
    opts.sample_options.limits.max_bytes = args.max_sample_mib.saturating_mul(1 << 20);
    opts.sample_options.columns = args.columns.as_deref().map(columns).transpose()?;
    opts.sample_options.format = args
        .sample_format
        .as_deref()
        .map(|f| {
            SampleFormat::parse(f)
                .ok_or_else(|| anyhow::anyhow!("--sample-format {f:?}: expected text, tsv, csv or jsonl"))
        })
        .transpose()?;
    opts.sample_options.selection = match (args.limit, args.seed) {
        (None, _) => Selection::All,
        (Some(n), None) => Selection::First { n },
        (Some(n), Some(seed)) => Selection::Random { n, seed },
    };
    Ok(opts)
}

pub fn run(args: &EvalArgs, json: bool) -> anyhow::Result<()> {
    let mut opts = options(args)?;
    let model = output::model_folder(&args.model)?;
    let stored = |p: &std::path::Path| (args.stored_blocks && pareto_core::import::is_gguf(p)).then(|| p.to_path_buf());
    opts.original_gguf = stored(&args.model);
    if let Some(Compressed::Folder(dir)) = &opts.compressed {
        opts.compressed_gguf = stored(dir);
        opts.compressed = Some(Compressed::Folder(output::model_folder(dir)?));
    }
    let ctx = progress::bar_context();
    let report =
        pareto_eval::evaluate(&model, &opts, &ctx).with_context(|| format!("evaluating {}", args.model.display()))?;
    drop(ctx);
    if json {
        return output::json(&report);
    }
    print_human(&report);
    Ok(())
}

fn f(v: f64, p: usize) -> String {
    format!("{v:.p$}")
}

fn signed(v: f64, p: usize) -> String {
    format!("{v:+.p$}")
}

fn print_human(r: &EvalReport) {
    println!("model:   {} ({:?})", r.model.display(), r.family);
    if let Some(c) = &r.compressed {
        match c {
            Compressed::Folder(d) => println!("vs:      {}", d.display()),
            Compressed::InMemory(q) => println!("vs:      the same model quantized in memory to {q}"),
        }
    }
    if let Some(s) = &r.samples {
        println!("samples: {} ({})", s.display(), r.sample_kind.as_deref().unwrap_or("?"));
    }
    if let Some(u) = &r.unavailable {
        println!("{u}");
    }
    if let Some(d) = &r.decoder {
        println!(
            "protocol: {} windows of {} tokens ({} tokens read from the text)",
            d.original.windows, d.protocol.window, d.original.tokens
        );
        let mut rows = vec![vec![
            "original".to_string(),
            f(d.original.mean_nll, 6),
            f(d.original.perplexity, 4),
            f(d.original.tokens_per_s, 0),
            "-".into(),
            "-".into(),
        ]];
        if let (Some(c), Some(cmp)) = (&d.compressed, &d.comparison) {
            rows.push(vec![
                "compressed".to_string(),
                f(c.mean_nll, 6),
                f(c.perplexity, 4),
                f(c.tokens_per_s, 0),
                format!("{} ± {}", f(cmp.mean_kl, 6), f(cmp.kl_stderr, 6)),
                format!("{:.2}%", cmp.top1_agreement * 100.0),
            ]);
            rows.push(vec![
                "delta".to_string(),
                signed(cmp.delta_nll, 6),
                format!("{:+.2}%", cmp.relative_ppl_change * 100.0),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        output::table(&["", "mean NLL", "PPL", "tok/s", "KL ± std. error", "top-1"], &rows);
        let g = &d.greedy;
        match (&d.compressed, g.first_divergence) {
            (None, _) => println!("greedy {} steps from BOS: {:?}", g.steps, g.original),
            (Some(_), None) => println!("greedy {} steps from BOS: identical", g.steps),
            (Some(_), Some(i)) => println!("greedy {} steps from BOS: first differs at id #{i}", g.steps),
        }
    }
    if let Some(e) = &r.encoder {
        let mut rows = Vec::new();
        let mut push = |name: &str, m: &pareto_eval::compare::EncoderMetrics| {
            if let Some(s) = m.sts {
                rows.push(vec![
                    name.to_string(),
                    f(s.spearman, 2),
                    f(s.pearson, 2),
                    "-".into(),
                    f(s.sentences_per_s, 1),
                ]);
            }
            if let Some(p) = m.proxy {
                rows.push(vec![
                    name.to_string(),
                    "-".into(),
                    "-".into(),
                    format!("{:.2}%", p.accuracy),
                    f(p.sentences_per_s, 1),
                ]);
            }
        };
        push("original", &e.original);
        if let Some(c) = &e.compressed {
            push("compressed", c);
        }
        if let Some(d) = &e.deltas {
            let o = |v: Option<f64>| v.map_or("-".to_string(), |v| signed(v, 2));
            rows.push(vec!["delta".into(), o(d.spearman), o(d.pearson), o(d.accuracy), String::new()]);
        }
        output::table(&["", "Spearman", "Pearson", "accuracy", "sent/s"], &rows);
        if let Some(s) = &e.embedding_shift {
            println!(
                "embeddings: mean cosine {:.6} (min {:.6}) over {} sentences",
                s.mean_cosine, s.min_cosine, s.sentences
            );
            if let Some(k) = s.retrieval {
                println!(
                    "retrieval top-{}: overlap {:.2}%, unchanged sets {:.2}%, top-1 {:.2}%",
                    k.k,
                    k.overlap_at_k * 100.0,
                    k.identical_sets * 100.0,
                    k.top1_agreement * 100.0
                );
            }
        }
    }
    match &r.speed {
        Some(SpeedReport::Decoder { original, compressed }) => {
            let row = |name: &str, s: &pareto_eval::speed::DecoderSpeed| {
                vec![
                    name.to_string(),
                    f(s.load_ms.median, 1),
                    format!("{} ±{}", f(s.prefill_tokens_per_s.median, 0), f(s.prefill_tokens_per_s.stddev, 0)),
                    format!("{} ±{}", f(s.decode_tokens_per_s.median, 0), f(s.decode_tokens_per_s.stddev, 0)),
                    s.peak_rss_bytes.map_or("-".into(), output::bytes),
                ]
            };
            let mut rows = vec![row("original", original)];
            if let Some(c) = compressed {
                rows.push(row("compressed", c));
            }
            output::table(&["speed (median)", "load ms", "prefill tok/s", "decode tok/s", "peak RSS (process)"], &rows);
            for (name, s) in std::iter::once(("original", original)).chain(compressed.iter().map(|c| ("compressed", c)))
            {
                batched_table(name, s);
            }
        }
        Some(SpeedReport::Encoder { original, compressed }) => {
            let row = |name: &str, s: &pareto_eval::speed::EncoderSpeed| {
                vec![
                    name.to_string(),
                    f(s.load_ms.median, 1),
                    format!("{} ±{}", f(s.sentences_per_s.median, 1), f(s.sentences_per_s.stddev, 1)),
                    s.peak_rss_bytes.map_or("-".into(), output::bytes),
                ]
            };
            let mut rows = vec![row("original", original)];
            if let Some(c) = compressed {
                rows.push(row("compressed", c));
            }
            output::table(&["speed (median)", "load ms", "sentences/s", "peak RSS (process)"], &rows);
        }
        None => {}
    }
}
