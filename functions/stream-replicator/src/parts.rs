//! Building the [`Replicator`], and the parts each stage is handed: the planner, the write
//! engine, the dead-letter sender, and the accessors the tests and the benchmark read.

use failover_core::retry::{Backoff, Deadline};
use failover_core::ConfigError;

use crate::apply::batching::BatchLimits;
use crate::plan::marker::OriginMarker;
use crate::ports::NoActiveRegion;

use crate::apply::engine::Engine;
use crate::config::ReplicatorConfig;
use crate::dead_letter::envelope::Route;
use crate::dead_letter::send::Sender;
use crate::domain::key::KeySchema;
use crate::handler::Replicator;
use crate::plan::decide::Rules;
use crate::plan::Planner;
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter};

impl<W, R, D> Replicator<W, R, D, NoActiveRegion> {
    /// Assembles the replicator; `writer` is the target table, `reader` the source table,
    /// `dead_letter` the bucket for what cannot be written.
    pub fn new(
        config: ReplicatorConfig,
        schema: KeySchema,
        writer: W,
        reader: R,
        dead_letter: D,
    ) -> Result<Self, ConfigError> {
        config.check_schema(&schema)?;
        let marker = OriginMarker::new(config.marker_attribute.clone(), config.source_region.as_str());
        let backoff = Backoff {
            max_attempts: config.write_attempts,
            ..Backoff::default()
        };
        Ok(Self {
            config,
            schema,
            marker,
            writer,
            reader,
            dead_letter,
            active_region: NoActiveRegion,
            direction_cache: Default::default(),
            backoff,
            limits: BatchLimits::default(),
        })
    }
}

impl<W, R, D, P> Replicator<W, R, D, P> {
    /// Replaces the retry backoff (the default: 50 ms base, 5 s cap, `WRITE_ATTEMPTS` attempts).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reads the published active region through `parameters` (Parameter Store in
    /// production), so that stranded records are reconciled, not replicated.
    pub fn with_active_region<Q>(self, parameters: Q) -> Replicator<W, R, D, Q> {
        Replicator {
            config: self.config,
            schema: self.schema,
            marker: self.marker,
            writer: self.writer,
            reader: self.reader,
            dead_letter: self.dead_letter,
            active_region: parameters,
            direction_cache: Default::default(),
            backoff: self.backoff,
            limits: self.limits,
        }
    }
}

impl<W: ItemWriter, R: ItemReader, D: DeadLetterStore, P> Replicator<W, R, D, P> {
    /// The configuration.
    pub fn config(&self) -> &ReplicatorConfig {
        &self.config
    }

    /// The key schema in use.
    pub fn schema(&self) -> &KeySchema {
        &self.schema
    }

    /// The target table.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The source table.
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The dead-letter bucket.
    pub fn dead_letter_store(&self) -> &D {
        &self.dead_letter
    }

    pub(crate) fn planner(&self) -> Planner<'_> {
        Planner::new(&self.config, &self.schema, &self.marker)
    }

    pub(crate) fn backoff(&self) -> Backoff {
        self.backoff
    }

    pub(crate) fn route(&self) -> Route<'_> {
        Route {
            source_table: &self.config.source_table,
            source_region: self.config.source_region.as_str(),
            target_table: &self.config.target_table,
            target_region: self.config.target_region.as_str(),
            marker_attribute: &self.config.marker_attribute,
        }
    }

    pub(crate) fn sender(&self, deadline: Deadline) -> Sender<'_, D> {
        Sender {
            store: &self.dead_letter,
            prefix: &self.config.dead_letter.prefix,
            route: self.route(),
            backoff: self.backoff,
            deadline,
            concurrency: self.config.write_concurrency,
        }
    }

    pub(crate) fn engine(&self, deadline: Deadline) -> Engine<'_, W, R> {
        self.engine_reading(&self.reader, deadline)
    }

    /// The engine, reading through `reader` instead of the source (reconciliation reads the
    /// target).
    pub(crate) fn engine_reading<'a, X: ItemReader>(&'a self, reader: &'a X, deadline: Deadline) -> Engine<'a, W, X> {
        Engine {
            writer: &self.writer,
            reader,
            schema: &self.schema,
            rules: Rules::new(&self.config, &self.marker),
            limits: self.limits,
            backoff: self.backoff,
            deadline,
            concurrency: self.config.write_concurrency,
        }
    }
}
