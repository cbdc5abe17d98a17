//! [`ReplicationMappings`] over the Lambda API of one region: the mappings, and Invoke for
//! the replicator's drain check.

use crate::domain::{MappingView, StreamDrain};
use crate::ports::ReplicationMappings;
use failover_core::error::AwsFailure;

/// The event source mappings in the client's region.
#[derive(Debug, Clone)]
pub struct LambdaMappings {
    client: aws_sdk_lambda::Client,
}

impl LambdaMappings {
    /// Wraps a client (its region is the mappings' region).
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }
}

impl ReplicationMappings for LambdaMappings {
    async fn drain_check(&self, function: &str) -> Result<StreamDrain, AwsFailure> {
        let output = self
            .client
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(br#"{"drainCheck": {}}"#.to_vec()))
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("Invoke", &err))?;
        let payload = output.payload().map(|p| p.as_ref()).unwrap_or_default();
        let unusable = |message: String| AwsFailure {
            operation: "Invoke",
            code: output.function_error().map(str::to_owned),
            message,
            class: failover_core::ErrorClass::Retryable,
        };
        if output.function_error().is_some() {
            return Err(unusable(format!(
                "{function}'s drain check failed: {}",
                String::from_utf8_lossy(payload)
            )));
        }
        serde_json::from_slice(payload).map_err(|e| {
            unusable(format!(
                "{function} answered the drain check with something else ({e}): {}",
                String::from_utf8_lossy(payload)
            ))
        })
    }

    async fn list(&self, function: &str) -> Result<Vec<MappingView>, AwsFailure> {
        let mut pages = self
            .client
            .list_event_source_mappings()
            .function_name(function)
            .into_paginator()
            .send();
        let mut mappings = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(Vec::new())
                }
                Err(err) => return Err(AwsFailure::from_sdk("ListEventSourceMappings", &err)),
            };
            mappings.extend(page.event_source_mappings().iter().filter_map(|m| {
                Some(MappingView {
                    uuid: m.uuid()?.to_owned(),
                    state: m.state().unwrap_or("Unknown").to_owned(),
                })
            }));
        }
        Ok(mappings)
    }

    async fn disable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("UpdateEventSourceMapping", &err))
    }

    async fn enable(&self, uuid: &str) -> Result<(), AwsFailure> {
        self.client
            .update_event_source_mapping()
            .uuid(uuid)
            .enabled(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("UpdateEventSourceMapping", &err))
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::{mock, mock_client};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn invoked(body: &'static str, function_error: Option<&'static str>) -> Response {
        let mut response = Response::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body));
        if let Some(kind) = function_error {
            response.headers_mut().insert("X-Amz-Function-Error", kind);
        }
        response
    }

    /// Invoke answers 200 with the function's payload; a function that failed answers 200
    /// too, with `X-Amz-Function-Error` (Lambda API reference, Invoke: "FunctionError").
    #[tokio::test]
    async fn the_drain_check_is_the_functions_answer_and_a_failed_function_is_not_drained() {
        let answered = mock!(aws_sdk_lambda::Client::invoke).then_http_response(|| {
            invoked(
                r#"{"drained":false,"direction":"replicate","streamArn":"arn","shards":1,"recordsRead":9,"keys":4,"keysInTarget":2,"keysPending":2,"keysNothingToWrite":0,"keysUnwritable":0,"pendingKeys":[],"oldestPendingAgeSeconds":3.5,"conflictsLogged":1,"truncated":false}"#,
                None,
            )
        });
        let failed = mock!(aws_sdk_lambda::Client::invoke).then_http_response(|| {
            invoked(
                r#"{"errorType":"Retryable","errorMessage":"GetRecords failed"}"#,
                Some("Unhandled"),
            )
        });
        let mappings = LambdaMappings::new(mock_client!(aws_sdk_lambda, [&answered, &failed]));
        let drain = mappings.drain_check("shop-reverse-replicator").await.unwrap();
        assert_eq!(
            (drain.drained, drain.keys_pending, drain.conflicts_logged),
            (false, 2, 1)
        );
        assert_eq!(drain.oldest_pending_age_seconds, Some(3.5));
        let failure = mappings.drain_check("shop-reverse-replicator").await.unwrap_err();
        assert_eq!(failure.class, failover_core::ErrorClass::Retryable);
        assert!(failure.message.contains("GetRecords failed"), "{failure}");
    }
}
