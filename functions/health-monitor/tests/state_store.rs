//! The DynamoDB health store against DynamoDB's wire answers (aws-smithy-mocks). A put whose
//! answer was lost is retried by the SDK, and the retry fails the condition its own first
//! attempt satisfied: that refusal is this run's write (the item holds exactly what it wrote),
//! not another run's; a refusal with another run's state in the item stays a conflict.

use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use failover_core::Region;
use health_monitor::adapters::DynamoDbHealthStore;
use health_monitor::domain::HealthState;
use health_monitor::ports::HealthStateStore;

const CONDITION_FAILED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;

fn state(active: &str) -> HealthState {
    let mut state = HealthState::initial(&Region::new("us-east-1").unwrap(), &Region::new("us-west-2").unwrap());
    state.active_region = Region::new(active).unwrap();
    state
}

/// The store after a refused conditional put, the item then holding `stored` at `version`.
async fn refused_then_found(stored: &HealthState, version: u64, expected: u64) -> bool {
    let json = serde_json::to_string(stored).unwrap();
    let refused = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_http_response(|| Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(CONDITION_FAILED)));
    let read_back = mock!(aws_sdk_dynamodb::Client::get_item)
        .match_requests(|r| r.consistent_read() == Some(true))
        .then_output(move || {
            GetItemOutput::builder()
                .item("pk", AttributeValue::S("health#us-east-1#us-west-2".into()))
                .item("version", AttributeValue::N(version.to_string()))
                .item("state", AttributeValue::S(json.clone()))
                .build()
        });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&refused, &read_back]);
    let store = DynamoDbHealthStore::new(client, "shop-failover-state", "health#us-east-1#us-west-2");
    let saved = store.save(&state("us-east-1"), Some(expected)).await.unwrap();
    assert_eq!((refused.num_calls(), read_back.num_calls()), (1, 1));
    saved
}

#[tokio::test]
async fn a_refused_put_whose_own_first_attempt_took_effect_is_this_runs_write() {
    assert!(refused_then_found(&state("us-east-1"), 8, 7).await);
}

#[tokio::test]
async fn a_refused_put_with_another_runs_state_or_version_is_a_conflict() {
    assert!(
        !refused_then_found(&state("us-west-2"), 8, 7).await,
        "another run's state"
    );
    assert!(!refused_then_found(&state("us-east-1"), 9, 7).await, "a later version");
}
