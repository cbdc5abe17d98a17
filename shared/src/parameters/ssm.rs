//! [`ParameterWriter`] and [`ParameterReader`] over SSM Parameter Store, and the read of one
//! parameter with its modification time.

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;

use super::history::{held_since, HeldValue, ParameterVersion};
use super::ports::{ParameterHistoryReader, ParameterReader, ParameterWriter, TimedParameterReader};
use super::stored::StoredParameter;
use crate::error::AwsFailure;

/// Parameter Store in the client's region.
#[derive(Debug, Clone)]
pub struct SsmParameters {
    client: aws_sdk_ssm::Client,
}

impl SsmParameters {
    /// Wraps a client.
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self { client }
    }
}

impl ParameterWriter for SsmParameters {
    async fn put(&self, name: &str, value: &str) -> Result<(), AwsFailure> {
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| AwsFailure::from_sdk("PutParameter", &err))
    }
}

/// GetParameters accepts at most 10 names per call.
const MAX_NAMES_PER_CALL: usize = 10;

impl ParameterReader for SsmParameters {
    async fn get(&self, names: &[String]) -> Result<HashMap<String, String>, AwsFailure> {
        let mut values = HashMap::new();
        for chunk in names.chunks(MAX_NAMES_PER_CALL) {
            let output = self
                .client
                .get_parameters()
                .set_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|err| AwsFailure::from_sdk("GetParameters", &err))?;
            for parameter in output.parameters() {
                if let (Some(name), Some(value)) = (parameter.name(), parameter.value()) {
                    values.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        Ok(values)
    }
}

impl TimedParameterReader for SsmParameters {
    async fn get_with_modified_time(&self, name: &str) -> Result<Option<StoredParameter>, AwsFailure> {
        let output = self
            .client
            .get_parameters()
            .names(name)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetParameters", &err))?;
        Ok(output
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .map(|p| StoredParameter {
                value: p.value().unwrap_or_default().to_owned(),
                modified_ms: p.last_modified_date().and_then(|t| t.to_millis().ok()),
            }))
    }
}

/// GetParameterHistory pages: Parameter Store keeps at most 100 versions, 50 per page.
const HISTORY_PAGES: usize = 4;

impl ParameterHistoryReader for SsmParameters {
    async fn held_since(&self, name: &str) -> Result<Option<HeldValue>, AwsFailure> {
        let mut versions = Vec::new();
        let mut token = None;
        for _ in 0..HISTORY_PAGES {
            let output = match self
                .client
                .get_parameter_history()
                .name(name)
                .max_results(50)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(output) => output,
                Err(err) => {
                    let failure = AwsFailure::from_sdk("GetParameterHistory", &err);
                    if failure.has_code("ParameterNotFound") {
                        return Ok(None);
                    }
                    return Err(failure);
                }
            };
            versions.extend(output.parameters().iter().map(|p| ParameterVersion {
                value: p.value().unwrap_or_default().to_owned(),
                modified_ms: p.last_modified_date().and_then(|t| t.to_millis().ok()),
            }));
            match output.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => break,
            }
        }
        Ok(held_since(&versions))
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::{mock, mock_client};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn get_parameters(body: &'static str) -> Response {
        Response::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body))
    }

    #[tokio::test]
    async fn a_parameter_comes_with_its_modification_time() {
        // GetParameters as Parameter Store answers it: LastModifiedDate in epoch seconds.
        let found = mock!(aws_sdk_ssm::Client::get_parameters).then_http_response(|| {
            get_parameters(
                r#"{"InvalidParameters":[],"Parameters":[{"ARN":"arn:aws:ssm:us-west-2:123456789012:parameter/shop/failover/failback-approved","DataType":"text","LastModifiedDate":1.7639e9,"Name":"/shop/failover/failback-approved","Type":"String","Value":"true","Version":3}]}"#,
            )
        });
        let missing = mock!(aws_sdk_ssm::Client::get_parameters).then_http_response(|| {
            get_parameters(r#"{"InvalidParameters":["/shop/failover/failback-approved"],"Parameters":[]}"#)
        });
        let client = mock_client!(aws_sdk_ssm, aws_smithy_mocks::RuleMode::Sequential, [&found, &missing]);
        let parameters = SsmParameters::new(client);
        let name = "/shop/failover/failback-approved";
        assert_eq!(
            parameters.get_with_modified_time(name).await.unwrap(),
            Some(StoredParameter {
                value: "true".into(),
                modified_ms: Some(1_763_900_000_000),
            })
        );
        assert_eq!(parameters.get_with_modified_time(name).await.unwrap(), None);
    }
}
