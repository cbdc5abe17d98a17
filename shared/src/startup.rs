//! What a function does when its configuration is wrong: it still starts, logs the error
//! once in its documented form (`invalid environment variable X="v": expected …`), and
//! answers every invocation with that message as a `NonRetryable` error. Crashing at init
//! instead would reach Lambda as `Runtime.ExitError` with the error in Rust's debug form,
//! and the on-call person would see neither the class nor the variable at fault.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::config::ConfigError;
use crate::error::FailoverError;

/// Serves `error` for every invocation of `function`, until Lambda replaces the instance
/// (after the configuration is fixed and the function updated).
pub async fn serve_configuration_error(function: &str, error: ConfigError) -> Result<(), lambda_runtime::Error> {
    tracing::error!(function, error = %error, "configuration error: every invocation fails until it is fixed");
    let error = &error;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        Err::<Value, FailoverError>(configuration_failure(error))
    }))
    .await
}

/// The error every invocation answers with: class `NonRetryable`, the documented message.
pub fn configuration_failure(error: &ConfigError) -> FailoverError {
    FailoverError::Config(error.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_error_is_non_retryable_and_names_the_variable() {
        let error = ConfigError::invalid("REPLICA_REGION", "us-west-2; reboot", "an AWS region such as us-west-2");
        let diagnostic: lambda_runtime::Diagnostic = configuration_failure(&error).into();
        assert_eq!(diagnostic.error_type, "NonRetryable");
        assert_eq!(
            diagnostic.error_message,
            "configuration error: invalid environment variable REPLICA_REGION=\"us-west-2; reboot\": expected an AWS region such as us-west-2"
        );
    }
}
