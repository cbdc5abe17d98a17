//! The emulator's Step Functions execute state machines, and a Lambda task runs the real
//! function binary (served by `cargo lambda watch`, see `tools/fidelity/stepfunctions.py`).
//! The function and the state machine are deployed with CloudFormation, as a user would,
//! under a stack-prefixed name routed to its binary (`Emulator::route_lambda`).

use std::time::{Duration, Instant};

/// The first Lambda call may build the function in `cargo lambda watch`.
const LIMIT: Duration = Duration::from_secs(600);

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::fixtures::stack;
use failover_testkit::lambda_watch::LambdaWatch;
use failover_testkit::venv::repo_root;
use failover_testkit::{unique_name, Emulator, SECONDARY};

/// A Lambda task (rds-promoter's decision on an alarm), a Wait and a Choice; a function
/// error the task cannot retry is caught into a named failed state.
fn definition(function_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "Comment": "decide, wait, branch on the function's answer",
        "StartAt": "Decide",
        "States": {
            "Decide": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$.alarm"},
                "ResultSelector": {"action.$": "$.Payload.action", "kind.$": "$.Payload.ignoredBecause.kind"},
                "ResultPath": "$.decision",
                "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}],
                "Catch": [{"ErrorEquals": ["NonRetryable"], "ResultPath": "$.error", "Next": "DecisionRefused"}],
                "Next": "Settle"
            },
            "Settle": {"Type": "Wait", "Seconds": 1, "Next": "Ignored?"},
            "Ignored?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.decision.action", "StringEquals": "ignored", "Next": "NothingToDo"}],
                "Default": "Unexpected"
            },
            "NothingToDo": {"Type": "Succeed", "OutputPath": "$.decision"},
            "Unexpected": {"Type": "Fail", "Error": "UnexpectedDecision"},
            "DecisionRefused": {"Type": "Fail", "Error": "DecisionRefused", "Cause": "the function refused the event"}
        }
    })
}

fn template(function_name: &str, definition: &serde_json::Value) -> String {
    serde_json::json!({
        "Resources": {
            "Role": stack::service_role(),
            "Promoter": stack::watched_function(function_name, "Role"),
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": definition.to_string()
                }
            }
        },
        "Outputs": {"Machine": {"Value": {"Ref": "Machine"}}, "Promoter": {"Value": {"Fn::GetAtt": ["Promoter", "Arn"]}}}
    })
    .to_string()
}

fn sample(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo_root().join("events").join(name)).unwrap()).unwrap()
}

#[tokio::test]
async fn a_state_machine_runs_a_real_function_waits_and_branches_on_its_answer() {
    let emu = Emulator::shared();
    let region = Region::new(SECONDARY).unwrap();
    let config = sdk_config(&region, ClientTimeouts::default()).await;
    let env: Vec<(String, String)> = emu
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            [
                ("REPLICA_IDENTIFIER", "shop-db-replica"),
                ("REPLICA_REGION", SECONDARY),
                ("PRIMARY_REGION", "us-east-1"),
                ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
                ("PARAMETER_PREFIX", "/shop/failover"),
                ("STATE_TABLE", "sfn-fidelity-state"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .collect();
    let log = std::env::temp_dir().join(format!("failover-sfn-watch-{}.log", std::process::id()));
    let watch = LambdaWatch::start(&repo_root(), &env, &log)
        .unwrap_or_else(|e| panic!("cargo lambda watch (run scripts/venv.sh tools to install cargo-lambda): {e}"));
    let stack_name = unique_name("sfn-fidelity");
    let function_name = format!("{stack_name}-rds-promoter");
    emu.route_lambda(
        &function_name,
        &format!("http://127.0.0.1:{}", watch.port()),
        "rds-promoter",
    );
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let function_arn = format!("arn:aws:lambda:{SECONDARY}:123456789012:function:{function_name}");
    let body = template(&function_name, &definition(&function_arn));
    let outputs = stack::deploy(&cloudformation, &stack_name, &body).await;
    let machine = &outputs["Machine"];
    let sfn = aws_sdk_sfn::Client::new(&config);

    // An alarm back to OK: the real binary answers "ignored" (its policy), the Wait runs,
    // and the Choice routes on that answer.
    let started = Instant::now();
    let ok = serde_json::json!({"alarm": sample("alarm-state-change-to-ok.json")});
    let done = stack::run_execution(&sfn, machine, &ok, LIMIT).await;
    let took = started.elapsed();
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{:?} {:?}",
        done.error(),
        done.cause()
    );
    let output: serde_json::Value = serde_json::from_str(done.output().unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!({"action": "ignored", "kind": "not-alarm"}),
        "the function's own decision"
    );
    assert!(took >= Duration::from_secs(1), "the Wait state waited: {took:?}");
    let history = sfn
        .get_execution_history()
        .execution_arn(done.execution_arn())
        .send()
        .await
        .unwrap();
    let kinds: Vec<&HistoryEventType> = history.events().iter().map(|e| e.r#type()).collect();
    for expected in [
        HistoryEventType::TaskSucceeded,
        HistoryEventType::WaitStateExited,
        HistoryEventType::ChoiceStateEntered,
    ] {
        assert!(kinds.contains(&&expected), "{expected:?} in {kinds:?}");
    }

    // An event the function cannot read: its NonRetryable error is caught, by name, into
    // the failed state the definition names.
    let refused = stack::run_execution(&sfn, machine, &serde_json::json!({"alarm": {"not": "an alarm"}}), LIMIT).await;
    assert_eq!(refused.status(), &ExecutionStatus::Failed);
    assert_eq!(refused.error(), Some("DecisionRefused"), "{:?}", refused.cause());
    drop(watch);
}
