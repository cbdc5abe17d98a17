//! Logging set-up shared by every function.

/// Installs the Lambda runtime's default `tracing` subscriber, which honours
/// `AWS_LAMBDA_LOG_FORMAT` (text or JSON) and `AWS_LAMBDA_LOG_LEVEL`. Call once in `main`.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}
