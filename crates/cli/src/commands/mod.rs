pub mod compress;
pub mod formats;
pub mod inspect;
pub mod plan;
pub mod project;
