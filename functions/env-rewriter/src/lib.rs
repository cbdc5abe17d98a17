//! env-rewriter: points the tagged Magento and WooCommerce/WordPress servers at the active
//! region and database through SSM Run Command, and reports the result for every server.

pub mod config;
pub mod document;
pub mod handler;
pub mod outcome;
pub mod plan;
pub mod wiring;

pub use config::{Profile, RewriterConfig};
pub use handler::Rewriter;
pub use outcome::{Report, Status};
