//! What one instance's command invocation came to.

use serde::{Deserialize, Serialize};

/// One poll of GetCommandInvocation, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationStatus {
    /// `InvocationDoesNotExist`: normal right after SendCommand.
    NotYetVisible,
    /// Pending, InProgress, Delayed, Cancelling.
    Running(String),
    /// A terminal outcome.
    Done(InstanceResult),
}

/// The final result for one instance, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum InstanceResult {
    /// The script ran and exited 0.
    Success {
        /// The script's last output line (what changed, what restarted).
        summary: String,
    },
    /// The script failed.
    Failed {
        /// The end of its standard error.
        stderr: String,
    },
    /// Delivery or execution timed out, or no terminal status came before the deadline.
    TimedOut {
        /// Which timeout.
        detail: String,
    },
    /// SSM could not deliver the command (node gone, wrong platform, terminated).
    Undeliverable {
        /// SSM's status details.
        detail: String,
    },
    /// Someone cancelled the command.
    Cancelled,
    /// SendCommand itself failed, so the instance never got the command.
    NotSent {
        /// The error.
        error: String,
    },
    /// Not commanded.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl InstanceResult {
    /// True only for [`InstanceResult::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success { .. })
    }
}

/// Characters kept from stderr and stdout.
const EXCERPT_CHARS: usize = 500;

fn tail(text: &str, chars: usize) -> String {
    let count = text.chars().count();
    text.chars()
        .skip(count.saturating_sub(chars))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Maps GetCommandInvocation's `Status` and `StatusDetails` to a result, `None` while running.
pub fn classify_invocation(status: &str, details: &str, stdout: &str, stderr: &str) -> Option<InstanceResult> {
    let result = match (status, details) {
        (_, "Undeliverable" | "Terminated" | "InvalidPlatform") => InstanceResult::Undeliverable {
            detail: details.to_owned(),
        },
        (_, "DeliveryTimedOut" | "ExecutionTimedOut") => InstanceResult::TimedOut {
            detail: details.to_owned(),
        },
        ("Success", _) => InstanceResult::Success {
            summary: tail(stdout.lines().last().unwrap_or_default(), EXCERPT_CHARS),
        },
        ("TimedOut", _) => InstanceResult::TimedOut {
            detail: if details.is_empty() {
                "TimedOut".into()
            } else {
                details.to_owned()
            },
        },
        ("Cancelled", _) => InstanceResult::Cancelled,
        ("Failed", _) => InstanceResult::Failed {
            stderr: tail(stderr, EXCERPT_CHARS),
        },
        _ => return None,
    };
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_states_are_not_terminal() {
        for status in ["Pending", "InProgress", "Delayed", "Cancelling"] {
            assert_eq!(classify_invocation(status, status, "", ""), None);
        }
    }

    #[test]
    fn terminal_states_map_to_results() {
        assert_eq!(
            classify_invocation("Success", "Success", "x\nrepoint: changed=none\n", ""),
            Some(InstanceResult::Success {
                summary: "repoint: changed=none".into()
            })
        );
        assert_eq!(
            classify_invocation("Failed", "Failed", "", "repoint: service nginx is not active\n"),
            Some(InstanceResult::Failed {
                stderr: "repoint: service nginx is not active".into()
            })
        );
        assert_eq!(
            classify_invocation("TimedOut", "DeliveryTimedOut", "", ""),
            Some(InstanceResult::TimedOut {
                detail: "DeliveryTimedOut".into()
            })
        );
        assert_eq!(
            classify_invocation("Failed", "ExecutionTimedOut", "", ""),
            Some(InstanceResult::TimedOut {
                detail: "ExecutionTimedOut".into()
            })
        );
        assert_eq!(
            classify_invocation("Failed", "Undeliverable", "", ""),
            Some(InstanceResult::Undeliverable {
                detail: "Undeliverable".into()
            })
        );
        assert_eq!(
            classify_invocation("Cancelled", "Canceled", "", ""),
            Some(InstanceResult::Cancelled)
        );
    }

    #[test]
    fn stderr_excerpt_keeps_the_end() {
        let long = format!("{}END", "x".repeat(2_000));
        match classify_invocation("Failed", "Failed", "", &long) {
            Some(InstanceResult::Failed { stderr }) => {
                assert_eq!(stderr.chars().count(), 500);
                assert!(stderr.ends_with("END"));
            }
            other => panic!("{other:?}"),
        }
    }
}
