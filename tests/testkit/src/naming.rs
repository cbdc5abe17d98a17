//! Unique resource names, so tests sharing one emulator never see each other's resources.

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `prefix-<pid>-<n>`: valid as a DynamoDB table name, RDS identifier, tag value or
/// parameter path segment (lowercase letters, digits, single hyphens).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
