//! Every file in `events/` parses with the parser its trigger uses, with the documented outcome.

use std::path::PathBuf;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use failover_core::alarm::{AlarmPolicy, AlarmState, AlarmTransition, IgnoreReason, TransitionSource, Verdict};
use failover_core::parameter_change::ParameterChange;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(events_dir().join(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

fn policy() -> AlarmPolicy {
    AlarmPolicy::new(Vec::new(), ["shop-failover-".to_string()]).unwrap()
}

const SAMPLES: &[&str] = &[
    "alarm-action-direct-to-alarm.json",
    "alarm-state-change-to-alarm.json",
    "alarm-state-change-to-insufficient-data.json",
    "alarm-state-change-to-ok.json",
    "composite-alarm-actions-released.json",
    "composite-alarm-actions-suppressed.json",
    "dynamodb-stream-batch.json",
    "parameter-store-change.json",
    "scheduled-event.json",
    "stream-replicator-redrive.json",
];

#[test]
fn every_sample_is_covered_here() {
    let mut found: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, SAMPLES, "add a parsing test for each new sample event");
}

/// The redrive request is stream-replicator's own (its handler and its test parse it); here:
/// it is a JSON object with `redrive`, never taken for a stream batch (no `Records`).
#[test]
fn the_redrive_request_is_no_stream_batch() {
    let json: serde_json::Value = serde_json::from_slice(&read("stream-replicator-redrive.json")).unwrap();
    assert!(json["redrive"].is_object(), "{json}");
    assert!(json.get("Records").is_none());
}

#[test]
fn eventbridge_alarm_to_alarm_acts() {
    let t = AlarmTransition::from_slice(&read("alarm-state-change-to-alarm.json")).unwrap();
    assert_eq!((t.from_state, t.to_state), (Some(AlarmState::Ok), AlarmState::Alarm));
    assert_eq!(t.source, TransitionSource::EventBridge);
    assert_eq!(
        t.failover_id(),
        "shop-failover-primary-region-unhealthy@2026-11-21T03:00:05.123Z"
    );
    assert_eq!(policy().evaluate(&t), Verdict::Act);
}

#[test]
fn direct_alarm_action_acts() {
    let t = AlarmTransition::from_slice(&read("alarm-action-direct-to-alarm.json")).unwrap();
    assert_eq!(t.source, TransitionSource::AlarmAction);
    assert_eq!(t.alarm_name, "shop-failover-primary-db-unavailable");
    assert_eq!(t.region.as_str(), "us-east-1");
    assert_eq!(t.account.as_deref(), Some("123456789012"));
    assert_eq!(t.timestamp.to_rfc3339(), "2026-11-21T03:00:07.870+00:00");
    assert_eq!(policy().evaluate(&t), Verdict::Act);
}

/// A composite alarm whose suppressor (a maintenance window) is in ALARM: CloudWatch runs
/// none of its actions ("Suppressing composite alarm actions", CloudWatch user guide), and
/// EventBridge still delivers the change, with `actionsSuppressedBy` in the state.
#[test]
fn a_suppressed_composite_alarm_is_ignored_with_the_reason() {
    let t = AlarmTransition::from_slice(&read("composite-alarm-actions-suppressed.json")).unwrap();
    assert_eq!((t.from_state, t.to_state), (Some(AlarmState::Ok), AlarmState::Alarm));
    assert_eq!(t.suppressed.as_ref().map(|s| s.by.as_str()), Some("Alarm"));
    assert_eq!(
        policy().evaluate(&t),
        Verdict::Ignored {
            reason: IgnoreReason::ActionsSuppressed {
                by: "Alarm".into(),
                reason: "Alarm action suppressed by shop-maintenance-window in ALARM".into()
            }
        }
    );
}

/// The WaitPeriod ended without the suppressor going into ALARM: CloudWatch runs the
/// actions, reporting ALARM again with the previous state's actions suppressed.
#[test]
fn a_composite_alarm_whose_suppression_ended_acts() {
    let t = AlarmTransition::from_slice(&read("composite-alarm-actions-released.json")).unwrap();
    assert_eq!((t.from_state, t.to_state), (Some(AlarmState::Alarm), AlarmState::Alarm));
    assert_eq!(t.suppressed, None);
    assert_eq!(
        t.previously_suppressed.as_ref().map(|s| s.by.as_str()),
        Some("WaitPeriod")
    );
    assert_eq!(policy().evaluate(&t), Verdict::Act);
}

#[test]
fn ok_and_insufficient_data_are_ignored() {
    for (file, state) in [
        ("alarm-state-change-to-ok.json", AlarmState::Ok),
        (
            "alarm-state-change-to-insufficient-data.json",
            AlarmState::InsufficientData,
        ),
    ] {
        let t = AlarmTransition::from_slice(&read(file)).unwrap();
        assert_eq!(
            policy().evaluate(&t),
            Verdict::Ignored {
                reason: IgnoreReason::NotAlarm { state }
            },
            "{file}"
        );
    }
}

#[test]
fn dynamodb_batch_has_every_change_kind_and_a_ttl_delete() {
    let event: DynamoDbEvent = serde_json::from_slice(&read("dynamodb-stream-batch.json")).unwrap();
    let names: Vec<&str> = event.records.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(names, ["INSERT", "INSERT", "MODIFY", "REMOVE", "REMOVE"]);
    let ttl = event.records.last().unwrap().user_identity.as_ref().unwrap();
    assert_eq!(
        (ttl.type_.as_str(), ttl.principal_id.as_str()),
        ("Service", "dynamodb.amazonaws.com")
    );
    assert!(event
        .records
        .iter()
        .all(|r| r.event_source_arn.as_deref().is_some_and(|a| a.contains("/stream/"))));
    let sequence: Vec<u128> = event
        .records
        .iter()
        .map(|r| r.change.sequence_number.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(sequence.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn parameter_store_change_parses() {
    let change =
        ParameterChange::from_value(serde_json::from_slice(&read("parameter-store-change.json")).unwrap()).unwrap();
    assert_eq!(change.name, "/shop/failover/active-region");
    assert!(change.is_under("/shop/failover"));
}

#[test]
fn scheduled_event_parses() {
    let event: EventBridgeEvent = serde_json::from_slice(&read("scheduled-event.json")).unwrap();
    assert_eq!(
        (event.source.as_str(), event.detail_type.as_str()),
        ("aws.events", "Scheduled Event")
    );
    assert!(AlarmTransition::from_value(serde_json::from_slice(&read("scheduled-event.json")).unwrap()).is_err());
}
