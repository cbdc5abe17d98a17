//! The dead letter: nothing the replicator cannot write is ever dropped. `send` stores
//! each such change whole in the dead-letter bucket ([`envelope`]) and only then counts it
//! done; `redrive` replays them later, each judged against the source ([`judge`]).

pub mod envelope;
pub(crate) mod judge;
pub mod redrive;
pub(crate) mod send;
