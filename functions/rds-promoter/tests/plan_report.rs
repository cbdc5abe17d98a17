//! The plan's closing report: its timeline comes from GetExecutionHistory, whose answers
//! are pinned here with aws-smithy-mocks as the Step Functions API Reference documents them
//! (GetExecutionHistory: up to 1,000 events per page with `maxResults`, a `nextToken` while
//! more remain; an unknown ARN is `ExecutionDoesNotExist`, HTTP 400).

use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType, StateEnteredEventDetails, StateExitedEventDetails};
use aws_sdk_sfn::Client as SfnClient;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use rds_promoter::adapters::SfnHistory;
use rds_promoter::domain::StateKind;
use rds_promoter::ports::ExecutionHistory;

const ARN: &str = "arn:aws:states:us-west-2:123456789012:execution:shop-failover-region-switch:e-1";

fn event(id: i64, kind: HistoryEventType, at_ms: i64, name: Option<&str>) -> HistoryEvent {
    let mut event = HistoryEvent::builder()
        .id(id)
        .r#type(kind.clone())
        .timestamp(DateTime::from_millis(at_ms));
    let entered = matches!(
        kind,
        HistoryEventType::TaskStateEntered | HistoryEventType::WaitStateEntered | HistoryEventType::ChoiceStateEntered
    );
    if let Some(name) = name {
        event = if entered {
            event.state_entered_event_details(StateEnteredEventDetails::builder().name(name).build().unwrap())
        } else {
            event.state_exited_event_details(StateExitedEventDetails::builder().name(name).build().unwrap())
        };
    }
    event.build().unwrap()
}

#[tokio::test]
async fn the_history_becomes_visits_across_pages_with_waits_told_apart() {
    use HistoryEventType as T;
    let first = mock!(SfnClient::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(ARN) && r.next_token().is_none())
        .then_output(|| {
            GetExecutionHistoryOutput::builder()
                .events(event(1, T::ExecutionStarted, 1_000, None))
                .events(event(2, T::TaskStateEntered, 1_010, Some("Promote")))
                .events(event(3, T::TaskStateExited, 1_800, Some("Promote")))
                .events(event(4, T::WaitStateEntered, 1_800, Some("WaitForWritable")))
                .next_token("page-2")
                .build()
                .unwrap()
        });
    let second = mock!(SfnClient::get_execution_history)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetExecutionHistoryOutput::builder()
                .events(event(5, T::WaitStateExited, 6_800, Some("WaitForWritable")))
                .events(event(6, T::TaskStateEntered, 7_000, Some("Report")))
                .build()
                .unwrap()
        });
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&first, &second]);

    let (started, visits) = SfnHistory::new(client).visits(ARN).await.unwrap();

    assert_eq!(started, 1_000);
    let seen: Vec<(&str, StateKind, i64, Option<i64>)> = visits
        .iter()
        .map(|v| (v.name.as_str(), v.kind, v.entered_at_ms, v.exited_at_ms))
        .collect();
    assert_eq!(
        seen,
        [
            ("Promote", StateKind::Task, 1_010, Some(1_800)),
            ("WaitForWritable", StateKind::Wait, 1_800, Some(6_800)),
            ("Report", StateKind::Task, 7_000, None),
        ]
    );
}

#[tokio::test]
async fn an_unknown_execution_is_a_clear_error() {
    // Step Functions' answer for an execution ARN it does not know (awsJson1_0, HTTP 400).
    let missing = mock!(SfnClient::get_execution_history).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist","message":"Execution Does Not Exist"}"#,
            ),
        )
    });
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&missing]);

    let err = SfnHistory::new(client).visits(ARN).await.unwrap_err();

    assert_eq!(err.operation, "GetExecutionHistory");
    assert_eq!(err.code.as_deref(), Some("ExecutionDoesNotExist"), "{err}");
    assert_eq!(err.class, failover_core::ErrorClass::NonRetryable, "{err}");
}

/// CloudWatch's GetMetricStatistics for `AWS/RDS` `ReplicaLag` (CloudWatch API Reference:
/// datapoints in no particular order, one per period; RDS User Guide: ReplicaLag is
/// Seconds_Behind_Master, -1 while replication is not running).
#[tokio::test]
async fn the_rpo_estimate_is_read_from_the_replicas_lag_metric() {
    use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
    use aws_sdk_cloudwatch::types::{Datapoint, Statistic};
    use aws_sdk_cloudwatch::Client as CloudWatchClient;
    use rds_promoter::adapters::RdsInstances;
    use rds_promoter::domain::rpo_estimate;
    use rds_promoter::ports::DbInstances;

    let minute = |at_s: i64, minimum: f64, maximum: f64| {
        Datapoint::builder()
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(at_s))
            .minimum(minimum)
            .maximum(maximum)
            .build()
    };
    let lag = mock!(CloudWatchClient::get_metric_statistics)
        .match_requests(|r| {
            r.namespace() == Some("AWS/RDS")
                && r.metric_name() == Some("ReplicaLag")
                && r.dimensions().first().and_then(|d| d.value()) == Some("shop-db-replica")
                && r.period() == Some(60)
                && r.statistics().contains(&Statistic::Maximum)
                && r.statistics().contains(&Statistic::Minimum)
        })
        .then_output(move || {
            GetMetricStatisticsOutput::builder()
                .label("ReplicaLag")
                .datapoints(minute(1_800, -1.0, 4.0))
                .datapoints(minute(1_740, 0.0, 2.0))
                .build()
        });
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, []);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&lag]);
    let replica = RdsInstances::new(rds).with_metrics(cloudwatch);

    let minutes = replica.replica_lag("shop-db-replica").await.unwrap();
    let estimate = rpo_estimate(&minutes);

    assert_eq!(estimate.replica_lag_seconds, Some(4.0), "{estimate:?}");
    assert_eq!(estimate.measured_at_ms, Some(1_800_000));
    assert!(
        !estimate.replication_running,
        "replication stopped during the last minute"
    );

    // The primary's side reads no metrics: an unknown estimate, never a failed promotion.
    let source = RdsInstances::new(mock_client!(aws_sdk_rds, RuleMode::MatchAny, []));
    let err = source.replica_lag("shop-db").await.unwrap_err();
    assert_eq!(err.operation, "GetMetricStatistics");
}
