//! Real AWS error responses (wire format, through aws-smithy-mocks) are classed
//! retryable or not, with the service's own error code kept.

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use failover_core::{AwsFailure, ErrorClass};

fn http(status: u16, body: &'static str) -> Response {
    Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// DynamoDB speaks JSON 1.0: the code is in `__type`.
fn dynamodb_error(code: &'static str, status: u16) -> Response {
    let body = match code {
        "ProvisionedThroughputExceededException" => {
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#
        }
        "ResourceNotFoundException" => {
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#
        }
        _ => "{}",
    };
    http(status, body)
}

#[tokio::test]
async fn dynamodb_throttling_is_retryable_and_missing_table_is_not() {
    let throttled = mock!(aws_sdk_dynamodb::Client::get_item)
        .then_http_response(|| dynamodb_error("ProvisionedThroughputExceededException", 400));
    let missing = mock!(aws_sdk_dynamodb::Client::get_item)
        .then_http_response(|| dynamodb_error("ResourceNotFoundException", 400));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&throttled, &missing], |c| c
        .retry_config(RetryConfig::disabled()));

    let err = client.get_item().table_name("t").send().await.unwrap_err();
    let failure = AwsFailure::from_sdk("GetItem", &err);
    assert_eq!(failure.class, ErrorClass::Retryable);
    assert!(
        failure.has_code("ProvisionedThroughputExceededException"),
        "{failure:?}"
    );

    let err = client.get_item().table_name("t").send().await.unwrap_err();
    let failure = AwsFailure::from_sdk("GetItem", &err);
    assert_eq!(failure.class, ErrorClass::NonRetryable);
    assert_eq!(
        failure.to_string(),
        "GetItem failed (ResourceNotFoundException): Requested resource not found"
    );
}

#[tokio::test]
async fn rds_not_a_read_replica_is_permanent() {
    // RDS speaks the AWS query protocol: an XML ErrorResponse.
    let rule = mock!(aws_sdk_rds::Client::promote_read_replica).then_http_response(|| {
        http(
            400,
            r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>InvalidDBInstanceState</Code><Message>DB Instance is not a read replica.</Message></Error><RequestId>5f1c8e7a-0000-4000-8000-000000000000</RequestId></ErrorResponse>"#,
        )
    });
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled()));
    let err = client
        .promote_read_replica()
        .db_instance_identifier("shop-db-replica")
        .send()
        .await
        .unwrap_err();
    let failure = AwsFailure::from_sdk("PromoteReadReplica", &err);
    assert_eq!(failure.class, ErrorClass::NonRetryable);
    assert!(failure.has_code("InvalidDBInstanceState"), "{failure:?}");
    assert_eq!(failure.message, "DB Instance is not a read replica.");
}

#[tokio::test]
async fn http_503_without_a_code_is_retryable() {
    let rule = mock!(aws_sdk_dynamodb::Client::get_item).then_http_response(|| http(503, ""));
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let err = client.get_item().table_name("t").send().await.unwrap_err();
    assert_eq!(AwsFailure::from_sdk("GetItem", &err).class, ErrorClass::Retryable);
}
