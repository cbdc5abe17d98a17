//! The ports of env-rewriter: finding the app servers and commanding them.

use std::future::Future;

use crate::domain::{AppInstance, CommandBatch, CommandSettings, InvocationStatus, ManagedNode};
use failover_core::error::AwsFailure;

/// Finds running EC2 instances by their App and Environment tags.
pub trait InstanceFinder: Send + Sync {
    /// Running instances tagged `App ∈ apps` and `Environment = environment`, all pages.
    fn running_app_instances(
        &self,
        apps: &[String],
        environment: &str,
    ) -> impl Future<Output = Result<Vec<AppInstance>, AwsFailure>> + Send;
}

/// Lists the nodes SSM manages (EC2 and hybrid `mi-…`) by the same tags, with their ping status.
pub trait NodeDirectory: Send + Sync {
    /// Nodes tagged `App = app` and `Environment = environment`, all pages.
    fn tagged_nodes(
        &self,
        app: &str,
        environment: &str,
    ) -> impl Future<Output = Result<Vec<ManagedNode>, AwsFailure>> + Send;
}

/// Sends SSM commands and reads back each instance's invocation.
pub trait CommandRunner: Send + Sync {
    /// Sends one command; returns its CommandId.
    fn send(
        &self,
        batch: &CommandBatch,
        settings: &CommandSettings,
    ) -> impl Future<Output = Result<String, AwsFailure>> + Send;

    /// The state of the command on one instance.
    fn invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> impl Future<Output = Result<InvocationStatus, AwsFailure>> + Send;
}
