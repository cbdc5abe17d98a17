//! [`ParameterWriter`] and [`ParameterReader`] over SSM Parameter Store.

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;

use crate::error::AwsFailure;
use crate::ports::{ParameterReader, ParameterWriter};

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
