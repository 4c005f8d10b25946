//! `pareto`: the headless face of the engine. Glue only: parse arguments, call the crates, print.
//! Results go to stdout (tables, or one JSON document with `--json`); progress, warnings and notes
//! to stderr.

mod commands;
mod output;
mod progress;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pareto",
    version,
    about = "Model compression studio: inspect, compress, evaluate, project",
    after_help = "Exit status: 0 done, 1 error (named on stderr; with --json also as a JSON document on stdout), \
2 usage error, 130 cancelled (Ctrl-C / SIGTERM; nothing partial is left under the output name).\n\
Results go to stdout; progress bars, notes and warnings to stderr (no bars when stderr is not a terminal). \
Colour follows NO_COLOR and the terminal."
)]
struct Cli {
    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars or notes on stderr (warnings and errors are still printed).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, parameters, per-tensor table and memory by dtype and role.
    Inspect(commands::inspect::InspectArgs),
    /// Apply a recipe tensor by tensor and write the compressed model.
    Compress(commands::compress::CompressArgs),
    /// Convert a GGUF into a Hugging Face folder (config.json, model.safetensors, tokenizer.json).
    Convert(commands::convert::ConvertArgs),
    /// Show the per-tensor plan and projected sizes of a recipe without doing the work.
    Plan(commands::plan::PlanArgs),
    /// List the quant formats and recipe presets.
    Formats(commands::formats::FormatsArgs),
    /// Measure accuracy and speed of the original and a compressed model on a sample set.
    Eval(commands::eval::EvalArgs),
    /// Project memory, latency, throughput and monthly cost on chosen hardware and traffic.
    Project(commands::project::ProjectArgs),
    /// Compress → validate → project several recipes and write the comparison report.
    Sweep(Box<commands::sweep::SweepArgs>),
    /// One variant of a cluster sweep's plan (what Slurm array tasks and Kubernetes pods run).
    #[command(hide = true)]
    SweepTask(commands::sweep::SweepTaskArgs),
    /// Compare run records: offline HTML, Markdown or JSON.
    Report(commands::report::ReportArgs),
    /// Compute a llama.cpp importance matrix (GGUF or .dat) for `llama-quantize --imatrix`, or check one.
    Imatrix(commands::imatrix::ImatrixArgs),
    /// Per-tensor sensitivity: the measured KL divergence of compressing each weight alone, per format.
    Scan(commands::scan::ScanCmd),
    /// Mixed precision under a budget: the recipe with the least predicted KL that fits (exact knapsack).
    Allocate(commands::allocate::AllocateArgs),
    /// Cache hit rates measured on a query log: exact and semantic (per threshold), wrong answers, tenants.
    Cache(commands::cache::CacheArgs),
    /// Write a recorded run's artifact again, in any format (checked against the record's model).
    Export(commands::export::ExportArgs),
    /// Print a shell completion script: `pareto completions bash > /etc/bash_completion.d/pareto`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder with `--out`.
    Man {
        /// A folder for pareto.1 and pareto-COMMAND.1 (e.g. ~/.local/share/man/man1).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    output::set_quiet(cli.quiet);
    let result = match &cli.command {
        Command::Inspect(a) => commands::inspect::run(a, cli.json),
        Command::Compress(a) => commands::compress::run(a, cli.json),
        Command::Plan(a) => commands::plan::run(a, cli.json),
        Command::Convert(a) => commands::convert::run(a, cli.json),
        Command::Formats(a) => commands::formats::run(a, cli.json),
        Command::Eval(a) => commands::eval::run(a, cli.json),
        Command::Project(a) => commands::project::run(a, cli.json),
        Command::Sweep(a) => commands::sweep::run(a, cli.json),
        Command::SweepTask(a) => commands::sweep::run_sweep_task(a),
        Command::Report(a) => commands::report::run(a, cli.json),
        Command::Cache(a) => commands::cache::run(a, cli.json),
        Command::Export(a) => commands::export::run(a, cli.json),
        Command::Imatrix(a) => commands::imatrix::run(a, cli.json),
        Command::Scan(a) => commands::scan::run(a, cli.json),
        Command::Allocate(a) => commands::allocate::run(a, cli.json),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "pareto", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { out } => man_pages(out.as_deref()),
    };
    if let Err(err) = result {
        output::fail(&err, cli.json);
    }
}

/// The man page of `pareto` on stdout, or pages for it and every command written into `out`
/// (each atomically: a temp file renamed into place).
fn man_pages(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    let mut pages = vec![("pareto.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        // clap names are `&'static str` without its `string` feature; a handful of short names
        // leaked by a process that exits right after is the smaller cost.
        let name: &'static str = Box::leak(format!("pareto-{}", sub.get_name()).into_boxed_str());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        pareto_report::write_atomic(&dir.join(&file), &String::from_utf8_lossy(&roff))?;
        note!("wrote {}", dir.join(&file).display());
    }
    Ok(())
}
