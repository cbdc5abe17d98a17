//! [`ReplicationMappings`] over the Lambda API of the primary region.

use crate::domain::MappingView;
use crate::ports::ReplicationMappings;
use failover_core::error::AwsFailure;

/// The event source mappings in the client's region.
#[derive(Debug, Clone)]
pub struct LambdaMappings {
    client: aws_sdk_lambda::Client,
}

impl LambdaMappings {
    /// Wraps a client (its region is the mappings' region).
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

impl ReplicationMappings for LambdaMappings {
    async fn list(&self, function: &str) -> Result<Vec<MappingView>, AwsFailure> {
        let mut pages = self
            .client
            .list_event_source_mappings()
            .function_name(function)
            .into_paginator()
            .send();
        let mut mappings = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(Vec::new())
                }
                Err(err) => return Err(AwsFailure::from_sdk("ListEventSourceMappings", &err)),
            };
            mappings.extend(page.event_source_mappings().iter().filter_map(|m| {
                Some(MappingView {
                    uuid: m.uuid()?.to_owned(),
                    state: m.state().unwrap_or("Unknown").to_owned(),
                })
            }));
        }
        Ok(mappings)
    }

    async fn disable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("UpdateEventSourceMapping", &err))
    }

    async fn enable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("UpdateEventSourceMapping", &err))
    }
}
