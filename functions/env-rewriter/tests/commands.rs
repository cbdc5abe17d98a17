//! The rewrite flow with SSM pinned by aws-smithy-mocks (real wire errors such as
//! InvocationDoesNotExist and throttling) and in-memory server inventories.

use std::time::Duration;

use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocationStatus};
use aws_sdk_ssm::Client as SsmClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use env_rewriter::adapters::MemoryInventory;
use env_rewriter::adapters::SsmCommands;
use env_rewriter::domain::{AppInstance, InstanceResult, ManagedNode};
use env_rewriter::ports::{InstanceFinder, NodeDirectory};
use env_rewriter::{RewriteReport as Report, RewriteStatus as Status, Rewriter, RewriterConfig, RewriterError};
use failover_core::parameters::MemoryParameters;
use failover_core::retry::Deadline;
use failover_core::{AwsFailure, EnvReader, ErrorClass};
use serde_json::json;

/// An inventory whose discovery returns every server whatever the App tag asked for, as a
/// tag filter matching differently from the configured keys would.
struct Unfiltered(MemoryInventory);

impl InstanceFinder for Unfiltered {
    async fn running_app_instances(&self, _apps: &[String], _env: &str) -> Result<Vec<AppInstance>, AwsFailure> {
        Ok(self.0.instances.clone())
    }
}

impl NodeDirectory for Unfiltered {
    async fn tagged_nodes(&self, _app: &str, _env: &str) -> Result<Vec<ManagedNode>, AwsFailure> {
        Ok(self.0.nodes.clone())
    }
}

fn config(extra: &[(&str, &str)]) -> RewriterConfig {
    let mut vars = vec![
        ("APP_REGION", "us-west-2"),
        ("ENVIRONMENT", "production"),
        ("DOCUMENT_NAME", "shop-failover-repoint-app"),
        ("PARAMETER_PREFIX", "/shop/failover"),
        ("ENV_FILE", "/etc/shop/failover.env"),
        ("POLL_INITIAL_MS", "10"),
        ("POLL_MAX_MS", "20"),
    ];
    vars.extend_from_slice(extra);
    RewriterConfig::from_env(&EnvReader::from_pairs(vars)).unwrap()
}

fn inventory(ids: &[(&str, &str, &str)]) -> MemoryInventory {
    MemoryInventory {
        instances: ids
            .iter()
            .filter(|(id, _, _)| id.starts_with("i-"))
            .map(|(id, app, _)| AppInstance {
                id: id.to_string(),
                app: app.to_string(),
            })
            .collect(),
        nodes: ids
            .iter()
            .filter(|(_, _, ping)| !ping.is_empty())
            .map(|(id, app, ping)| ManagedNode {
                id: id.to_string(),
                app: app.to_string(),
                ping_status: ping.to_string(),
            })
            .collect(),
    }
}

fn ssm(rules: &[&Rule]) -> SsmCommands {
    SsmCommands::new(mock_client!(aws_sdk_ssm, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled())))
}

fn send_ok() -> Rule {
    mock!(SsmClient::send_command)
        .match_requests(|r| {
            r.document_name() == Some("shop-failover-repoint-app")
                && r.max_errors() == Some("100%")
                && r.timeout_seconds() == Some(120)
                && r.comment().is_some_and(|c| c.starts_with("failover "))
        })
        .then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        })
}

fn invocation(
    status: CommandInvocationStatus,
    details: &str,
    stdout: &str,
    stderr: &str,
) -> GetCommandInvocationOutput {
    GetCommandInvocationOutput::builder()
        .status(status)
        .status_details(details)
        .standard_output_content(stdout)
        .standard_error_content(stderr)
        .build()
}

/// SSM speaks JSON 1.1: the error code is `__type`.
/// A rewriter with the default configuration and no parameters, over `servers` (found by
/// EC2 and registered with SSM alike) and an SSM client answering with `rules`.
fn rewriter(
    servers: &[(&str, &str, &str)],
    rules: &[&Rule],
) -> Rewriter<MemoryInventory, MemoryInventory, SsmCommands, MemoryParameters> {
    Rewriter::new(
        config(&[]),
        inventory(servers),
        inventory(servers),
        ssm(rules),
        MemoryParameters::default(),
    )
}

fn ssm_error(code: &str, status: u16) -> aws_smithy_runtime_api::http::Response {
    aws_smithy_runtime_api::http::Response::new(
        aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
        aws_smithy_types::body::SdkBody::from(format!(r#"{{"__type":"{code}","message":"{code}"}}"#)),
    )
}

/// The script exits non-zero on i-2 with `stderr`.
fn script_fails_on_i2(stderr: &'static str) -> Rule {
    mock!(SsmClient::get_command_invocation)
        .match_requests(|r| r.instance_id() == Some("i-2"))
        .then_output(move || invocation(CommandInvocationStatus::Failed, "Failed", "", stderr))
}

fn manual() -> serde_json::Value {
    json!({"region": "us-west-2", "dbHost": "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com"})
}

async fn run<F: InstanceFinder, N: NodeDirectory>(
    rewriter: &Rewriter<F, N, SsmCommands, MemoryParameters>,
    event: serde_json::Value,
) -> Result<Report, RewriterError> {
    rewriter.handle(event, Deadline::after(Duration::from_secs(30))).await
}

fn result_of<'a>(report: &'a Report, id: &str) -> &'a InstanceResult {
    &report.instances.iter().find(|i| i.instance_id == id).unwrap().result
}

#[tokio::test]
async fn polls_through_invocation_does_not_exist_in_progress_and_throttling_to_success() {
    let send = send_ok();
    let poll = mock!(SsmClient::get_command_invocation)
        .sequence()
        .http_response(|| ssm_error("InvocationDoesNotExist", 400))
        .output(|| invocation(CommandInvocationStatus::InProgress, "InProgress", "", ""))
        .http_response(|| ssm_error("ThrottlingException", 400))
        .output(|| {
            invocation(
                CommandInvocationStatus::Success,
                "Success",
                "repoint: profile=magento changed=x",
                "",
            )
        })
        .build();
    let rewriter = rewriter(&[("i-1", "Magento", "Online")], &[&send, &poll]);
    let report = run(&rewriter, manual()).await.unwrap();
    assert_eq!(report.status, Status::Success);
    assert_eq!(report.command_ids, ["cmd-1"]);
    assert_eq!(poll.num_calls(), 4);
    assert_eq!(
        result_of(&report, "i-1"),
        &InstanceResult::Success {
            summary: "repoint: profile=magento changed=x".into()
        }
    );
}

#[tokio::test]
async fn a_partial_failure_is_a_retryable_error_naming_each_server() {
    let send = send_ok();
    let failed = script_fails_on_i2("repoint: service nginx is not active\n");
    let timed_out = mock!(SsmClient::get_command_invocation)
        .match_requests(|r| r.instance_id() == Some("i-3"))
        .then_output(|| invocation(CommandInvocationStatus::TimedOut, "DeliveryTimedOut", "", ""));
    let ok = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""));
    let servers = [
        ("i-1", "Magento", "Online"),
        ("i-2", "Magento", "Online"),
        ("i-3", "WooCommerce", "Online"),
        ("i-4", "Magento", "ConnectionLost"),
    ];
    let rewriter = rewriter(&servers, &[&send, &failed, &timed_out, &ok]);
    let err = run(&rewriter, manual()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    let message = err.to_string();
    assert!(
        message.starts_with("incomplete: 3 of 4 servers were not repointed"),
        "the offline server counts: it keeps the old database until it is repointed: {message}"
    );
    assert!(
        message.contains(r#"i-4 {"result":"undeliverable","detail":"not commanded: SSM agent is ConnectionLost"#),
        "{message}"
    );
    assert!(
        message.contains("i-2") && message.contains("service nginx is not active"),
        "{message}"
    );
    assert!(
        message.contains("i-3") && message.contains("DeliveryTimedOut"),
        "{message}"
    );
    assert!(
        !message.contains("i-1 "),
        "successes are not listed as failures: {message}"
    );
    assert_eq!(
        send.num_calls(),
        2,
        "magento and wordpress profiles get one command each"
    );
}

#[tokio::test]
async fn the_plan_gets_a_partial_repoint_as_its_report_with_every_server() {
    // The region-switch plan asks with reportPartial: it applies its own failure policy, so
    // the answer is the report (each server's result), not an error that hides them.
    let send = send_ok();
    let failed = script_fails_on_i2("repoint: systemctl restart nginx failed\n");
    let ok = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""));
    let servers = [("i-1", "Magento", "Online"), ("i-2", "Magento", "Online")];
    let plan_rewriter = rewriter(&servers, &[&send, &failed, &ok]);
    let mut event = manual();
    event["reportPartial"] = json!(true);

    let report = run(&plan_rewriter, event).await.unwrap();

    assert_eq!(report.status, Status::Partial);
    assert!(result_of(&report, "i-1").is_success());
    assert!(
        matches!(result_of(&report, "i-2"), InstanceResult::Failed { .. }),
        "{:?}",
        result_of(&report, "i-2")
    );
    // Without it, the same run is the retryable error of the event-driven path.
    let event_rewriter = rewriter(&servers, &[&send, &failed, &ok]);
    assert_eq!(
        run(&event_rewriter, manual()).await.unwrap_err().class(),
        ErrorClass::Retryable
    );
}

#[tokio::test]
async fn commands_that_never_finish_time_out_at_the_deadline() {
    let send = send_ok();
    let running = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::InProgress, "InProgress", "", ""));
    let rewriter = rewriter(&[("i-1", "Magento", "Online")], &[&send, &running]);
    let err = rewriter
        .handle(manual(), Deadline::after(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("i-1") && err.to_string().contains("timed-out"),
        "{err}"
    );
}

#[tokio::test]
async fn dry_run_discovers_and_plans_but_sends_nothing() {
    let send = send_ok();
    let servers = [
        ("i-1", "Magento", "Online"),
        ("mi-0a1b2c3d4e5f60718", "WordPress", "Online"),
        ("i-9", "Magento", ""),
    ];
    let rewriter = rewriter(&servers, &[&send]);
    let mut event = manual();
    event["dryRun"] = json!(true);
    let report = run(&rewriter, event).await.unwrap();
    assert_eq!(report.status, Status::DryRun);
    assert_eq!(send.num_calls(), 0);
    assert_eq!(report.instances.len(), 3);
    assert!(
        matches!(result_of(&report, "i-9"), InstanceResult::Undeliverable { detail } if detail.contains("not registered with SSM"))
    );
    assert!(matches!(result_of(&report, "i-1"), InstanceResult::Skipped { reason } if reason == "dry run"));
}

#[tokio::test]
async fn parameter_changes_read_the_published_values_and_only_the_active_region_triggers() {
    let ok = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""));
    let parameters = MemoryParameters::with_values([
        ("/shop/failover/active-region", "us-west-2"),
        (
            "/shop/failover/db-host",
            "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com",
        ),
        ("/shop/failover/db-port", "3306"),
    ]);
    let servers = [("i-1", "WooCommerce", "Online")];
    let send = mock!(SsmClient::send_command)
        .match_requests(|r| {
            r.comment() == Some("failover active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718")
        })
        .then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        });
    let rewriter = Rewriter::new(
        config(&[]),
        inventory(&servers),
        inventory(&servers),
        ssm(&[&send, &ok]),
        parameters,
    );
    let event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/parameter-store-change.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let report = run(&rewriter, event.clone()).await.unwrap();
    assert_eq!(report.status, Status::Success);
    assert_eq!(
        report.failover_id.as_deref(),
        Some("active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718"),
        "the comment carries the change event's id"
    );
    let target = serde_json::to_value(report.target.unwrap()).unwrap();
    assert_eq!(
        target,
        json!({"region": "us-west-2", "dbHost": "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com", "dbPort": 3306})
    );

    let mut db_host_event = event;
    db_host_event["detail"]["name"] = json!("/shop/failover/db-host");
    let report = run(&rewriter, db_host_event).await.unwrap();
    assert_eq!(report.status, Status::Ignored);
    assert_eq!(send.num_calls(), 1, "the db-host change alone sends nothing");
}

#[tokio::test]
async fn bad_input_is_a_clear_error_and_sends_nothing() {
    let send = send_ok();
    let servers = [("i-1", "Magento", "Online")];
    let parameters = MemoryParameters::with_values([("/shop/failover/active-region", "us-west-2; reboot")]);
    let rewriter = Rewriter::new(
        config(&[]),
        inventory(&servers),
        inventory(&servers),
        ssm(&[&send]),
        parameters,
    );
    for (event, needle) in [
        (json!({"hello": "world"}), "invalid event: event is neither"),
        (
            json!({"region": "us-west-2", "dbHost": "db; reboot"}),
            "manual request dbHost",
        ),
        (json!({"region": "mars-1"}), "manual request region"),
        (
            json!({"version": "0", "id": "1", "detail-type": "Parameter Store Change", "source": "aws.ssm", "region": "us-west-2", "detail": {"name": "/shop/failover/active-region", "operation": "Update"}}),
            "the published parameters cannot be used",
        ),
        (
            serde_json::from_slice(
                &std::fs::read(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../events/alarm-state-change-to-alarm.json"
                ))
                .unwrap(),
            )
            .unwrap(),
            "alarm events are not configured",
        ),
    ] {
        let err = run(&rewriter, event).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert_eq!(err.class(), ErrorClass::NonRetryable);
    }
    assert_eq!(send.num_calls(), 0);
}

#[tokio::test]
async fn finding_no_server_at_all_is_an_error_not_a_silent_success() {
    let send = send_ok();
    let rewriter = rewriter(&[], &[&send]);
    let err = run(&rewriter, manual()).await.unwrap_err();
    assert!(err.to_string().contains("nothing was repointed"), "{err}");
    // The plan gets it as a partial repoint, and applies its failure policy.
    let mut plan = manual();
    plan["reportPartial"] = json!(true);
    let report = run(&rewriter, plan).await.unwrap();
    assert_eq!(report.status, Status::Partial);
    assert!(report.instances.is_empty());
    assert!(
        report
            .ignored_because
            .as_deref()
            .is_some_and(|why| why.contains("nothing was repointed")),
        "{report:?}"
    );
    assert_eq!(send.num_calls(), 0);
}

#[tokio::test]
async fn servers_found_but_none_commandable_is_an_incomplete_error_not_a_silent_success() {
    let send = send_ok();
    let servers = [
        ("i-1", "Magento", "ConnectionLost"),
        ("i-2", "WooCommerce", ""),
        ("mi-0a1b2c3d4e5f60718", "WordPress", "Inactive"),
    ];
    let rewriter = rewriter(&servers, &[&send]);
    let err = run(&rewriter, manual()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "agents may be back by the retry");
    let message = err.to_string();
    assert!(
        message.starts_with("incomplete: none of the 3 matching servers could be commanded"),
        "{message}"
    );
    for (id, why) in [
        ("i-1", "SSM agent is ConnectionLost"),
        ("i-2", "not registered with SSM"),
        ("mi-0a1b2c3d4e5f60718", "SSM agent is Inactive"),
    ] {
        assert!(
            message.contains(&format!(
                r#"{id} {{"result":"undeliverable","detail":"not commanded: {why}"#
            )),
            "{id}: {message}"
        );
    }
    assert_eq!(send.num_calls(), 0);

    // A dry run only plans: it reports the skipped servers without failing.
    let mut event = manual();
    event["dryRun"] = json!(true);
    let report = run(&rewriter, event).await.unwrap();
    assert_eq!(report.status, Status::DryRun);
    assert_eq!(report.instances.len(), 3);
}

#[tokio::test]
async fn an_app_tag_without_a_profile_is_not_repointed_and_named_not_a_panic() {
    let send = send_ok();
    let ok = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""));
    let servers = [("i-1", "Magento", "Online"), ("i-2", "magento", "Online")];
    let rewriter = Rewriter::new(
        config(&[]),
        Unfiltered(inventory(&servers)),
        Unfiltered(inventory(&servers)),
        ssm(&[&send, &ok]),
        MemoryParameters::default(),
    );
    let mut plan = manual();
    plan["reportPartial"] = json!(true);
    let report = run(&rewriter, plan).await.unwrap();
    assert_eq!(
        report.status,
        Status::Partial,
        "a running tagged server was not repointed"
    );
    assert!(result_of(&report, "i-1").is_success());
    assert!(
        matches!(result_of(&report, "i-2"), InstanceResult::Undeliverable { detail } if detail.contains("App tag \"magento\" has no profile in APP_PROFILES")),
        "{:?}",
        result_of(&report, "i-2")
    );
    assert_eq!(send.num_calls(), 1);

    // Only such servers: nothing can be commanded, which is an error.
    let only_bad = [("i-2", "magento", "Online")];
    let rewriter = Rewriter::new(
        config(&[]),
        Unfiltered(inventory(&only_bad)),
        Unfiltered(inventory(&only_bad)),
        ssm(&[&send, &ok]),
        MemoryParameters::default(),
    );
    let err = run(&rewriter, manual()).await.unwrap_err();
    assert!(err.to_string().contains("has no profile"), "{err}");
}

/// The region-switch plan's repoint loop: `sendOnly` answers once the commands are sent,
/// and each `{"collect": <report>}` takes one look, until every server has its result.
#[tokio::test]
async fn the_plan_sends_then_collects_in_its_own_loop() {
    let send = send_ok();
    let running = mock!(SsmClient::get_command_invocation)
        .sequence()
        .output(|| invocation(CommandInvocationStatus::InProgress, "InProgress", "", ""))
        .output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""))
        .build();
    let rewriter = rewriter(&[("i-1", "Magento", "Online")], &[&send, &running]);
    let mut request = manual();
    request["sendOnly"] = json!(true);
    request["reportPartial"] = json!(true);

    let sent = run(&rewriter, request).await.unwrap();

    assert_eq!(sent.status, Status::Sent);
    assert_eq!(running.num_calls(), 0, "sendOnly reads no result");
    assert_eq!(
        (
            sent.pending[0].command_id.as_str(),
            sent.pending[0].instance_id.as_str()
        ),
        ("cmd-1", "i-1")
    );
    assert!(sent.sent_at_ms.is_some());
    let first = run(&rewriter, json!({"collect": sent})).await.unwrap();
    assert_eq!(first.status, Status::Sent, "still running: {first:?}");
    assert_eq!(first.pending.len(), 1);
    let done = run(&rewriter, json!({"collect": first})).await.unwrap();
    assert_eq!(done.status, Status::Success, "{done:?}");
    assert!(done.pending.is_empty());
    assert!(result_of(&done, "i-1").is_success());
    assert_eq!(done.target.as_ref().map(|t| t.region.as_str()), Some("us-west-2"));
    assert_eq!(send.num_calls(), 1, "collecting never sends again");
}

#[tokio::test]
async fn a_collect_past_its_wait_budget_times_the_rest_out_and_bad_reports_are_refused() {
    let send = send_ok();
    let running = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::InProgress, "InProgress", "", ""));
    let rewriter = rewriter(&[("i-1", "Magento", "Online")], &[&send, &running]);
    let mut request = manual();
    request["sendOnly"] = json!(true);
    let mut sent = run(&rewriter, request).await.unwrap();
    // Sent longer ago than RESULT_WAIT_SECONDS (default 450 s).
    sent.sent_at_ms = sent.sent_at_ms.map(|ms| ms - 800_000);

    let late = run(&rewriter, json!({"collect": sent.clone()})).await.unwrap();

    assert_eq!(late.status, Status::Partial, "{late:?}");
    assert!(
        matches!(result_of(&late, "i-1"), InstanceResult::TimedOut { detail } if detail.contains("after SendCommand")),
        "{late:?}"
    );
    for (bad, needle) in [
        (json!({"collect": late}), "not sent"),
        (json!({"collect": {"status": "sent", "trigger": "manual"}}), "sentAtMs"),
        (json!({"collect": "cmd-1"}), "collect:"),
    ] {
        let err = run(&rewriter, bad).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert_eq!(err.class(), ErrorClass::NonRetryable);
    }
}

/// What a server is sent: the target region's cache host, cron on only where the fleet is the
/// active region, maintenance as asked, the document's execution timeout; and the fence
/// fleet (FENCE_REGION) is commanded through its own region's client.
#[tokio::test]
async fn the_home_and_the_fence_fleet_get_their_regions_cron_cache_and_maintenance() {
    let sends = |command_id: &'static str, server_region: &'static str| {
        mock!(SsmClient::send_command)
            .match_requests(move |r| {
                let p = r.parameters().unwrap();
                let one = |k: &str| p.get(k).map(|v| v.join(",")).unwrap_or_default();
                r.max_errors() == Some("100%")
                    && r.max_concurrency() == Some("100%")
                    && one("region") == "us-west-2"
                    && one("serverRegion") == server_region
                    && one("cacheHost") == "shop.usw2.cache.amazonaws.com"
                    && one("cacheHostKey") == "REDIS_HOST"
                    && one("executionTimeout") == "300"
                    && one("maintenance") == if server_region == "us-east-1" { "on" } else { "" }
            })
            .then_output(move || {
                SendCommandOutput::builder()
                    .command(Command::builder().command_id(command_id).build())
                    .build()
            })
    };
    let home_send = sends("cmd-home", "us-west-2");
    let fence_send = sends("cmd-fence", "us-east-1");
    let ok = mock!(SsmClient::get_command_invocation)
        .then_output(|| invocation(CommandInvocationStatus::Success, "Success", "repoint: ok", ""));
    let extra = [
        ("FENCE_REGION", "us-east-1"),
        (
            "CACHE_HOSTS",
            "us-east-1=shop.use1.cache.amazonaws.com,us-west-2=shop.usw2.cache.amazonaws.com",
        ),
    ];
    let rewriter = Rewriter::new(
        config(&extra),
        inventory(&[("i-west", "Magento", "Online")]),
        inventory(&[("i-west", "Magento", "Online")]),
        ssm(&[&home_send, &ok]),
        MemoryParameters::default(),
    )
    .with_fence_fleet(
        inventory(&[("i-east", "Magento", "Online")]),
        inventory(&[("i-east", "Magento", "Online")]),
        ssm(&[&fence_send, &ok]),
    );

    let home = run(&rewriter, manual()).await.unwrap();
    assert_eq!(home.status, Status::Success);
    assert_eq!(home.command_ids, ["cmd-home"]);
    assert!(result_of(&home, "i-west").is_success());

    let mut fence = manual();
    fence["fleetRegion"] = json!("us-east-1");
    fence["maintenance"] = json!("on");
    fence["sendOnly"] = json!(true);
    let sent = run(&rewriter, fence).await.unwrap();
    assert_eq!(sent.status, Status::Sent);
    assert_eq!(sent.fleet_region.as_ref().map(|r| r.as_str()), Some("us-east-1"));
    assert_eq!(sent.command_ids, ["cmd-fence"]);
    let done = run(&rewriter, json!({"collect": sent})).await.unwrap();
    assert!(
        result_of(&done, "i-east").is_success(),
        "collected in us-east-1: {done:?}"
    );
    assert_eq!((home_send.num_calls(), fence_send.num_calls()), (1, 1));

    let mut elsewhere = manual();
    elsewhere["fleetRegion"] = json!("eu-west-1");
    let err = run(&rewriter, elsewhere).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("fleetRegion eu-west-1 is neither APP_REGION (us-west-2) nor FENCE_REGION (us-east-1)"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::NonRetryable);
}
