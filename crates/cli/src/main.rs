//! `pareto`: the headless face of the engine. Glue only: parse arguments, call the crates, print.
//! Results go to stdout (tables, or one JSON document with `--json`); progress, warnings and notes
//! to stderr.

mod commands;
mod output;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pareto", version, about = "Model compression studio: inspect, compress, evaluate, project")]
struct Cli {
    /// Print one machine-readable JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, parameters, per-tensor table and memory by dtype and role.
    Inspect(commands::inspect::InspectArgs),
    /// Apply a recipe tensor by tensor and write the compressed model.
    Compress(commands::compress::CompressArgs),
    /// Show the per-tensor plan and projected sizes of a recipe without doing the work.
    Plan(commands::plan::PlanArgs),
    /// List the quant formats and recipe presets.
    Formats(commands::formats::FormatsArgs),
    /// Measure accuracy and speed of the original and a compressed model on a sample set.
    Eval(commands::eval::EvalArgs),
    /// Project memory, latency, throughput and monthly cost on chosen hardware and traffic.
    Project(commands::project::ProjectArgs),
    /// Compress → validate → project several recipes and write the comparison report.
    Sweep(commands::sweep::SweepArgs),
    /// Compare run records: offline HTML, Markdown or JSON.
    Report(commands::report::ReportArgs),
    /// Write a recorded run's artifact again, in any format (checked against the record's model).
    Export(commands::export::ExportArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect(a) => commands::inspect::run(a, cli.json),
        Command::Compress(a) => commands::compress::run(a, cli.json),
        Command::Plan(a) => commands::plan::run(a, cli.json),
        Command::Formats(a) => commands::formats::run(a, cli.json),
        Command::Eval(a) => commands::eval::run(a, cli.json),
        Command::Project(a) => commands::project::run(a, cli.json),
        Command::Sweep(a) => commands::sweep::run(a, cli.json),
        Command::Report(a) => commands::report::run(a, cli.json),
        Command::Export(a) => commands::export::run(a, cli.json),
    };
    if let Err(err) = result {
        output::fail(&err, cli.json);
    }
}
