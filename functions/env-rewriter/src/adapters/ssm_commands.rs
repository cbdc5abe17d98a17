//! [`NodeDirectory`] and [`CommandRunner`] over SSM.

use std::collections::HashMap;

use aws_sdk_ssm::types::InstanceInformationStringFilter;

use crate::domain::{classify_invocation, CommandBatch, CommandSettings, InvocationStatus, ManagedNode, MAX_ERRORS};
use crate::ports::{CommandRunner, NodeDirectory};
use failover_core::error::AwsFailure;

/// SSM Run Command and node inventory in the client's region.
#[derive(Debug, Clone)]
pub struct SsmCommands {
    client: aws_sdk_ssm::Client,
}

impl SsmCommands {
    /// Wraps a client.
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self { client }
    }
}

fn tag_filter(key: &str, value: &str) -> InstanceInformationStringFilter {
    InstanceInformationStringFilter::builder()
        .key(format!("tag:{key}"))
        .values(value)
        .build()
        .expect("key and values are set")
}

impl NodeDirectory for SsmCommands {
    async fn tagged_nodes(&self, app: &str, environment: &str) -> Result<Vec<ManagedNode>, AwsFailure> {
        let mut pages = self
            .client
            .describe_instance_information()
            .filters(tag_filter("App", app))
            .filters(tag_filter("Environment", environment))
            .max_results(50)
            .into_paginator()
            .send();
        let mut nodes = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsFailure::from_sdk("DescribeInstanceInformation", &e))?;
            for info in page.instance_information_list() {
                if let Some(id) = info.instance_id() {
                    nodes.push(ManagedNode {
                        id: id.to_owned(),
                        app: app.to_owned(),
                        ping_status: info.ping_status().map(|p| p.as_str().to_owned()).unwrap_or_default(),
                    });
                }
            }
        }
        Ok(nodes)
    }
}

impl CommandRunner for SsmCommands {
    async fn send(&self, batch: &CommandBatch, settings: &CommandSettings) -> Result<String, AwsFailure> {
        let parameters: HashMap<String, Vec<String>> = batch
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), vec![v.clone()]))
            .collect();
        let output = self
            .client
            .send_command()
            .document_name(&settings.document_name)
            .set_instance_ids(Some(batch.instance_ids.clone()))
            .set_parameters(Some(parameters))
            .comment(&batch.comment)
            .max_concurrency(&settings.max_concurrency)
            .max_errors(MAX_ERRORS)
            .timeout_seconds(settings.delivery_timeout_seconds)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("SendCommand", &e))?;
        output
            .command()
            .and_then(|c| c.command_id())
            .map(str::to_owned)
            .ok_or_else(|| AwsFailure {
                operation: "SendCommand",
                code: None,
                message: "the response carries no CommandId".into(),
                class: failover_core::error::ErrorClass::Retryable,
            })
    }

    async fn invocation(&self, command_id: &str, instance_id: &str) -> Result<InvocationStatus, AwsFailure> {
        let result = self
            .client
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_invocation_does_not_exist()) => {
                return Ok(InvocationStatus::NotYetVisible)
            }
            Err(e) => return Err(AwsFailure::from_sdk("GetCommandInvocation", &e)),
        };
        let status = output.status().map(|s| s.as_str()).unwrap_or("Pending");
        let details = output.status_details().unwrap_or_default();
        let stdout = output.standard_output_content().unwrap_or_default();
        let stderr = output.standard_error_content().unwrap_or_default();
        Ok(match classify_invocation(status, details, stdout, stderr) {
            Some(result) => InvocationStatus::Done(result),
            None => InvocationStatus::Running(status.to_owned()),
        })
    }
}
