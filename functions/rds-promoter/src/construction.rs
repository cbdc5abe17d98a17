//! How a [`Promoter`] is put together from its ports: the SDK adapters in production
//! (`wiring.rs`), the in-memory fakes in tests.

use crate::adapters::MemoryHistory;
use crate::config::PromoterConfig;
use crate::handler::Promoter;
use crate::ports::ExecutionHistory;

impl<R, S, L, P, M> Promoter<R, S, L, P, M> {
    /// Wires the handler: `replica_side` talks to the replica's region, `source_side` and
    /// `mappings` to the primary region (with short timeouts), `lock` to the state table.
    /// Plan reports read an in-memory history until [`Promoter::with_history`] wires one.
    pub fn new(config: PromoterConfig, replica_side: R, source_side: S, lock: L, parameters: P, mappings: M) -> Self {
        Self {
            config,
            replica_side,
            source_side,
            lock,
            parameters,
            mappings,
            history: MemoryHistory::default(),
            reverse_mappings: None,
        }
    }

    /// Also turns the reverse replicator's mappings (in the failover region) during failback.
    pub fn with_reverse_mappings(self, reverse: M) -> Self {
        Self {
            reverse_mappings: Some(reverse),
            ..self
        }
    }
}

impl<R, S, L, P, M, H> Promoter<R, S, L, P, M, H> {
    /// The same handler, reading plan execution histories from `history`.
    pub fn with_history<H2: ExecutionHistory>(self, history: H2) -> Promoter<R, S, L, P, M, H2> {
        Promoter {
            config: self.config,
            replica_side: self.replica_side,
            source_side: self.source_side,
            lock: self.lock,
            parameters: self.parameters,
            mappings: self.mappings,
            history,
            reverse_mappings: self.reverse_mappings,
        }
    }

    /// The execution history the plan reports read (e.g. to record one in tests).
    pub fn history(&self) -> &H {
        &self.history
    }
}
