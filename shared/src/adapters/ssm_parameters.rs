//! [`ParameterWriter`] over SSM Parameter Store.

use aws_sdk_ssm::types::ParameterType;

use crate::error::AwsFailure;
use crate::ports::ParameterWriter;

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
