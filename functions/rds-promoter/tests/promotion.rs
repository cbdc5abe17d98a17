//! The promotion flow against real AWS semantics, pinned with aws-smithy-mocks (RDS) and
//! in-memory doubles with DynamoDB's conditional-write semantics (lock) and SSM writes.

mod common;

use std::time::Duration;

use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::operation::promote_read_replica::PromoteReadReplicaOutput;
use aws_sdk_rds::Client as RdsClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use common::*;
use failover_core::parameters::MemoryParameters;
use failover_core::ErrorClass;
use rds_promoter::adapters::RdsInstances;
use rds_promoter::adapters::{MemoryLockStore, MemoryMappings};
use rds_promoter::domain::{SplitBrainVerdict, Stage};
use rds_promoter::{Promoter, PromoterConfig, PromotionAction as Action};

fn rds(rules: &[&Rule]) -> RdsInstances {
    RdsInstances::new(mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled())))
}

fn promote_ok() -> Rule {
    mock!(RdsClient::promote_read_replica)
        .match_requests(|r| r.db_instance_identifier() == Some(REPLICA) && r.backup_retention_period() == Some(7))
        .then_output(|| PromoteReadReplicaOutput::builder().build())
}

/// The source primary's region answers that it is down.
fn source_down() -> Rule {
    mock!(RdsClient::describe_db_instances).then_output(|| source("inaccessible-encryption-credentials"))
}

struct Harness {
    promoter: Promoter<
        RdsInstances,
        RdsInstances,
        std::sync::Arc<MemoryLockStore>,
        std::sync::Arc<MemoryParameters>,
        std::sync::Arc<MemoryMappings>,
    >,
    lock: std::sync::Arc<MemoryLockStore>,
    parameters: std::sync::Arc<MemoryParameters>,
    mappings: std::sync::Arc<MemoryMappings>,
}

fn harness(config: PromoterConfig, replica_rules: &[&Rule], source_rules: &[&Rule]) -> Harness {
    let lock = std::sync::Arc::new(MemoryLockStore::default());
    let parameters = std::sync::Arc::new(MemoryParameters::default());
    let mappings = std::sync::Arc::new(MemoryMappings::default());
    let promoter = Promoter::new(
        config,
        rds(replica_rules),
        rds(source_rules),
        lock.clone(),
        parameters.clone(),
        mappings.clone(),
    );
    Harness {
        promoter,
        lock,
        parameters,
        mappings,
    }
}

impl Harness {
    /// Delivers the sample ALARM event as invocation `request_id`, with 30 s to go.
    async fn alarm(&self, request_id: &str) -> Result<rds_promoter::PromotionReport, rds_promoter::PromoterError> {
        self.promoter
            .handle(
                event("alarm-state-change-to-alarm.json"),
                &invocation(request_id, Duration::from_secs(30)),
            )
            .await
    }
}

/// The replica as the guard sees it, then writable on the first poll.
fn promotable_then_writable() -> Rule {
    mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .output(|| replica("available", None, false))
        .build()
}

const FAILOVER_ID: &str = "shop-failover-primary-region-unhealthy@2026-11-21T03:00:05.123Z";

fn published() -> Vec<(String, String)> {
    vec![
        ("/shop/failover/db-host".into(), REPLICA_HOST.into()),
        ("/shop/failover/db-port".into(), "3306".into()),
        ("/shop/failover/active-region".into(), "us-west-2".into()),
    ]
}

#[tokio::test]
async fn promotes_once_waits_through_the_real_status_sequence_and_publishes() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true)) // guard
        .output(|| replica("available", Some(SOURCE_ARN), true)) // read before the change began
        .output(|| replica("modifying", Some(SOURCE_ARN), true))
        .output(|| replica("modifying", None, false))
        .output(|| replica("rebooting", None, false))
        .output(|| replica("available", None, false))
        .build();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);

    let outcome = h.alarm("req-1").await.unwrap();

    assert_eq!(outcome.action, Action::Promoted);
    assert_eq!(promote.num_calls(), 1);
    assert_eq!(
        describe.num_calls(),
        6,
        "polled until available with the source cleared"
    );
    assert_eq!(outcome.former_source.as_deref(), Some(SOURCE_ARN));
    assert_eq!(
        outcome.endpoint.as_ref().map(|e| (e.address.as_str(), e.port)),
        Some((REPLICA_HOST, 3306))
    );
    assert!(matches!(outcome.split_brain, Some(SplitBrainVerdict::Proceed { .. })));
    assert_eq!(h.parameters.writes(), published());
    let record = h.lock.get(FAILOVER_ID).unwrap();
    assert_eq!(record.stage, Stage::Published);
    assert_eq!(record.lease_until_ms, 0, "lease released");
    assert!(outcome.timings.promote_to_writable_ms.is_some());
}

#[tokio::test]
async fn duplicate_delivery_after_completion_changes_nothing() {
    let describe = promotable_then_writable();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let alarm = event("alarm-state-change-to-alarm.json");
    h.promoter
        .handle(alarm.clone(), &invocation("req-1", Duration::from_secs(30)))
        .await
        .unwrap();

    let again = h
        .promoter
        .handle(alarm, &invocation("req-2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(again.action, Action::AlreadyComplete);
    assert_eq!(promote.num_calls(), 1);
    assert_eq!(describe.num_calls(), 2, "the duplicate made no RDS call");
    assert_eq!(h.parameters.writes().len(), 3);
}

#[tokio::test]
async fn missing_replica_is_a_non_retryable_error_naming_it() {
    let describe = mock!(RdsClient::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance shop-db-replica not found."));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(
        err.to_string()
            .contains("read replica shop-db-replica not found in us-west-2"),
        "{err}"
    );
    assert_eq!(promote.num_calls(), 0);
    assert!(h.parameters.writes().is_empty());
}

#[tokio::test]
async fn an_instance_that_is_no_longer_a_replica_is_published_without_promoting() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", None, false));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::AlreadyPromoted);
    assert_eq!(promote.num_calls(), 0);
    assert_eq!(h.parameters.writes(), published());
}

#[tokio::test]
async fn a_busy_replica_is_a_retryable_error_saying_why() {
    let describe =
        mock!(RdsClient::describe_db_instances).then_output(|| replica("backing-up", Some(SOURCE_ARN), true));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(err.to_string().contains("shop-db-replica is backing-up"), "{err}");
    assert_eq!(promote.num_calls(), 0);
    assert_eq!(
        h.lock.get(FAILOVER_ID).unwrap().lease_until_ms,
        0,
        "a retry may take over at once"
    );
}

#[tokio::test]
async fn a_live_source_blocks_promotion_unless_the_alarm_is_authoritative() {
    let live = || mock!(RdsClient::describe_db_instances).then_output(|| source("available"));
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", Some(SOURCE_ARN), true));
    let promote = promote_ok();
    let source_rule = live();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(err.to_string().contains("split brain"), "{err}");
    assert_eq!(promote.num_calls(), 0);

    let describe = promotable_then_writable();
    let promote = promote_ok();
    let source_rule = live();
    let authoritative = config(&[("AUTHORITATIVE_ALARMS", "shop-failover-primary-region-unhealthy")]);
    let h = harness(authoritative, &[&describe, &promote], &[&source_rule]);
    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::Promoted);
    assert_eq!(promote.num_calls(), 1);
}

#[tokio::test]
async fn an_unreachable_source_region_does_not_block_promotion() {
    let describe = promotable_then_writable();
    let promote = promote_ok();
    let unreachable = mock!(RdsClient::describe_db_instances)
        .then_http_response(|| rds_error(503, "ServiceUnavailable", "Service unavailable"));
    let h = harness(config(&[]), &[&describe, &promote], &[&unreachable]);
    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::Promoted);
    assert!(
        matches!(&outcome.split_brain, Some(SplitBrainVerdict::Proceed { reason }) if reason.contains("did not answer"))
    );
}

#[tokio::test]
async fn a_promote_rejected_because_one_is_already_under_way_is_not_repeated() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .output(|| replica("modifying", None, false)) // after InvalidDBInstanceState
        .output(|| replica("available", None, false))
        .build();
    let promote = mock!(RdsClient::promote_read_replica)
        .then_http_response(|| rds_error(400, "InvalidDBInstanceState", "DB Instance is not a read replica."));
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::Promoted);
    assert_eq!(promote.num_calls(), 1);
    assert_eq!(h.lock.get(FAILOVER_ID).unwrap().stage, Stage::Published);
}

#[tokio::test]
async fn a_promote_refused_while_the_replica_is_busy_is_retried_not_taken_for_progress() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true)) // guard
        .output(|| replica("backing-up", Some(SOURCE_ARN), true)) // after the refusal
        .output(|| replica("available", Some(SOURCE_ARN), true)) // the retry's guard
        .output(|| replica("available", None, false))
        .build();
    let promote = mock!(RdsClient::promote_read_replica)
        .sequence()
        .http_response(|| {
            rds_error(
                400,
                "InvalidDBInstanceState",
                "DB Instance shop-db-replica is not in available state.",
            )
        })
        .output(|| PromoteReadReplicaOutput::builder().build())
        .build();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);

    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.to_string().contains("backing-up"), "{err}");
    let record = h.lock.get(FAILOVER_ID).unwrap();
    assert_eq!(
        record.stage,
        Stage::Requested,
        "a refused promote is not progress: waiting for writability would never end"
    );

    let outcome = h.alarm("req-1-retry").await.unwrap();
    assert_eq!(
        outcome.action,
        Action::Promoted,
        "the retry that sent PromoteReadReplica says it promoted (the plan pages on it)"
    );
    assert_eq!(
        promote.num_calls(),
        2,
        "the retry promotes once the replica is available"
    );
    assert_eq!(h.parameters.writes(), published());
}

#[tokio::test]
async fn a_throttled_look_at_the_source_waits_instead_of_promoting() {
    let describe = promotable_then_writable();
    let promote = promote_ok();
    let throttled =
        mock!(RdsClient::describe_db_instances).then_http_response(|| rds_error(400, "Throttling", "Rate exceeded"));
    let h = harness(config(&[]), &[&describe, &promote], &[&throttled]);

    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.to_string().contains("throttled"), "{err}");
    assert_eq!(promote.num_calls(), 0, "the primary's region is up: no promotion");
    assert_eq!(h.lock.get(FAILOVER_ID).unwrap().stage, Stage::Requested);
    assert!(h.parameters.writes().is_empty());
}

#[tokio::test]
async fn a_second_alarm_never_promotes_a_replica_another_failover_claimed() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", Some(SOURCE_ARN), true));
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let other = "shop-failover-primary-db-unhealthy@2026-11-21T03:00:02.400Z";
    let live_lease = chrono::Utc::now().timestamp_millis() + 60_000;
    h.lock
        .replica_claims
        .lock()
        .unwrap()
        .insert(REPLICA_INCARNATION.into(), (other.into(), live_lease));

    let err = h.alarm("req-1").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.to_string().contains("primary-db-unhealthy"), "{err}");
    assert_eq!(promote.num_calls(), 0);
    assert!(h.parameters.writes().is_empty());
}

#[tokio::test]
async fn a_claim_whose_holder_stopped_lapses_with_its_lease() {
    let describe = promotable_then_writable();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    // The other alarm's failover claimed the replica, then failed for good (say AccessDenied).
    let other = "shop-failover-primary-db-unhealthy@2026-11-21T03:00:02.400Z";
    let lapsed = chrono::Utc::now().timestamp_millis() - 1;
    h.lock
        .replica_claims
        .lock()
        .unwrap()
        .insert(REPLICA_INCARNATION.into(), (other.into(), lapsed));

    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::Promoted);
    assert_eq!(promote.num_calls(), 1);
    assert_eq!(
        h.lock.replica_claims.lock().unwrap()[REPLICA_INCARNATION].0,
        FAILOVER_ID
    );
}

#[tokio::test]
async fn throttled_status_reads_are_ridden_out() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .http_response(|| rds_error(400, "Throttling", "Rate exceeded"))
        .times(3)
        .output(|| replica("available", None, false))
        .build();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let outcome = h.alarm("req-1").await.unwrap();
    assert_eq!(outcome.action, Action::Promoted);
    assert_eq!(describe.num_calls(), 5);
}

#[tokio::test]
async fn running_out_of_time_is_retryable_and_the_retry_resumes_without_promoting_again() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .output(|| replica("modifying", Some(SOURCE_ARN), true))
        .times(5)
        .output(|| replica("available", None, false))
        .build();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    let alarm = event("alarm-state-change-to-alarm.json");

    let err = h
        .promoter
        .handle(alarm.clone(), &invocation("req-1", Duration::from_millis(40)))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(
        err.to_string()
            .contains("a retry resumes waiting without promoting again"),
        "{err}"
    );
    let record = h.lock.get(FAILOVER_ID).unwrap();
    assert_eq!(record.stage, Stage::Promoting);

    let outcome = h
        .promoter
        .handle(alarm, &invocation("req-1-retry", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(outcome.action, Action::Resumed);
    assert_eq!(promote.num_calls(), 1, "never promoted twice");
    assert_eq!(h.parameters.writes(), published());
}

#[tokio::test]
async fn parameter_store_errors_are_retryable_and_the_retry_only_publishes() {
    let describe = promotable_then_writable();
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
    h.parameters.fail_next_writes(1);
    let alarm = event("alarm-state-change-to-alarm.json");

    let err = h
        .promoter
        .handle(alarm.clone(), &invocation("req-1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(
        err.to_string().contains("PutParameter failed (ThrottlingException)"),
        "{err}"
    );
    assert_eq!(h.lock.get(FAILOVER_ID).unwrap().stage, Stage::Writable);

    let outcome = h
        .promoter
        .handle(alarm, &invocation("req-2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(outcome.action, Action::Resumed);
    assert_eq!(promote.num_calls(), 1);
    assert_eq!(describe.num_calls(), 2, "the retry made no RDS call");
    assert_eq!(h.parameters.writes(), published());
}

#[tokio::test]
async fn a_live_concurrent_owner_makes_a_duplicate_back_off() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", None, false));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    let owner = rds_promoter::domain::LockRecord::new(
        FAILOVER_ID,
        REPLICA,
        "req-owner",
        chrono::Utc::now().timestamp_millis(),
        chrono::Utc::now().timestamp_millis() + 60_000,
    );
    use rds_promoter::ports::FailoverLockStore;
    assert!(h.lock.create(&owner).await.unwrap());

    let err = h.alarm("req-dup").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert!(
        err.to_string().contains("being handled by invocation req-owner"),
        "{err}"
    );
    assert_eq!(describe.num_calls() + promote.num_calls(), 0);
    assert_eq!(h.lock.get(FAILOVER_ID).unwrap(), owner, "the owner's lock is untouched");
}

#[tokio::test]
async fn ignored_and_malformed_events_make_no_aws_call() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", Some(SOURCE_ARN), true));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    let inv = invocation("req-1", Duration::from_secs(30));

    for (file, kind) in [
        ("alarm-state-change-to-ok.json", "not-alarm"),
        ("alarm-state-change-to-insufficient-data.json", "not-alarm"),
    ] {
        let outcome = h.promoter.handle(event(file), &inv).await.unwrap();
        assert_eq!(outcome.action, Action::Ignored);
        assert_eq!(serde_json::to_value(&outcome).unwrap()["ignoredBecause"]["kind"], kind);
    }
    let mut repeated = event("alarm-state-change-to-alarm.json");
    repeated["detail"]["previousState"]["value"] = "ALARM".into();
    let outcome = h.promoter.handle(repeated, &inv).await.unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap()["ignoredBecause"]["kind"],
        "already-in-alarm"
    );
    let mut unknown = event("alarm-state-change-to-alarm.json");
    unknown["detail"]["alarmName"] = "billing-estimate".into();
    let outcome = h.promoter.handle(unknown, &inv).await.unwrap();
    assert_eq!(
        serde_json::to_value(&outcome).unwrap()["ignoredBecause"]["kind"],
        "alarm-not-allowed"
    );

    let err = h
        .promoter
        .handle(serde_json::json!({"hello": "world"}), &inv)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NonRetryable);
    assert!(
        err.to_string()
            .starts_with("invalid event: event is neither an EventBridge event"),
        "{err}"
    );

    assert_eq!(describe.num_calls() + promote.num_calls(), 0);
    assert!(h.lock.records.lock().unwrap().is_empty());
    assert!(h.parameters.writes().is_empty());
}

#[tokio::test]
async fn dry_run_checks_everything_and_changes_nothing() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", Some(SOURCE_ARN), true));
    let promote = promote_ok();
    let source_rule = source_down();
    let h = harness(config(&[("DRY_RUN", "true")]), &[&describe, &promote], &[&source_rule]);
    let outcome = h
        .promoter
        .handle(
            event("alarm-action-direct-to-alarm.json"),
            &invocation("req-1", Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(outcome.action, Action::DryRun);
    assert_eq!(promote.num_calls(), 0);
    assert_eq!(
        source_rule.num_calls(),
        2,
        "the split-brain guard and the fence's look at the old primary ran"
    );
    assert!(
        outcome
            .plan
            .iter()
            .any(|p| p.contains("database fence: would stay pending")),
        "{:?}",
        outcome.plan
    );
    assert!(
        outcome
            .plan
            .iter()
            .any(|p| p.contains("would call PromoteReadReplica shop-db-replica")),
        "{:?}",
        outcome.plan
    );
    assert!(outcome.plan.iter().any(|p| p.contains("/shop/failover/active-region")));
    assert!(h.lock.records.lock().unwrap().is_empty());
    assert!(h.parameters.writes().is_empty());
}

fn step(name: &str) -> serde_json::Value {
    serde_json::json!({"planStep": name, "alarm": event("alarm-state-change-to-alarm.json")})
}

const REPLICATOR: &str = "shop-stream-replicator";

fn enabled_mapping(h: &Harness) {
    h.mappings.mappings.lock().unwrap().insert(
        REPLICATOR.into(),
        vec![rds_promoter::domain::MappingView {
            uuid: "esm-1".into(),
            state: "Enabled".into(),
        }],
    );
}

#[tokio::test]
async fn plan_steps_promote_without_waiting_then_look_fence_and_publish_once() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .output(|| replica("modifying", None, false))
        .output(|| replica("available", None, false))
        .build();
    let promote = promote_ok();
    // The guard finds the old primary down; by the fence its region answers again.
    let source_rule = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| source("inaccessible-encryption-credentials"))
        .output(|| source("available"))
        .build();
    let stop = mock!(RdsClient::stop_db_instance)
        .match_requests(|r| r.db_instance_identifier() == Some("shop-db"))
        .then_output(|| aws_sdk_rds::operation::stop_db_instance::StopDbInstanceOutput::builder().build());
    let h = harness(
        config(&[("FORWARD_REPLICATOR_FUNCTION", REPLICATOR)]),
        &[&describe, &promote],
        &[&source_rule, &stop],
    );
    enabled_mapping(&h);
    let inv = invocation("req-1", Duration::from_secs(30));

    let promoted = h.promoter.handle(step("promote"), &inv).await.unwrap();
    assert_eq!(
        (promoted.action, promoted.stage),
        (Action::Promoted, Some(Stage::Promoting))
    );
    assert!(h.parameters.writes().is_empty(), "promote does not publish");

    let early = h.promoter.handle(step("publish"), &inv).await.unwrap_err();
    assert!(early.to_string().contains("needs stage writable"), "{early}");

    let first = h.promoter.handle(step("checkWritable"), &inv).await.unwrap();
    assert_eq!(first.stage, Some(Stage::Promoting), "one look, not writable yet");
    let second = h.promoter.handle(step("checkWritable"), &inv).await.unwrap();
    assert_eq!(second.stage, Some(Stage::Writable));

    let fenced = h.promoter.handle(step("fence"), &inv).await.unwrap();
    assert_eq!(fenced.action, Action::Fenced, "{:?}", fenced.fence);
    assert_eq!(stop.num_calls(), 1, "the old primary was stopped");
    assert_eq!(h.mappings.mappings.lock().unwrap()[REPLICATOR][0].state, "Disabled");

    let published = h.promoter.handle(step("publish"), &inv).await.unwrap();
    assert_eq!(published.stage, Some(Stage::Published));
    assert_eq!(h.parameters.writes().len(), 3);

    let again = h.promoter.handle(step("promote"), &inv).await.unwrap();
    assert_eq!(again.action, Action::AlreadyComplete);
    assert_eq!(promote.num_calls(), 1, "exactly one PromoteReadReplica");
}

#[tokio::test]
async fn a_lease_left_by_a_step_of_the_same_plan_execution_is_resumed_at_once_another_execution_waits() {
    let describe = mock!(RdsClient::describe_db_instances).then_output(|| replica("available", None, false));
    let promote = promote_ok();
    let h = harness(config(&[]), &[&describe, &promote], &[]);
    const EXECUTION: &str = "arn:aws:states:us-west-2:123456789012:execution:shop-failover-region-switch:e1";
    // The promote step of execution e1 finished, but giving its lease back failed: the record
    // still names e1, leased for another minute.
    let mut left = rds_promoter::domain::LockRecord::new(
        FAILOVER_ID,
        REPLICA,
        EXECUTION,
        chrono::Utc::now().timestamp_millis(),
        chrono::Utc::now().timestamp_millis() + 60_000,
    );
    left.stage = Stage::Promoting;
    use rds_promoter::ports::FailoverLockStore;
    assert!(h.lock.create(&left).await.unwrap());
    let of = |execution: &str| {
        let mut payload = step("checkWritable");
        payload["executionArn"] = execution.into();
        payload
    };

    // Another execution (a duplicate start) backs off while the lease lives.
    let other = h
        .promoter
        .handle(
            of(&format!("{EXECUTION}-other")),
            &invocation("req-9", Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert_eq!(other.class(), ErrorClass::Retryable);
    assert!(other.to_string().contains("being handled by invocation"), "{other}");
    // The next step of e1, in a new invocation, takes it over without waiting.
    let next = h
        .promoter
        .handle(of(EXECUTION), &invocation("req-2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(next.stage, Some(Stage::Writable), "{next:?}");
    assert_eq!(promote.num_calls(), 0, "no second PromoteReadReplica");
    assert_eq!(h.lock.get(FAILOVER_ID).unwrap().lease_until_ms, 0, "released this time");
}

#[tokio::test]
async fn a_fence_pending_on_a_dead_region_is_completed_by_the_sweep() {
    let describe = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| replica("available", Some(SOURCE_ARN), true))
        .output(|| replica("available", None, false))
        .build();
    let promote = promote_ok();
    let source_rule = mock!(RdsClient::describe_db_instances)
        .sequence()
        .output(|| source("inaccessible-encryption-credentials"))
        .output(|| source("inaccessible-encryption-credentials"))
        .output(|| source("stopped"))
        .build();
    let h = harness(
        config(&[("FORWARD_REPLICATOR_FUNCTION", REPLICATOR)]),
        &[&describe, &promote],
        &[&source_rule],
    );
    enabled_mapping(&h);
    *h.mappings.unreachable.lock().unwrap() = Some("connect timeout".into());
    let inv = invocation("req-1", Duration::from_secs(30));
    h.promoter.handle(step("promote"), &inv).await.unwrap();
    h.promoter.handle(step("checkWritable"), &inv).await.unwrap();

    let pending = h.promoter.handle(step("fence"), &inv).await.unwrap();
    assert_eq!(pending.action, Action::FencePending);
    let fence = pending.fence.unwrap();
    assert!(
        fence.database.is_pending() && fence.replication.is_pending(),
        "{fence:?}"
    );

    // The region answers again; the schedule's run completes the fence.
    *h.mappings.unreachable.lock().unwrap() = None;
    let swept = h.promoter.handle(event("scheduled-event.json"), &inv).await.unwrap();
    assert_eq!(swept.action, Action::SweptFences);
    assert_eq!(swept.fences.len(), 1);
    assert!(!swept.fences[0].is_pending(), "{:?}", swept.fences[0]);
    assert_eq!(h.mappings.mappings.lock().unwrap()[REPLICATOR][0].state, "Disabled");
    assert!(!h.lock.fences.lock().unwrap()[FAILOVER_ID].is_pending());
}

#[tokio::test]
async fn the_plan_report_is_the_recorded_history_and_the_steps_results() {
    use rds_promoter::domain::{StateKind, StateVisit};
    let h = harness(config(&[]), &[], &[]);
    let arn = "arn:aws:states:us-west-2:123456789012:execution:shop-failover-region-switch:e-1";
    let visit = |name: &str, kind, entered, exited| StateVisit {
        name: name.into(),
        kind,
        entered_at_ms: entered,
        exited_at_ms: exited,
    };
    h.promoter.history().executions.lock().unwrap().insert(
        arn.into(),
        (
            10_000,
            vec![
                visit("Promote", StateKind::Task, 10_100, Some(10_900)),
                visit("WaitForWritable", StateKind::Wait, 10_900, Some(15_900)),
                visit("Repoint", StateKind::Task, 16_000, Some(17_000)),
                visit("Report", StateKind::Task, 17_100, None),
            ],
        ),
    );
    let plan = serde_json::json!({
        "alarm": event("alarm-state-change-to-alarm.json"),
        "promotion": {"action": "promoted", "report": {"action": "promoted", "failoverId": FAILOVER_ID, "replica": REPLICA}},
        "repoint": {"status": "success", "report": {"instances": [{"instanceId": "i-1", "app": "Magento", "result": "success", "summary": "repoint: ok"}]}}
    });

    let report = h.promoter.report_plan(arn, plan.clone()).await.unwrap();

    assert_eq!(report["outcome"], "switched", "{report}");
    assert_eq!(report["failoverId"], FAILOVER_ID);
    let steps: Vec<&str> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["Promote", "WaitForWritable", "Repoint", "Report"]);
    assert_eq!(report["waitedS"], 5.0);
    assert_eq!(report["instances"][0]["instanceId"], "i-1");

    let err = h
        .promoter
        .report_plan("arn:aws:states:x:1:execution:y:unknown", plan)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown"), "{err}");
    let err = h
        .promoter
        .report_plan(arn, serde_json::json!({"repoint": {"report": {"instances": []}}}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the plan's state"), "{err}");
}

/// The monitors' observations as health-monitor saves them: the decider's (the health
/// state) and the witness's, each having seen the primary healthy once and then `down`
/// consecutive failures, the witness's last check `witness_last`.
fn observations(lock: &MemoryLockStore, down: u32, witness_last: failover_core::evidence::CheckOutcome) {
    use failover_core::evidence::{CheckOutcome, Observation};
    let (p, s) = (
        failover_core::Region::new("us-east-1").unwrap(),
        failover_core::Region::new("us-west-2").unwrap(),
    );
    let now = chrono::Utc::now().timestamp_millis();
    let (mut decider, mut witness) = (Observation::default(), Observation::default());
    for observation in [&mut decider, &mut witness] {
        observation.record(&p, CheckOutcome::Healthy, now - 60_000);
    }
    for _ in 0..down {
        decider.record(&p, CheckOutcome::Down, now);
        decider.record(&s, CheckOutcome::Healthy, now);
        witness.record(&p, CheckOutcome::Down, now);
    }
    witness.record(&p, witness_last, now);
    let mut saved = lock.observations.lock().unwrap();
    saved.insert("health#us-east-1#us-west-2".into(), decider);
    saved.insert("health#us-east-1#us-west-2#observer#us-east-2".into(), witness);
}

#[tokio::test]
async fn the_decide_step_promotes_only_on_the_monitors_quorum() {
    use failover_core::evidence::CheckOutcome;
    let quorum = [
        ("QUORUM_ALARMS", "shop-failover-primary-region-unhealthy"),
        ("WITNESS_REGION", "us-east-2"),
    ];
    // A partition: the witness's last check reached the primary.
    let (describe, promote, source_rule) = (promotable_then_writable(), promote_ok(), source_down());
    let h = harness(config(&quorum), &[&describe, &promote], &[&source_rule]);
    observations(&h.lock, 3, CheckOutcome::Healthy);
    let refused = h.alarm("req-1").await.unwrap_err();
    assert!(refused.to_string().contains("partition"), "{refused}");
    assert_eq!(refused.class(), ErrorClass::NonRetryable);
    assert_eq!(promote.num_calls(), 0);

    // Both vantage points saw it down three times: promoted.
    let (describe, promote, source_rule) = (promotable_then_writable(), promote_ok(), source_down());
    let h = harness(config(&quorum), &[&describe, &promote], &[&source_rule]);
    observations(&h.lock, 3, CheckOutcome::Down);
    assert_eq!(h.alarm("req-1").await.unwrap().action, Action::Promoted);

    // The same alarm from INSUFFICIENT_DATA (created during the outage) is decided by the
    // evidence, not dropped; with no observation at all it is refused.
    let (describe, promote, source_rule) = (promotable_then_writable(), promote_ok(), source_down());
    let h = harness(config(&quorum), &[&describe, &promote], &[&source_rule]);
    let mut alarm = event("alarm-state-change-to-alarm.json");
    alarm["detail"]["previousState"]["value"] = "INSUFFICIENT_DATA".into();
    let refused = h
        .promoter
        .handle(alarm.clone(), &invocation("req-1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("evidence gate"), "{refused}");
    let (describe, promote, source_rule) = (promotable_then_writable(), promote_ok(), source_down());
    let h = harness(config(&quorum), &[&describe, &promote], &[&source_rule]);
    observations(&h.lock, 3, CheckOutcome::Down);
    let promoted = h
        .promoter
        .handle(alarm, &invocation("req-2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(promoted.action, Action::Promoted);
}

/// DescribeDBInstances of the source answering `backing-up` or `modifying`: the RDS user
/// guide ("Viewing Amazon RDS DB instance status") lists both as states in which the
/// instance keeps serving; promoting now would leave two writers, so it is refused.
#[tokio::test]
async fn a_source_backing_up_or_modifying_is_alive_and_refuses_the_promotion() {
    for status in ["backing-up", "modifying", "storage-optimization"] {
        let describe = promotable_then_writable();
        let promote = promote_ok();
        let source_rule = mock!(RdsClient::describe_db_instances).then_output(move || source(status));
        let h = harness(config(&[]), &[&describe, &promote], &[&source_rule]);
        let refused = h.alarm("req-1").await.unwrap_err();
        assert!(
            matches!(refused, rds_promoter::PromoterError::SplitBrain(_)),
            "{status}: {refused}"
        );
        assert!(refused.to_string().contains(status), "{refused}");
        assert_eq!(promote.num_calls(), 0, "{status}");
    }
}
