//! pareto-report: the versioned run record (the source of truth for one compression run), the
//! N-way comparison with its accuracy-vs-cost frontier and recommendation, and the renderers:
//! JSON, Markdown for pull-request comments, and a self-contained offline HTML page whose charts
//! are inline SVG.

mod compare;
mod error;
mod html;
mod markdown;
mod output;
mod record;
mod sensitivity;
mod svg;
mod teams;

pub use compare::{
    ACCEPTABLE_KL, ACCEPTABLE_LOSS, Comparison, Constraint, Recommendation, VariantRow, WEIGHT_ERROR_PROXY,
    available_metrics, compare, compare_on, compare_with, with_error,
};
pub use error::{ReportError, Result};
pub use html::render_html;
pub use markdown::render_markdown;
pub use output::{is_pareto_report, write_atomic, write_report};
pub use record::*;
pub use sensitivity::Sensitivity;
