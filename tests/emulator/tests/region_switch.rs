//! The region-switch plan (`infra/statemachine/region-switch.asl.json`, its first slice) on
//! the emulator's Step Functions, against the real function binaries and real MariaDB:
//! deployed with CloudFormation as the definition is written, its Lambda tasks routed to
//! `cargo lambda watch`, the primary region taken away through a fault proxy.

use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, ec2, node, rds, ssm, stack};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::venv::repo_root;
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};

/// Promotion (3 s in the emulator), repointing, and the first build of two functions.
const LIMIT: Duration = Duration::from_secs(600);

/// A stack with the two functions and the plan, its definition substituted as SAM's
/// `DefinitionSubstitutions` do.
fn template(stack_name: &str) -> String {
    let definition = std::fs::read_to_string(repo_root().join("infra/statemachine/region-switch.asl.json")).unwrap();
    serde_json::json!({
        "Resources": {
            "Role": stack::service_role(),
            "RdsPromoter": stack::watched_function(&format!("{stack_name}-rds-promoter"), "Role"),
            "EnvRewriter": stack::watched_function(&format!("{stack_name}-env-rewriter"), "Role"),
            "Plan": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": {"Fn::Sub": [definition, {
                        "RdsPromoterFunctionArn": {"Fn::GetAtt": ["RdsPromoter", "Arn"]},
                        "EnvRewriterFunctionArn": {"Fn::GetAtt": ["EnvRewriter", "Arn"]}
                    }]}
                }
            }
        },
        "Outputs": {"Plan": {"Value": {"Ref": "Plan"}}}
    })
    .to_string()
}

/// One shop ready for a switch: the MariaDB pair, two managed Magento servers, the state
/// table, the document, the functions under `cargo lambda watch` reaching AWS through a
/// proxy that has taken the primary region away, and the plan deployed.
struct Switch {
    b: failover_testkit::clients::RegionClients,
    pair: rds::ReplicaPair,
    roots: Vec<std::path::PathBuf>,
    sfn: aws_sdk_sfn::Client,
    plan: String,
    log: std::path::PathBuf,
    a: failover_testkit::clients::RegionClients,
    proxy: FaultProxy,
    watch: LambdaWatch,
}

impl Switch {
    /// `promotion_seconds` tags the replica (the emulator's promotion time for it);
    /// `extra` adds function configuration.
    async fn set_up(promotion_seconds: Option<u32>, extra: &[(&str, &str)]) -> Switch {
        let emu = Emulator::shared();
        let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
        let name = unique_name("switch");
        let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &name).await;
        if let Some(seconds) = promotion_seconds {
            rds::set_promotion_seconds(&b, &pair.replica_arn, seconds).await;
        }
        let state_table = format!("{name}-state");
        dynamodb::create_state_table(&b, &state_table).await;
        let environment = format!("{name}-env");
        let servers = ec2::launch_app_servers(&b, "Magento", &environment, 2).await;
        let roots = ec2::manage(emu, "Magento", &servers);
        let document = format!("{name}-repoint");
        ssm::create_command_document(&b, &document, &ssm::repoint_document()).await;
        let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 31).unwrap();
        proxy.fail_region(PRIMARY, Some(Fault::Drop));
        let prefix = format!("/{name}/failover");
        let env: Vec<(String, String)> = emu
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), if k == "AWS_ENDPOINT_URL" { proxy.endpoint() } else { v }))
            .chain(
                [
                    ("REPLICA_IDENTIFIER", pair.replica_id.as_str()),
                    ("REPLICA_REGION", SECONDARY),
                    ("PRIMARY_REGION", PRIMARY),
                    ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
                    ("FAILOVER_REGION", SECONDARY),
                    ("PARAMETER_PREFIX", prefix.as_str()),
                    ("STATE_TABLE", state_table.as_str()),
                    ("SOURCE_PROBE_TIMEOUT_SECONDS", "2"),
                    ("POLL_INITIAL_MS", "200"),
                    ("POLL_MAX_MS", "1000"),
                    ("APP_REGION", SECONDARY),
                    ("ENVIRONMENT", environment.as_str()),
                    ("DOCUMENT_NAME", document.as_str()),
                    ("ENV_FILE", node::ENV_FILE),
                ]
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .collect();
        let log = std::env::temp_dir().join(format!("failover-{name}-watch.log"));
        let watch = LambdaWatch::start(&repo_root(), &env, &log)
            .unwrap_or_else(|e| panic!("cargo lambda watch (run scripts/venv.sh tools to install cargo-lambda): {e}"));
        let url = format!("http://127.0.0.1:{}", watch.port());
        for binary in ["rds-promoter", "env-rewriter"] {
            emu.route_lambda(&format!("{name}-{binary}"), &url, binary);
        }
        let config = sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await;
        let outputs = stack::deploy(&aws_sdk_cloudformation::Client::new(&config), &name, &template(&name)).await;
        Switch {
            b,
            pair,
            roots,
            sfn: aws_sdk_sfn::Client::new(&config),
            plan: outputs["Plan"].clone(),
            log,
            a,
            proxy,
            watch,
        }
    }

    fn input() -> serde_json::Value {
        let alarm: serde_json::Value = serde_json::from_slice(
            &std::fs::read(repo_root().join("events/alarm-state-change-to-alarm.json")).unwrap(),
        )
        .unwrap();
        serde_json::json!({"alarm": alarm})
    }

    async fn run(&self) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        stack::run_execution(&self.sfn, &self.plan, &Self::input(), LIMIT).await
    }

    /// The execution's output, after asserting it succeeded.
    fn succeeded(
        &self,
        done: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    ) -> serde_json::Value {
        assert_eq!(
            done.status(),
            &ExecutionStatus::Succeeded,
            "{:?} {:?}; see {}",
            done.error(),
            done.cause(),
            self.log.display()
        );
        serde_json::from_str(done.output().unwrap()).unwrap()
    }

    /// What the shop relies on, read from the parts: the replica is detached and takes
    /// writes, and each server's files name it.
    async fn assert_switched(&self) {
        let promoted = rds::describe(&self.b, &self.pair.replica_id).await;
        assert_eq!(promoted.read_replica_source_db_instance_identifier(), None);
        rds::database(&self.b, &self.pair.replica_id)
            .await
            .exec("CREATE DATABASE IF NOT EXISTS switched");
        let endpoint = promoted.endpoint().unwrap();
        let address = format!("{}:{}", endpoint.address().unwrap(), endpoint.port().unwrap());
        for root in &self.roots {
            let env = node::read(root, node::ENV_FILE);
            assert!(env.contains(&format!("DB_HOST={address}")), "{env}");
            assert!(node::read(root, "/var/www/magento/app/etc/env.php").contains(&format!("'host' => '{address}'")));
        }
    }

    async fn history(&self, execution: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let history = self
            .sfn
            .get_execution_history()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        history.events().to_vec()
    }
}

#[tokio::test]
async fn the_plan_promotes_once_and_repoints_every_server_at_the_writable_replica() {
    let switch = Switch::set_up(None, &[]).await;

    let done = switch.run().await;

    let output = switch.succeeded(&done);
    assert_eq!(output["promotion"]["action"], "promoted", "{output}");
    assert_eq!(output["repoint"]["status"], "success", "{output}");
    switch.assert_switched().await;
    let history = switch.history(done.execution_arn()).await;
    let entered: Vec<&str> = history
        .iter()
        .filter(|e| e.r#type() == &HistoryEventType::TaskStateEntered)
        .filter_map(|e| e.state_entered_event_details().map(|d| d.name()))
        .collect();
    let checks = entered.iter().filter(|s| **s == "CheckWritable").count();
    assert!(checks >= 1, "{entered:?}");
    assert_eq!(entered[0], "Promote");
    assert_eq!(&entered[1 + checks..], ["Fence", "Publish", "Repoint"], "{entered:?}");

    // The primary region did not answer: the fence of the old primary is pending, and the
    // switch went on without it.
    assert_eq!(output["fence"]["action"], "fence-pending", "{output}");
    assert_eq!(output["fence"]["fence"]["database"]["state"], "pending", "{output}");
    assert_eq!(
        rds::describe(&switch.a, &switch.pair.primary_id)
            .await
            .db_instance_status(),
        Some("available")
    );
    // It answers again: the scheduled sweep completes the fence, and the old primary stops.
    switch.proxy.fail_region(PRIMARY, None);
    let scheduled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("events/scheduled-event.json")).unwrap()).unwrap();
    let swept = switch.watch.invoke("rds-promoter", &scheduled).unwrap().unwrap();
    assert_eq!(swept["action"], "swept-fences", "{swept}");
    let fence = &swept["fences"][0];
    assert_eq!(fence["database"]["state"], "done", "{swept}");
    let seen = rds::wait_for_status(&switch.a, &switch.pair.primary_id, "stopped").await;
    assert!(seen.contains(&"stopped".to_owned()), "{seen:?}");
    eprintln!(
        "region switch: fence completed by the sweep: {}",
        fence["database"]["how"]
    );

    // The step timeline, from the history's own timestamps (printed for the report).
    let start = history.first().map(|e| e.timestamp().as_secs_f64()).unwrap_or_default();
    for event in &history {
        let at = event.timestamp().as_secs_f64() - start;
        if let Some(details) = event.state_entered_event_details() {
            eprintln!("region switch: +{at:6.2} s entered {}", details.name());
        }
        if let Some(details) = event.state_exited_event_details() {
            eprintln!("region switch: +{at:6.2} s exited  {}", details.name());
        }
    }
}

#[tokio::test]
async fn a_promotion_longer_than_an_invocation_may_wait_is_waited_for_by_the_plan() {
    // Each rds-promoter invocation may wait at most 2 s; the promotion takes 12. The plan's
    // Wait loop, not an invocation, waits for it.
    let switch = Switch::set_up(Some(12), &[("MAX_WAIT_SECONDS", "2")]).await;

    let done = switch.run().await;

    let output = switch.succeeded(&done);
    assert!(
        matches!(output["promotion"]["action"].as_str(), Some("promoted" | "resumed")),
        "{output}"
    );
    switch.assert_switched().await;
    let history = switch.history(done.execution_arn()).await;
    let looks = history
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .filter(|d| d.name() == "CheckWritable")
        .count();
    assert!(
        looks >= 2,
        "the plan looked at the promoting replica across its Wait loop: {looks} looks"
    );
    eprintln!("region switch: a 12 s promotion took {looks} CheckWritable looks, 5 s apart");
}

#[tokio::test]
async fn ten_concurrent_starts_make_one_switch() {
    let switch = Switch::set_up(None, &[]).await;

    let runs = (0..10).map(|_| switch.run());
    let results = futures_util::future::join_all(runs).await;

    let actions: Vec<String> = results
        .iter()
        .map(|done| {
            switch.succeeded(done)["promotion"]["action"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "promoted").count(),
        1,
        "exactly one execution promoted: {actions:?}"
    );
    assert!(
        actions
            .iter()
            .all(|a| matches!(a.as_str(), "promoted" | "already-complete" | "resumed")),
        "{actions:?}"
    );
    switch.assert_switched().await;
}
