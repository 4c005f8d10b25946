//! pareto-runs: one variant end to end — compress, validate, project — recorded as a
//! [`pareto_report::RunRecord`]; and sweeps of many variants through an [`Executor`] (local
//! threads now; the interface is what a distributed engine would implement).

pub mod allocate;
pub mod calibrate;
pub mod cluster;
mod error;
mod hashing;
mod imatrix;
pub mod measured;
mod record;
pub mod scan;
mod scan_journal;
mod sweep;
mod variant;

pub use calibrate::{CalibrationReport, CalibrationSpec, calibrate, calibrate_with};
pub use error::{Result, RunError};
pub use hashing::{file_hash, hash_files, model_files, variant_id};
pub use imatrix::{compute_imatrix, imatrix_targets};
pub use record::{projection_record, source_model, tensor_records, totals, validation_record};
pub use scan::{Resume, Scan, ScanSpec, scan, scan_with};
pub use sweep::{
    Executor, LocalExecutor, Recorded, SWEEP_MARKER, SweepOutcome, prepare_out, record_path, recorded, sweep,
    write_record, write_sweep_reports,
};
pub use variant::{MIN_VALIDATION_WINDOWS, VariantSpec, assemble, rfc3339, run_variant, validation_of};
