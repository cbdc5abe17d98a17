//! [`InstanceFinder`] over EC2 DescribeInstances.

use aws_sdk_ec2::types::Filter;

use crate::domain::AppInstance;
use crate::ports::InstanceFinder;
use failover_core::error::AwsFailure;

/// EC2 instances in the client's region.
#[derive(Debug, Clone)]
pub struct Ec2Instances {
    client: aws_sdk_ec2::Client,
}

impl Ec2Instances {
    /// Wraps a client.
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Self { client }
    }
}

impl InstanceFinder for Ec2Instances {
    async fn running_app_instances(&self, apps: &[String], environment: &str) -> Result<Vec<AppInstance>, AwsFailure> {
        let mut pages = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:App")
                    .set_values(Some(apps.to_vec()))
                    .build(),
            )
            .filters(Filter::builder().name("tag:Environment").values(environment).build())
            .filters(Filter::builder().name("instance-state-name").values("running").build())
            // 50 per page: large fleets take several pages, each answered well within timeouts.
            .max_results(50)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsFailure::from_sdk("DescribeInstances", &e))?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let app = instance
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("App"))
                    .and_then(|t| t.value());
                if let (Some(id), Some(app)) = (instance.instance_id(), app) {
                    found.push(AppInstance {
                        id: id.to_owned(),
                        app: app.to_owned(),
                    });
                }
            }
        }
        Ok(found)
    }
}
