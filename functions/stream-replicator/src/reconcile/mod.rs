//! Stranded writes: after a failover the target's region is active (the published
//! `active-region`, [`direction`]), and records still in the source's stream, written before
//! the outage and never replicated, are reconciled instead of replicated: per key the
//! newer side is kept ([`decide`]: by version where known, otherwise the target wins), the
//! loser is written to the conflict log ([`conflict`]), and nothing is applied blindly over
//! the authoritative table (`run.rs`).

pub(crate) mod conflict;
pub mod decide;
pub mod direction;
pub(crate) mod run;
