//! The SDK configuration of one region, from which each function builds the clients it
//! calls, once at init, reused by every invocation.
//!
//! The endpoint is resolved by aws-config from the standard `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` variables, so pointing a function at a local emulator
//! needs no code path of its own.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::region::Region;

/// Timeouts applied to every client: a dead region must fail fast, not eat the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// TCP/TLS connect timeout.
    pub connect: Duration,
    /// Upper bound of one HTTP attempt.
    pub attempt: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
        }
    }
}

/// Loads the shared SDK configuration (credentials, endpoint, retry) for one region.
pub async fn sdk_config(region: &Region, timeouts: ClientTimeouts) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.as_str().to_owned()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .build(),
        )
        .load()
        .await
}
