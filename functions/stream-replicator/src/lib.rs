//! stream-replicator: keeps the secondary region's DynamoDB table a faithful copy of the
//! primary's by replaying the primary table's stream, lossless under faults.
//!
//! [`wiring::build`] builds the [`Replicator`] once at init from the [`config`]; its
//! [`Replicator::handle_lambda_event`] (`handler.rs`) runs the pipeline for each batch, in
//! one pass over the payload:
//!
//! 1. **event** (`src/event/`): `wire` reads the records one at a time and `decode` checks
//!    each into a change, its new image still raw JSON;
//! 2. **plan** (`src/plan/`): `coalesce` keeps each key's last change, whose image alone is
//!    then built, and `decide` picks the action per key (`marker` recognises the
//!    replicator's own writes);
//! 3. **apply** (`src/apply/`): `engine` carries out the actions through the [`ports`] (the
//!    [`adapters::dynamodb`] adapter in production, [`adapters::memory`] in tests), and
//!    `checkpoint` finds where Lambda must resume;
//! 4. **dead letter** (`src/dead_letter/`): what cannot be written, or spent its retry
//!    budget, is stored whole in the bucket ([`adapters::s3`]) before it counts as done;
//!    `{"redrive": {}}` replays it later, judged against the source;
//! 5. **report** (`report.rs`): the response names that record, and the [`BatchReport`]
//!    becomes the EMF metric line.
//!
//! `{"drainCheck": {}}` (`src/drain/`, routed by [`entry`]) compares what the source stream
//! still holds with the target, for the failback plan.
//!
//! Items, keys and numbers (`src/domain/`) are shared by every stage; an invalid event is
//! an [`EventError`]. Everything but the engine and the adapters is plain synchronous code.

pub mod adapters;
pub mod allocator;
mod apply;
pub mod config;
pub mod dead_letter;
mod domain;
pub mod drain;
pub mod entry;
mod error;
mod event;
mod handler;
mod parts;
mod plan;
pub mod ports;
pub mod reconcile;
mod report;
pub mod wiring;

pub use apply::checkpoint::RecordTally;
pub use config::ReplicatorConfig;
pub use dead_letter::redrive::{RedriveOptions, RedriveReport};
pub use domain::item::{Attributes, Value};
pub use domain::key::{InvalidKeySchema, KeySchema};
pub use drain::{DrainOptions, DrainReport};
pub use error::EventError;
pub use handler::Replicator;
pub use plan::decide::SkipReason;
pub use plan::marker::OriginMarker;
pub use plan::{BatchPlan, PlanPhase};
pub use report::{BatchReport, HandledBatch, LagStats, Response, FUNCTION};
