//! Repointing app servers: the pure decisions behind env-rewriter.

mod command;
mod db_host;
mod invocation;
mod selection;
mod target;
mod trigger;

pub use command::{
    batch_commands, command_comment, CommandBatch, CommandSettings, MAX_ERRORS, MAX_INSTANCES_PER_COMMAND,
};
pub use db_host::{DbHost, InvalidDbHost};
pub use invocation::{classify_invocation, InstanceResult, InvocationStatus};
pub use selection::{select_targets, AppInstance, ManagedNode, Selection, Skipped, Target};
pub use target::{Maintenance, RewriteTarget};
pub use trigger::{parameter_trigger_id, RewriteMode, RewriteTrigger, TriggerError};
