//! env-rewriter: points the tagged Magento and WooCommerce/WordPress servers at the active
//! region and database through SSM Run Command, and reports the result for every server.
//!
//! `handler` is the script (parse → resolve → discover → plan → send → collect → report);
//! `resolve`, `fleet` and `collect` (the plan's repoint loop) its steps; `domain` and `plan` the pure decisions; `ports` the AWS
//! traits and `adapters` their SDK implementations and in-memory fakes; `document` renders
//! the SSM document from the repoint script; `wiring` builds the production handler.

pub mod adapters;
mod collect;
pub mod config;
pub mod document;
pub mod domain;
pub mod error;
mod fleet;
pub mod fleets;
pub mod handler;
pub mod plan;
pub mod ports;
pub mod report;
mod resolve;
pub mod wiring;

pub use config::{Profile, RewriterConfig};
pub use error::RewriterError;
pub use fleets::Fleet;
pub use handler::Rewriter;
pub use report::{RewriteReport, RewriteStatus};

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "env-rewriter";
