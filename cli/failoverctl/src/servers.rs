//! Per-server convergence for `failoverctl status`: each app server's latest run of the
//! repoint document (ListCommandInvocations), and whether it points where the shop runs now
//! (the command's region and dbHost against the published active region and db-host).

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey};
use failover_core::error::AwsFailure;
use serde_json::{json, Value};

use crate::error::CtlError;

/// At most this many pages (50 each) of commands and of invocations are read per region.
const PAGES: usize = 4;

/// Every server that ran the document in the region, newest invocation each.
pub async fn convergence(
    ssm: &aws_sdk_ssm::Client,
    region: &str,
    document: &str,
    active_region: Option<&str>,
    db_host: Option<&str>,
) -> Result<Value, CtlError> {
    let by_document = || {
        CommandFilter::builder()
            .key(CommandFilterKey::DocumentName)
            .value(document)
            .build()
            .expect("key and value are set")
    };
    let failed =
        |op: &'static str| move |e: AwsFailure| CtlError::aws(&format!("the repoint commands in {region} ({op})"), e);
    // What each command asked for: its region and dbHost parameters.
    let mut asked: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut pages = ssm.list_commands().filters(by_document()).into_paginator().send();
    for _ in 0..PAGES {
        let Some(page) = pages.next().await else { break };
        let page = page.map_err(|e| failed("ListCommands")(AwsFailure::from_sdk("ListCommands", &e)))?;
        for command in page.commands() {
            let parameter = |name: &str| {
                command
                    .parameters()
                    .and_then(|p| p.get(name))
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_default()
            };
            asked.insert(
                command.command_id().unwrap_or_default().to_owned(),
                (parameter("region"), parameter("dbHost")),
            );
        }
    }
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut pages = ssm
        .list_command_invocations()
        .filters(by_document())
        .into_paginator()
        .send();
    for _ in 0..PAGES {
        let Some(page) = pages.next().await else { break };
        let page =
            page.map_err(|e| failed("ListCommandInvocations")(AwsFailure::from_sdk("ListCommandInvocations", &e)))?;
        for invocation in page.command_invocations() {
            let instance = invocation.instance_id().unwrap_or_default().to_owned();
            if latest.contains_key(&instance) {
                continue; // newest first: the first one seen is the latest
            }
            let command_id = invocation.command_id().unwrap_or_default();
            let (asked_region, asked_host) = asked.get(command_id).cloned().unwrap_or_default();
            let status = invocation.status().map(|s| s.as_str().to_owned()).unwrap_or_default();
            let converged = status == "Success"
                && active_region.is_some_and(|a| a == asked_region)
                && (asked_host.is_empty() || db_host.is_some_and(|h| h == asked_host));
            latest.insert(
                instance.clone(),
                json!({
                    "instanceId": instance,
                    "status": status,
                    "commandId": command_id,
                    "at": invocation.requested_date_time().and_then(|d| chrono::DateTime::from_timestamp_millis(d.to_millis().ok()?))
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    "pointedAt": {"region": asked_region, "dbHost": asked_host},
                    "converged": converged,
                }),
            );
        }
    }
    let servers: Vec<Value> = latest.into_values().collect();
    let not_converged: Vec<&str> = servers
        .iter()
        .filter(|s| s["converged"] != true)
        .filter_map(|s| s["instanceId"].as_str())
        .collect();
    Ok(json!({
        "region": region,
        "servers": servers,
        "converged": servers.len() - not_converged.len(),
        "notConverged": not_converged,
    }))
}
