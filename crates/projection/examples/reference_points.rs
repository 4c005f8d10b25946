//! Prints the fidelity table: `cargo run --release -p pareto-projection --example reference_points [csv]`.

use pareto_projection::{REFERENCE_POINTS_CSV, reference_points};

fn main() -> pareto_projection::Result<()> {
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|source| pareto_projection::ProjectionError::Io { path: path.into(), source })?,
        None => REFERENCE_POINTS_CSV.to_owned(),
    };
    println!("{:<28} {:>5} {:>10} {:>10} {:>6}", "id", "batch", "measured", "projected", "ratio");
    for r in reference_points(&text)? {
        println!("{:<28} {:>5} {:>10.2} {:>10.2} {:>6.2}", r.id, r.batch, r.measured_tok_s, r.projected_tok_s, r.ratio);
    }
    Ok(())
}
