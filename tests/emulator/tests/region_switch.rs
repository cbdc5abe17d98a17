//! The region-switch plan (`infra/statemachine/region-switch.asl.json`) on the emulator's
//! Step Functions, against the real function binaries and real MariaDB: deployed with
//! CloudFormation as SAM deploys it (the definition as written, with
//! `DefinitionSubstitutions`), its Lambda tasks routed to `cargo lambda watch`, its
//! notifications delivered by SNS to a queue the test reads, the primary region taken away
//! through a fault proxy.

use std::time::Duration;

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, ec2, node, rds, ssm, stack};
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::stream_pump::StreamPump;
use failover_testkit::venv::repo_root;
use failover_testkit::{unique_name, Emulator, PRIMARY, SECONDARY};
use serde_json::{json, Value};

/// Promotion (3 s in the emulator), repointing, and the first build of two functions.
pub(crate) const LIMIT: Duration = Duration::from_secs(600);

/// A stack with the two functions, the plan, its notification topic and a queue subscribed
/// to the topic (the test's pager).
fn template(stack_name: &str, repoint_failures: &str, approval_timeout_seconds: u32) -> String {
    let definition = std::fs::read_to_string(repo_root().join("infra/statemachine/region-switch.asl.json")).unwrap();
    let failback = std::fs::read_to_string(repo_root().join("infra/statemachine/failback.asl.json")).unwrap();
    let mut body = json!({
        "Resources": {
            "Role": stack::service_role(),
            "RdsPromoter": stack::watched_function(&format!("{stack_name}-rds-promoter"), "Role"),
            "EnvRewriter": stack::watched_function(&format!("{stack_name}-env-rewriter"), "Role"),
            "Plan": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": definition,
                    "DefinitionSubstitutions": {
                        "RdsPromoterFunctionArn": {"Fn::GetAtt": ["RdsPromoter", "Arn"]},
                        "EnvRewriterFunctionArn": {"Fn::GetAtt": ["EnvRewriter", "Arn"]},
                        "PrimaryRegion": PRIMARY,
                        "NotificationTopicArn": {"Ref": "Topic"},
                        "RepointFailurePolicy": repoint_failures
                    }
                }
            },
            "Failback": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": failback,
                    "DefinitionSubstitutions": {
                        "RdsPromoterFunctionArn": {"Fn::GetAtt": ["RdsPromoter", "Arn"]},
                        "EnvRewriterFunctionArn": {"Fn::GetAtt": ["EnvRewriter", "Arn"]},
                        "NotificationTopicArn": {"Ref": "Topic"},
                        "ApprovalTimeoutSeconds": approval_timeout_seconds.to_string(),
                        "FailbackPollSeconds": "2"
                    }
                }
            }
        },
        "Outputs": {
            "Plan": {"Value": {"Ref": "Plan"}},
            "Failback": {"Value": {"Ref": "Failback"}},
            "Pager": {"Value": {"Ref": "Pager"}}
        }
    });
    for (id, resource) in stack::pager_and_topic(stack_name) {
        body["Resources"][id] = resource;
    }
    body.to_string()
}

/// A stream replicator: a function reading the data table's stream through an event source
/// mapping (the forward one in the primary region, which the fence pauses; the reverse one
/// on the copy in the failover region, created disabled, which failback turns on).
pub(crate) fn replicator_template(function: &str, table: &str, enabled: bool) -> String {
    json!({
        "Resources": {
            "Role": stack::service_role(),
            "Replicator": stack::watched_function(function, "Role"),
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": table,
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}
                }
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Replicator"},
                    "EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]},
                    "StartingPosition": "TRIM_HORIZON",
                    "Enabled": enabled
                }
            }
        },
        "Outputs": {"StreamArn": {"Value": {"Fn::GetAtt": ["Table", "StreamArn"]}}}
    })
    .to_string()
}

/// Waits until the replica has `ReplicaLag` datapoints, read the way rds-promoter reads
/// them: a replica that has replicated for a while has them (RDS publishes each minute, the
/// emulator every 2 s), and the plan's RPO estimate is made from them.
async fn replicating_for_a_while(replica: &str) {
    let config = sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await;
    let emu = Emulator::shared();
    let reader = rds_promoter::adapters::RdsInstances::new(emu.clients(SECONDARY).await.rds.clone())
        .with_metrics(aws_sdk_cloudwatch::Client::new(&config));
    let started = std::time::Instant::now();
    loop {
        let minutes = rds_promoter::ports::DbInstances::replica_lag(&reader, replica)
            .await
            .unwrap();
        if !minutes.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no ReplicaLag datapoint for {replica} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a switch is set up with.
#[derive(Default)]
pub(crate) struct Options<'a> {
    /// Tags the replica with the emulator's promotion time for it.
    pub(crate) promotion_seconds: Option<u32>,
    /// More function configuration.
    pub(crate) extra: &'a [(&'a str, &'a str)],
    /// The plan's RepointFailurePolicy (default continue).
    pub(crate) repoint_failures: Option<&'a str>,
    /// Only the primary region's database and Lambda APIs are taken away (default: the
    /// whole region): its app servers' SSM and EC2 still answer.
    pub(crate) primary_fleet_answers: bool,
    /// Magento servers of the shop in the primary region (the fence fleet).
    pub(crate) primary_fleet: usize,
    /// The failback plan's ApprovalTimeoutSeconds (default 600).
    pub(crate) approval_timeout_seconds: Option<u32>,
    /// The copy of the data table in the failover region, its reverse replicator (mapping
    /// disabled, pumped while enabled) and its configuration.
    pub(crate) reverse_replication: bool,
    /// A defect: the reverse pump never delivers the records this names.
    pub(crate) lose_record: Option<failover_testkit::stream_pump::LoseRecord>,
}

/// One shop ready for a switch: the MariaDB pair, two managed Magento servers, the state
/// table, the document, the functions under `cargo lambda watch` reaching AWS through a
/// proxy that has taken the primary region away, and the plan deployed.
pub(crate) struct Switch {
    pub(crate) b: failover_testkit::clients::RegionClients,
    pub(crate) pair: rds::ReplicaPair,
    pub(crate) servers: Vec<String>,
    pub(crate) roots: Vec<std::path::PathBuf>,
    pub(crate) primary_roots: Vec<std::path::PathBuf>,
    pub(crate) sfn: aws_sdk_sfn::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) plan: String,
    pub(crate) failback_plan: String,
    pub(crate) state_table: String,
    pub(crate) pager: String,
    pub(crate) prefix: String,
    pub(crate) replicator: String,
    /// The shop's DynamoDB table (`<name>-data`, in both regions when reverse replication is set up).
    pub(crate) data_table: String,
    /// The reverse replicator's stream poller, when set up.
    pub(crate) pump: Option<StreamPump>,
    pub(crate) log: std::path::PathBuf,
    pub(crate) a: failover_testkit::clients::RegionClients,
    pub(crate) proxy: FaultProxy,
    pub(crate) watch: LambdaWatch,
}

impl Switch {
    pub(crate) async fn set_up(options: Options<'_>) -> Switch {
        let emu = Emulator::shared();
        let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
        let name = unique_name("switch");
        let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &name).await;
        if let Some(seconds) = options.promotion_seconds {
            rds::set_promotion_seconds(&b, &pair.replica_arn, seconds).await;
        }
        replicating_for_a_while(&pair.replica_id).await;
        let state_table = format!("{name}-state");
        dynamodb::create_state_table(&b, &state_table).await;
        let environment = format!("{name}-env");
        let servers = ec2::launch_app_servers(&b, "Magento", &environment, 2).await;
        let roots = ec2::manage(emu, "Magento", &servers);
        let document = format!("{name}-repoint");
        ssm::create_command_document(&b, &document, &ssm::repoint_document()).await;
        ssm::create_command_document(&a, &document, &ssm::repoint_document()).await;
        let primary_servers = ec2::launch_app_servers(&a, "Magento", &environment, options.primary_fleet).await;
        let primary_roots = ec2::manage(emu, "Magento", &primary_servers);
        let replicator = format!("{name}-stream-replicator");
        let data_table = format!("{name}-data");
        let primary_config = sdk_config(&Region::new(PRIMARY).unwrap(), ClientTimeouts::default()).await;
        stack::deploy(
            &aws_sdk_cloudformation::Client::new(&primary_config),
            &format!("{name}-primary"),
            &replicator_template(&replicator, &data_table, true),
        )
        .await;
        let reverse = options
            .reverse_replication
            .then(|| format!("{name}-reverse-replicator"));
        let mut reverse_stream = None;
        let mut reverse_env: Vec<(String, String)> = Vec::new();
        if let Some(reverse) = &reverse {
            let outputs = stack::deploy(
                &aws_sdk_cloudformation::Client::new(
                    &sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await,
                ),
                &format!("{name}-reverse"),
                &replicator_template(reverse, &data_table, false),
            )
            .await;
            reverse_stream = Some(outputs["StreamArn"].clone());
            let bucket = format!("{name}-dead-letter");
            failover_testkit::fixtures::s3::create_bucket(&b, &bucket).await;
            // The reverse replicator's configuration, as the template sets it.
            for (k, v) in [
                ("REVERSE_REPLICATOR_FUNCTION", reverse.as_str()),
                ("SOURCE_TABLE_NAME", data_table.as_str()),
                ("SOURCE_REGION", SECONDARY),
                ("TARGET_TABLE_NAME", data_table.as_str()),
                ("TARGET_REGION", PRIMARY),
                ("KEY_ATTRIBUTES", "pk"),
                ("PARAMETER_REGION", SECONDARY),
                ("SOURCE_AUTHORITY", "while-active"),
                ("DEAD_LETTER_BUCKET", bucket.as_str()),
            ] {
                reverse_env.push((k.to_owned(), v.to_owned()));
            }
        }
        let proxy = FaultProxy::start(&emu.endpoint(), FaultPlan::none(), 31).unwrap();
        if options.primary_fleet_answers {
            for service in ["rds", "lambda", "monitoring"] {
                proxy.fail_service(PRIMARY, service, Some(Fault::Drop));
            }
        } else {
            proxy.fail_region(PRIMARY, Some(Fault::Drop));
        }
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
                    ("FENCE_REGION", PRIMARY),
                    ("ENVIRONMENT", environment.as_str()),
                    ("DOCUMENT_NAME", document.as_str()),
                    ("ENV_FILE", node::ENV_FILE),
                    ("FORWARD_REPLICATOR_FUNCTION", replicator.as_str()),
                ]
                .iter()
                .chain(options.extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .chain(reverse_env)
            .collect();
        let log = std::env::temp_dir().join(format!("failover-{name}-watch.log"));
        let watch = LambdaWatch::start(&repo_root(), &env, &log)
            .unwrap_or_else(|e| panic!("cargo lambda watch (run scripts/venv.sh tools to install cargo-lambda): {e}"));
        let url = format!("http://127.0.0.1:{}", watch.port());
        for binary in ["rds-promoter", "env-rewriter"] {
            emu.route_lambda(&format!("{name}-{binary}"), &url, binary);
        }
        let pump = match (&reverse, reverse_stream) {
            (Some(reverse), Some(stream_arn)) => {
                emu.route_lambda(reverse, &url, "stream-replicator");
                Some(StreamPump::start(
                    b.lambda.clone(),
                    emu.streams(SECONDARY).await,
                    reverse.clone(),
                    stream_arn,
                    options.lose_record.clone(),
                ))
            }
            _ => None,
        };
        let config = sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await;
        let body = template(
            &name,
            options.repoint_failures.unwrap_or("continue"),
            options.approval_timeout_seconds.unwrap_or(600),
        );
        let outputs = stack::deploy(&aws_sdk_cloudformation::Client::new(&config), &name, &body).await;
        Switch {
            b,
            pair,
            servers,
            roots,
            primary_roots,
            sfn: aws_sdk_sfn::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            plan: outputs["Plan"].clone(),
            failback_plan: outputs["Failback"].clone(),
            state_table,
            pager: outputs["Pager"].clone(),
            prefix,
            replicator,
            data_table,
            pump,
            log,
            a,
            proxy,
            watch,
        }
    }

    pub(crate) fn alarm() -> Value {
        serde_json::from_slice(&std::fs::read(repo_root().join("events/alarm-state-change-to-alarm.json")).unwrap())
            .unwrap()
    }

    pub(crate) async fn run(&self) -> DescribeExecutionOutput {
        stack::run_execution(&self.sfn, &self.plan, &json!({"alarm": Self::alarm()}), LIMIT).await
    }

    /// The execution's output, after asserting it succeeded.
    pub(crate) fn succeeded(&self, done: &DescribeExecutionOutput) -> Value {
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
    /// writes, and each server's files name it. Each problem found, by server.
    pub(crate) async fn switch_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let promoted = rds::describe(&self.b, &self.pair.replica_id).await;
        if let Some(source) = promoted.read_replica_source_db_instance_identifier() {
            problems.push(format!("{} still replicates from {source}", self.pair.replica_id));
            return problems;
        }
        rds::database(&self.b, &self.pair.replica_id)
            .await
            .exec("CREATE DATABASE IF NOT EXISTS switched");
        let endpoint = promoted.endpoint().unwrap();
        let address = format!("{}:{}", endpoint.address().unwrap(), endpoint.port().unwrap());
        for (server, root) in self.servers.iter().zip(&self.roots) {
            let env = node::read(root, node::ENV_FILE);
            let magento = node::read(root, "/var/www/magento/app/etc/env.php");
            if !env.contains(&format!("DB_HOST={address}")) || !magento.contains(&format!("'host' => '{address}'")) {
                problems.push(format!("{server} does not name {address}"));
            }
        }
        problems
    }

    pub(crate) async fn assert_switched(&self) {
        let problems = self.switch_problems().await;
        assert!(problems.is_empty(), "{problems:?}");
    }

    pub(crate) async fn history(&self, execution: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let history = self
            .sfn
            .get_execution_history()
            .execution_arn(execution)
            .max_results(1000)
            .send()
            .await
            .unwrap();
        history.events().to_vec()
    }

    /// Every notification delivered to the pager queue so far: (subject, message).
    pub(crate) async fn notifications(&self) -> Vec<(String, String)> {
        stack::pager_notifications(&self.sqs, &self.pager).await.unwrap()
    }

    /// The states of the forward replicator's event source mappings.
    pub(crate) async fn mapping_states(&self) -> Vec<String> {
        let listed = self
            .a
            .lambda
            .list_event_source_mappings()
            .function_name(&self.replicator)
            .send()
            .await
            .unwrap();
        listed
            .event_source_mappings()
            .iter()
            .map(|m| m.state().unwrap_or_default().to_owned())
            .collect()
    }

    /// The scheduled fence sweep, as EventBridge invokes it.
    pub(crate) fn sweep(&self) -> Value {
        let scheduled: Value =
            serde_json::from_slice(&std::fs::read(repo_root().join("events/scheduled-event.json")).unwrap()).unwrap();
        self.watch.invoke("rds-promoter", &scheduled).unwrap().unwrap()
    }
}

/// An operator's input from `infra/statemachine/`.
pub(crate) fn manual(file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo_root().join("infra/statemachine").join(file)).unwrap()).unwrap()
}

/// The names of the Task states entered, in order.
pub(crate) fn tasks_entered(history: &[aws_sdk_sfn::types::HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter(|e| e.r#type() == &HistoryEventType::TaskStateEntered)
        .filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned()))
        .collect()
}

/// The sweep completed the database fence: the guard of "the old primary is fenced".
pub(crate) fn database_fenced(swept: &Value) -> Result<(), String> {
    match swept["fences"][0]["database"]["state"].as_str() {
        Some("done") => Ok(()),
        other => Err(format!("the old primary's fence is {other:?}: {swept}")),
    }
}

const STARTED: &str = "shop-failover: region switch started";
const FINISHED: &str = "shop-failover: region switch finished";
const FAILED: &str = "shop-failover: region switch FAILED";

#[tokio::test]
async fn the_plan_promotes_once_repoints_every_server_and_reports_from_its_history() {
    let switch = Switch::set_up(Options::default()).await;

    let done = switch.run().await;

    let report = switch.succeeded(&done);
    assert_eq!(report["outcome"], "switched", "{report}");
    assert_eq!(report["promotion"], "promoted", "{report}");
    // The RPO estimate comes from the replica's ReplicaLag metric (the emulator publishes
    // MariaDB's Seconds_Behind_Master, as RDS does): measured, whatever it is.
    let rpo = &report["rpoEstimate"];
    assert!(rpo["replicaLagSeconds"].as_f64().is_some_and(|s| s >= 0.0), "{report}");
    eprintln!("region switch: RPO estimate at promotion: {}", rpo["meaning"]);
    let repointed: Vec<&str> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "success")
        .filter_map(|i| i["instanceId"].as_str())
        .collect();
    assert_eq!(repointed.len(), 2, "{report}");
    switch.assert_switched().await;
    let history = switch.history(done.execution_arn()).await;
    let tasks = tasks_entered(&history);
    let checks = tasks.iter().filter(|s| *s == "CheckWritable").count();
    assert!(checks >= 1, "{tasks:?}");
    let collects = tasks.iter().filter(|s| *s == "CollectRepoint").count();
    assert!(
        collects >= 1,
        "the plan collected the repoint in its own loop: {tasks:?}"
    );
    assert_eq!(tasks[..2], ["Promote", "NotifyStart"], "{tasks:?}");
    let expected: Vec<&str> = ["Fence", "Publish", "FenceFleet", "Repoint"]
        .into_iter()
        .chain(std::iter::repeat_n("CollectRepoint", collects))
        .chain(["Report", "NotifyEnd"])
        .collect();
    assert_eq!(tasks[2 + checks..], expected, "{tasks:?}");
    // The report's timeline is the execution history's.
    let step = |name: &str| {
        report["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from the timeline: {report}"))
    };
    assert_eq!(step("CheckWritable")["visits"], checks as u64);
    // One notification per phase: the start, and the end carrying the report.
    let notes = switch.notifications().await;
    let subjects: Vec<&str> = notes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, [STARTED, FINISHED], "{notes:?}");
    let notified: Value = serde_json::from_str(&notes[1].1).unwrap();
    assert_eq!(notified["timeline"], report["timeline"]);
    assert_eq!(notified["executionArn"], done.execution_arn());

    // The primary region did not answer: the fence of the old primary is pending, the
    // report says so, and the switch went on without it.
    assert_eq!(report["fence"]["database"]["state"], "pending", "{report}");
    assert_eq!(report["fence"]["replication"]["state"], "pending", "{report}");
    let pending = report["pending"].to_string();
    assert!(
        pending.contains("fence of the old primary database pending"),
        "{pending}"
    );
    assert!(
        pending.contains("fence of the forward stream replicator pending"),
        "{pending}"
    );
    // Nor did its app servers' SSM: their fence (maintenance on, cron off) is reported
    // as not done, with the error, and the switch went on.
    assert!(report["fenceFleet"]["Error"].is_string(), "{report}");
    assert!(
        pending.contains("the primary region's app servers were not fenced"),
        "{pending}"
    );
    assert_eq!(switch.mapping_states().await, ["Enabled"]);
    assert_eq!(
        rds::describe(&switch.a, &switch.pair.primary_id)
            .await
            .db_instance_status(),
        Some("available")
    );
    // It answers again: the scheduled sweep completes the fence, and the old primary stops.
    switch.proxy.fail_region(PRIMARY, None);
    let swept = switch.sweep();
    assert_eq!(swept["action"], "swept-fences", "{swept}");
    database_fenced(&swept).unwrap();
    let seen = rds::wait_for_status(&switch.a, &switch.pair.primary_id, "stopped").await;
    assert!(seen.contains(&"stopped".to_owned()), "{seen:?}");
    // Forward replication is paused: the replicator's mapping no longer reads the stream.
    assert_eq!(swept["fences"][0]["replication"]["state"], "done", "{swept}");
    assert_eq!(switch.mapping_states().await, ["Disabled"]);

    // The step timeline, as the plan reported it from its history (printed for the notes).
    for step in report["timeline"].as_array().unwrap() {
        eprintln!(
            "region switch: +{:6.2} s .. {:>6} s {:16} x{} ({} s in it)",
            step["startedAtS"].as_f64().unwrap_or_default(),
            step["endedAtS"].to_string(),
            step["step"].as_str().unwrap_or_default(),
            step["visits"],
            step["spentS"]
        );
    }
    eprintln!(
        "region switch: {} s to the report, {} s of it in Wait states (promotion, servers' commands)",
        report["elapsedS"], report["waitedS"]
    );
}

#[tokio::test]
async fn a_promotion_longer_than_an_invocation_may_wait_is_waited_for_by_the_plan() {
    // Each rds-promoter invocation may wait at most 2 s; the promotion takes 12. The plan's
    // Wait loop, not an invocation, waits for it.
    let switch = Switch::set_up(Options {
        promotion_seconds: Some(12),
        extra: &[("MAX_WAIT_SECONDS", "2")],
        ..Options::default()
    })
    .await;

    let done = switch.run().await;

    let report = switch.succeeded(&done);
    assert!(
        matches!(report["promotion"].as_str(), Some("promoted" | "resumed")),
        "{report}"
    );
    switch.assert_switched().await;
    let looks = tasks_entered(&switch.history(done.execution_arn()).await)
        .iter()
        .filter(|s| *s == "CheckWritable")
        .count();
    assert!(
        looks >= 2,
        "the plan looked at the promoting replica across its Wait loop: {looks} looks"
    );
    eprintln!(
        "region switch: a 12 s promotion took {looks} CheckWritable looks, 5 s apart; {} s waited",
        report["waitedS"]
    );
}

#[tokio::test]
async fn ten_concurrent_starts_make_one_switch() {
    let switch = Switch::set_up(Options::default()).await;

    let runs = (0..10).map(|_| switch.run());
    let results = futures_util::future::join_all(runs).await;

    let actions: Vec<String> = results
        .iter()
        .map(|done| switch.succeeded(done)["promotion"].as_str().unwrap_or("?").to_owned())
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
    // One switch, one page that it started (the executions that joined it do not page).
    let starts = switch
        .notifications()
        .await
        .into_iter()
        .filter(|(subject, _)| subject == STARTED)
        .count();
    assert_eq!(starts, 1, "{actions:?}");
}

#[tokio::test]
async fn a_dry_run_reports_every_step_and_changes_nothing() {
    let switch = Switch::set_up(Options::default()).await;

    // The operator's documented dry-run input.
    let input = manual("manual-dry-run.json");
    assert_eq!(input["dryRun"], true);
    let done = stack::run_execution(&switch.sfn, &switch.plan, &input, LIMIT).await;

    let output = switch.succeeded(&done);
    let plan = output["dryRunPromotion"]["report"]["plan"].to_string();
    for step in ["would call PromoteReadReplica", "fence", "would publish"] {
        assert!(plan.contains(step), "{step:?} missing from {plan}");
    }
    let instances = output["dryRunRepoint"]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{output}");
    assert!(instances.iter().all(|i| i["reason"] == "dry run"), "{output}");
    assert_eq!(
        tasks_entered(&switch.history(done.execution_arn()).await),
        ["DryRun", "DryRunRepoint"]
    );
    // Nothing changed, and nobody was paged.
    let problems = switch.switch_problems().await;
    assert!(
        problems.iter().any(|p| p.contains("still replicates")),
        "the replica is still a replica: {problems:?}"
    );
    assert_eq!(
        ssm::get_parameter(&switch.b, &format!("{}/active-region", switch.prefix)).await,
        None
    );
    for root in &switch.roots {
        assert!(node::read(root, node::ENV_FILE).contains(node::OLD_DB_HOST));
    }
    assert_eq!(switch.notifications().await, []);

    // A dryRun that is not a boolean is refused, not taken for a real switch.
    let mut wrong = manual("manual-dry-run.json");
    wrong["dryRun"] = json!("yes");
    let refused = stack::run_execution(&switch.sfn, &switch.plan, &wrong, LIMIT).await;
    assert_eq!(refused.status(), &ExecutionStatus::Failed);
    assert_eq!(refused.error(), Some("InvalidInput"));
    assert!(switch
        .switch_problems()
        .await
        .iter()
        .any(|p| p.contains("still replicates")));
}

#[tokio::test]
async fn a_deployment_in_dry_run_reports_a_real_alarm_and_acts_on_nothing() {
    // DRY_RUN=true (the template's DryRun parameter, for drills): the alarm's plan ends
    // after Promote's dry run, without paging and without waiting for a promotion.
    let switch = Switch::set_up(Options {
        extra: &[("DRY_RUN", "true")],
        ..Options::default()
    })
    .await;

    let done = switch.run().await;

    let output = switch.succeeded(&done);
    assert_eq!(output["promotion"]["action"], "dry-run", "{output}");
    assert_eq!(tasks_entered(&switch.history(done.execution_arn()).await), ["Promote"]);
    assert!(switch
        .switch_problems()
        .await
        .iter()
        .any(|p| p.contains("still replicates")));
    assert_eq!(switch.notifications().await, []);
}

#[tokio::test]
async fn a_server_that_fails_is_reported_and_the_repoint_failure_policy_is_honoured() {
    let (stop, go_on) = tokio::join!(
        Switch::set_up(Options {
            repoint_failures: Some("stop"),
            ..Options::default()
        }),
        Switch::set_up(Options::default()),
    );
    // One server of each shop cannot be repointed: its web server does not restart (stop),
    // Magento's setup:config:set fails (continue).
    node::fail_restart(&stop.roots[1], "nginx");
    node::fail_magento(&go_on.roots[1], "setup:config:set");

    let (stopped, continued) = tokio::join!(stop.run(), go_on.run());

    // stop: the plan ends in RepointFailed and pages with the report of each server.
    assert_eq!(stopped.status(), &ExecutionStatus::Failed, "{stopped:?}");
    assert_eq!(stopped.error(), Some("RepointFailed"));
    let notes = stop.notifications().await;
    let subjects: Vec<&str> = notes.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, [STARTED, FAILED], "{notes:?}");
    let failed: Value = serde_json::from_str(&notes[1].1).unwrap();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["failedAt"], "RepointFailed");
    assert_eq!(failed["leftToConvergence"], json!([stop.servers[1]]));
    let server = failed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instanceId"] == stop.servers[1].as_str())
        .unwrap();
    assert!(server.to_string().contains("nginx"), "{server}");
    let repoints = tasks_entered(&stop.history(stopped.execution_arn()).await)
        .iter()
        .filter(|s| *s == "Repoint")
        .count();
    assert_eq!(repoints, 2, "one more attempt before the policy applies");

    // continue: the switch completes, and the report names the server left behind; the
    // file check of the shop finds exactly that server.
    let report = go_on.succeeded(&continued);
    assert_eq!(report["outcome"], "switched-with-failures", "{report}");
    assert_eq!(report["leftToConvergence"], json!([go_on.servers[1]]));
    assert!(report["pending"].to_string().contains("not repointed"), "{report}");
    let problems = go_on.switch_problems().await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with(&go_on.servers[1]), "{problems:?}");
}

/// The plan's fence of the primary region's app servers, when their SSM answers (the
/// database there does not): each is
/// put in maintenance with its cron removed and pointed at the promoted database, so none
/// can take orders or run cron beside the new region.
#[tokio::test]
async fn the_primary_regions_servers_are_put_in_maintenance_with_their_cron_off() {
    let switch = Switch::set_up(Options {
        primary_fleet_answers: true,
        primary_fleet: 2,
        ..Options::default()
    })
    .await;
    for root in &switch.primary_roots {
        node::write_crontab(
            root,
            "#~ MAGENTO START x\n* * * * * php bin/magento cron:run\n#~ MAGENTO END x\n",
        );
    }

    let report = switch.succeeded(&switch.run().await);

    assert_eq!(report["outcome"], "switched", "{report}");
    assert_eq!(report["fenceFleet"]["status"], "sent", "{report}");
    assert_eq!(report["fenceFleet"]["report"]["fleetRegion"], PRIMARY, "{report}");
    // The plan does not wait for the fence; its commands finish within seconds.
    for root in &switch.primary_roots {
        let flag = node::inside(root, "/var/www/magento/var/.maintenance.flag");
        let started = std::time::Instant::now();
        let fenced = || flag.exists() && !node::crontab(root).contains("MAGENTO START");
        while !fenced() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} not fenced: {}",
                root.display(),
                node::calls(root)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let env = node::read(root, "/var/www/magento/app/etc/env.php");
        assert!(!env.contains(node::OLD_DB_HOST), "{env}");
    }
    // The active region's servers are not in maintenance and run the cron.
    for root in &switch.roots {
        assert!(!node::inside(root, "/var/www/magento/var/.maintenance.flag").exists());
        assert!(node::crontab(root).contains("MAGENTO START"), "{}", node::calls(root));
    }
}

#[tokio::test]
async fn with_the_database_fence_switched_off_the_fence_check_fails() {
    // The injected defect: FENCE_DATABASE=none. The check the happy path relies on
    // (database_fenced) must fail, and the old primary must stay up.
    let switch = Switch::set_up(Options {
        extra: &[("FENCE_DATABASE", "none")],
        ..Options::default()
    })
    .await;

    // Started by hand, with the operator's documented input.
    let input = manual("manual-start.json");
    let report = switch.succeeded(&stack::run_execution(&switch.sfn, &switch.plan, &input, LIMIT).await);

    assert_eq!(report["outcome"], "switched", "{report}");
    assert_eq!(report["fence"]["database"]["state"], "not-configured", "{report}");
    assert!(report["pending"].to_string().contains("is not fenced"), "{report}");
    switch.proxy.fail_region(PRIMARY, None);
    let swept = switch.sweep();
    assert!(database_fenced(&swept).is_err(), "{swept}");
    assert_eq!(
        rds::describe(&switch.a, &switch.pair.primary_id)
            .await
            .db_instance_status(),
        Some("available")
    );
}
