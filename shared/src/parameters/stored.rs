//! A parameter as read back: its value and when it was written.

/// One parameter's value and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredParameter {
    /// The value as stored.
    pub value: String,
    /// LastModifiedDate in epoch milliseconds, when Parameter Store reports it.
    pub modified_ms: Option<i64>,
}
