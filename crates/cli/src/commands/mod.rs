pub mod compress;
pub mod eval;
pub mod formats;
pub mod inspect;
pub mod plan;
pub mod project;
pub mod report;
pub mod sweep;
