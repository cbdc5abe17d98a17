//! The dead-letter bucket's SDK adapter against S3's wire-format answers
//! (aws-smithy-mocks): a missing object is `None` (GetObject answers 404 `NoSuchKey`, per
//! the S3 API reference), listings follow continuation tokens up to the requested count
//! and say whether more remain, and throttling (503 `SlowDown`) is retryable.

use aws_sdk_s3::config::retry::RetryConfig;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use failover_core::ErrorClass;
use stream_replicator::adapters::s3::S3Bucket;
use stream_replicator::ports::DeadLetterStore;

fn http(status: u16, body: &'static str) -> Response {
    Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

const NO_SUCH_KEY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>dead-letter/t/1.json</Key></Error>"#;
const SLOW_DOWN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"#;

fn page(keys: &[&str], next: Option<&str>) -> String {
    let contents: String = keys
        .iter()
        .map(|k| format!("<Contents><Key>{k}</Key><Size>10</Size></Contents>"))
        .collect();
    let truncated = next.is_some();
    let token = next
        .map(|t| format!("<NextContinuationToken>{t}</NextContinuationToken>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>{truncated}</IsTruncated>{contents}{token}</ListBucketResult>"#,
        keys.len()
    )
}

#[tokio::test]
async fn a_missing_object_is_none_and_slow_down_is_retryable() {
    let missing = mock!(aws_sdk_s3::Client::get_object).then_http_response(|| http(404, NO_SUCH_KEY));
    let slow = mock!(aws_sdk_s3::Client::put_object).then_http_response(|| http(503, SLOW_DOWN));
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&missing, &slow], |c| c
        .retry_config(RetryConfig::disabled()));
    let bucket = S3Bucket::new(client, "shop-dead-letter");
    assert_eq!(bucket.get("dead-letter/t/1.json").await.unwrap(), None);
    let err = bucket.put("dead-letter/t/1.json", b"{}".to_vec()).await.unwrap_err();
    assert_eq!(
        (err.code.as_deref(), err.class),
        (Some("SlowDown"), ErrorClass::Retryable)
    );
}

#[tokio::test]
async fn listings_follow_continuation_tokens_and_stop_at_the_requested_count() {
    let first = mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.continuation_token().is_none() && r.start_after() == Some("p/a"))
        .then_http_response(|| http(200, Box::leak(page(&["p/b", "p/c"], Some("t1")).into_boxed_str())));
    let second = mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.continuation_token() == Some("t1"))
        .then_http_response(|| http(200, Box::leak(page(&["p/d", "p/e"], Some("t2")).into_boxed_str())));
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&first, &second], |c| c
        .retry_config(RetryConfig::disabled()));
    let bucket = S3Bucket::new(client, "b");
    let listing = bucket.list("p/", Some("p/a"), 3).await.unwrap();
    assert_eq!(listing.keys, ["p/b", "p/c", "p/d"]);
    assert!(listing.more);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
