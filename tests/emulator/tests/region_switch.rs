//! The region-switch plan (`infra/statemachine/region-switch.asl.json`, its first slice) on
//! the emulator's Step Functions, against the real function binaries and real MariaDB:
//! deployed with CloudFormation as the definition is written, its Lambda tasks routed to
//! `cargo lambda watch`, the primary region taken away through a fault proxy.

use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy};
use failover_testkit::fixtures::{dynamodb, ec2, node, rds, stack};
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

#[tokio::test]
async fn the_plan_promotes_once_and_repoints_every_server_at_the_writable_replica() {
    let emu = Emulator::shared();
    let (a, b) = (emu.clients(PRIMARY).await, emu.clients(SECONDARY).await);
    let name = unique_name("switch");
    let pair = rds::create_mysql_with_cross_region_replica(&a, &b, &name).await;
    let state_table = format!("{name}-state");
    dynamodb::create_state_table(&b, &state_table).await;
    let environment = format!("{name}-env");
    let servers = ec2::launch_app_servers(&b, "Magento", &environment, 2).await;
    let roots = ec2::manage(emu, "Magento", &servers);
    let document = format!("{name}-repoint");
    b.ssm
        .create_document()
        .name(&document)
        .content(std::fs::read_to_string(repo_root().join("infra/ssm/repoint-app-document.json")).unwrap())
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .send()
        .await
        .unwrap();

    // The functions reach AWS through a proxy that takes the primary region away.
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
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let log = std::env::temp_dir().join(format!("failover-switch-watch-{}.log", std::process::id()));
    let watch = LambdaWatch::start(&repo_root(), &env, &log)
        .unwrap_or_else(|e| panic!("cargo lambda watch (run scripts/venv.sh tools to install cargo-lambda): {e}"));
    let url = format!("http://127.0.0.1:{}", watch.port());
    for binary in ["rds-promoter", "env-rewriter"] {
        emu.route_lambda(&format!("{name}-{binary}"), &url, binary);
    }
    let config = sdk_config(&Region::new(SECONDARY).unwrap(), ClientTimeouts::default()).await;
    let outputs = stack::deploy(&aws_sdk_cloudformation::Client::new(&config), &name, &template(&name)).await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let alarm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("events/alarm-state-change-to-alarm.json")).unwrap())
            .unwrap();

    let done = stack::run_execution(&sfn, &outputs["Plan"], &serde_json::json!({"alarm": alarm}), LIMIT).await;

    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{:?} {:?}; see {}",
        done.error(),
        done.cause(),
        log.display()
    );
    let output: serde_json::Value = serde_json::from_str(done.output().unwrap()).unwrap();
    assert_eq!(output["promotion"]["action"], "promoted", "{output}");
    assert_eq!(output["repoint"]["status"], "success", "{output}");
    // What the shop relies on, read from the parts: the replica is detached and takes
    // writes; each server's files name it.
    let promoted = rds::describe(&b, &pair.replica_id).await;
    assert_eq!(promoted.read_replica_source_db_instance_identifier(), None);
    rds::database(&b, &pair.replica_id)
        .await
        .exec("CREATE DATABASE switched");
    let endpoint = promoted.endpoint().unwrap();
    let address = format!("{}:{}", endpoint.address().unwrap(), endpoint.port().unwrap());
    for root in &roots {
        assert!(
            node::read(root, node::ENV_FILE).contains(&format!("DB_HOST={address}")),
            "{}",
            node::read(root, node::ENV_FILE)
        );
        assert!(node::read(root, "/var/www/magento/app/etc/env.php").contains(&format!("'host' => '{address}'")));
    }
    // The timeline comes from the execution history: one Promote task, one Repoint task.
    let history = sfn
        .get_execution_history()
        .execution_arn(done.execution_arn())
        .send()
        .await
        .unwrap();
    let entered: Vec<&str> = history
        .events()
        .iter()
        .filter(|e| e.r#type() == &HistoryEventType::TaskStateEntered)
        .filter_map(|e| e.state_entered_event_details().map(|d| d.name()))
        .collect();
    assert_eq!(entered, ["Promote", "Repoint"]);
    // The step timeline, from the history's own timestamps (printed for the report).
    let start = history
        .events()
        .first()
        .map(|e| e.timestamp().as_secs_f64())
        .unwrap_or_default();
    for event in history.events() {
        let at = event.timestamp().as_secs_f64() - start;
        if let Some(details) = event.state_entered_event_details() {
            eprintln!("region switch: +{at:6.2} s entered {}", details.name());
        }
        if let Some(details) = event.state_exited_event_details() {
            eprintln!("region switch: +{at:6.2} s exited  {}", details.name());
        }
    }
    drop(watch);
}
