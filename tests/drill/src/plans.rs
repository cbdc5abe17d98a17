//! The region-switch plan as the template deploys it, started as in AWS: by the template's
//! failover rule when a CloudWatch alarm state change reaches the default event bus.
//!
//! Deployed with CloudFormation in the failover region: `infra/statemachine/region-switch.asl.json`
//! with the `DefinitionSubstitutions` the template gives it, the two functions it calls under
//! the template's names (served by the drill's `cargo lambda watch`), the notification topic
//! with a queue subscribed (the on-call person's pager), and the rule exactly as
//! `infra/template.yaml` declares it (pattern, input transformer, retry policy; read by
//! `tools/template_rule.py`) with the plan as its target. The emulator's EventBridge starts
//! the plan (`tools/fidelity/events_targets.py`).

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::fixtures::stack;
use failover_testkit::venv::repo_root;
use failover_testkit::{Emulator, PRIMARY, SECONDARY};
use serde_json::{json, Value};

/// The template's `NamePrefix` (its default): every deployed name starts with it.
pub const NAME_PREFIX: &str = "shop-failover";
/// How long the plan may run (promotion, repointing twice, the report).
pub const PLAN_LIMIT: Duration = Duration::from_secs(300);

/// The deployed plan and what it is wired to.
pub struct Plans {
    sfn: aws_sdk_sfn::Client,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    /// The region-switch state machine's ARN.
    pub region_switch: String,
    /// The pager queue's URL (subscribed to the notification topic).
    pub pager: String,
    /// The failover rule's name, as the template names it.
    pub rule_name: String,
}

/// The failover rule of the template, resolved with the stack's parameters.
fn template_rule() -> Result<Value, String> {
    let python = failover_testkit::venv::ensure_emulator_python().map_err(|e| format!("emulator venv: {e}"))?;
    let root = repo_root();
    let output = std::process::Command::new(python)
        .arg(root.join("tools/template_rule.py"))
        .arg(root.join("infra/template.yaml"))
        .args(["RegionSwitchStateMachine", "FailoverAlarm"])
        .arg(format!("NamePrefix={NAME_PREFIX}"))
        .output()
        .map_err(|e| format!("tools/template_rule.py: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tools/template_rule.py: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("tools/template_rule.py printed no JSON: {e}"))
}

/// The stack: the functions, the pager, the plan and the rule.
fn template(rule: &Value) -> Result<String, String> {
    let path = repo_root().join("infra/statemachine/region-switch.asl.json");
    let definition = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut target = json!({
        "Id": "region-switch",
        "Arn": {"Ref": "Plan"},
        "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
    });
    for (key, field) in [("InputTransformer", "inputTransformer"), ("RetryPolicy", "retryPolicy")] {
        if !rule[field].is_null() {
            target[key] = rule[field].clone();
        }
    }
    let mut body = json!({
        "Resources": {
            "Role": stack::service_role(),
            "RdsPromoter": stack::watched_function(&format!("{NAME_PREFIX}-rds-promoter"), "Role"),
            "EnvRewriter": stack::watched_function(&format!("{NAME_PREFIX}-env-rewriter"), "Role"),
            "Plan": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": format!("{NAME_PREFIX}-region-switch"),
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "DefinitionString": definition,
                    // As the template substitutes them (RepointFailurePolicy: its default).
                    "DefinitionSubstitutions": {
                        "RdsPromoterFunctionArn": {"Fn::GetAtt": ["RdsPromoter", "Arn"]},
                        "EnvRewriterFunctionArn": {"Fn::GetAtt": ["EnvRewriter", "Arn"]},
                        "PrimaryRegion": PRIMARY,
                        "NotificationTopicArn": {"Ref": "Topic"},
                        "RepointFailurePolicy": "continue"
                    }
                }
            },
            "FailoverRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": rule["ruleName"],
                    "EventPattern": rule["eventPattern"],
                    "State": "ENABLED",
                    "Targets": [target]
                }
            }
        },
        "Outputs": {
            "Plan": {"Value": {"Ref": "Plan"}},
            "Pager": {"Value": {"Ref": "Pager"}}
        }
    });
    for (id, resource) in stack::pager_and_topic(NAME_PREFIX) {
        body["Resources"][id] = resource;
    }
    Ok(body.to_string())
}

impl Plans {
    /// Deploys the stack in the failover region and routes its functions to `watch_url`.
    pub async fn deploy(emulator: &Emulator, watch_url: &str) -> Result<Self, String> {
        let rule = template_rule()?;
        let body = template(&rule)?;
        let config = sdk_config(
            &Region::new(SECONDARY).map_err(|e| e.to_string())?,
            ClientTimeouts::default(),
        )
        .await;
        for binary in ["rds-promoter", "env-rewriter"] {
            emulator.route_lambda(&format!("{NAME_PREFIX}-{binary}"), watch_url, binary);
        }
        let outputs = stack::deploy(
            &aws_sdk_cloudformation::Client::new(&config),
            &format!("{NAME_PREFIX}-plans"),
            &body,
        )
        .await;
        let output = |key: &str| {
            outputs
                .get(key)
                .cloned()
                .ok_or_else(|| format!("the plans stack has no output {key}"))
        };
        Ok(Self {
            sfn: aws_sdk_sfn::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            region_switch: output("Plan")?,
            pager: output("Pager")?,
            rule_name: rule["ruleName"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Puts the alarm's state change on the failover region's default bus, as CloudWatch
    /// does when the alarm enters ALARM (the emulator evaluates no alarms).
    pub async fn raise_alarm(&self, event: &Value) -> Result<(), String> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(event["source"].as_str().unwrap_or("aws.cloudwatch"))
            .detail_type(event["detail-type"].as_str().unwrap_or("CloudWatch Alarm State Change"))
            .detail(event["detail"].to_string())
            .set_resources(
                event["resources"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
            )
            .build();
        let put = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| format!("PutEvents: {}", aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
        if put.failed_entry_count() > 0 {
            return Err(format!("PutEvents refused the alarm: {:?}", put.entries()));
        }
        Ok(())
    }

    /// The executions of the plan so far (ARNs, newest first).
    pub async fn executions(&self) -> Result<Vec<String>, String> {
        let listed = self
            .sfn
            .list_executions()
            .state_machine_arn(&self.region_switch)
            .send()
            .await
            .map_err(|e| format!("ListExecutions: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        Ok(listed
            .executions()
            .iter()
            .map(|e| e.execution_arn().to_owned())
            .collect())
    }

    /// Waits (bounded by `limit`) until the execution is no longer running; returns its
    /// status and output (or error and cause).
    pub async fn finished(&self, execution: &str, limit: Duration) -> Result<(ExecutionStatus, Value), String> {
        let described = stack::finished_execution(&self.sfn, execution, limit).await?;
        let output = match described.output() {
            Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
            None => json!({"error": described.error(), "cause": described.cause()}),
        };
        Ok((described.status().clone(), output))
    }

    /// The subjects of the notifications that reached the pager so far (read and removed).
    pub async fn notifications(&self) -> Result<Vec<String>, String> {
        let seen = stack::pager_notifications(&self.sqs, &self.pager).await?;
        Ok(seen.into_iter().map(|(subject, _)| subject).collect())
    }
}
