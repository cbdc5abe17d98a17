//! failoverctl's errors, each with its documented exit code.

use std::fmt;

use failover_core::error::AwsFailure;
use serde_json::json;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    /// `--help`: the usage is printed (on stdout, exit 0).
    Help,
    /// The command line is wrong.
    Usage(String),
    /// An AWS call failed.
    Aws(String),
    /// The table, plan, execution or approval request does not exist.
    NotFound(String),
    /// The plan refused or failed.
    Refused(String),
}

impl CtlError {
    /// The exit code (README: "failoverctl").
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Help => 0,
            Self::Usage(_) => 2,
            Self::Aws(_) => 1,
            Self::NotFound(_) => 3,
            Self::Refused(_) => 4,
        }
    }

    /// The error as the person (or a script with `--json`) reads it.
    pub fn render(&self, json: bool) -> String {
        if matches!(self, Self::Help) {
            return crate::args::USAGE.to_owned();
        }
        let kind = match self {
            Self::Help | Self::Usage(_) => "usage",
            Self::Aws(_) => "aws",
            Self::NotFound(_) => "not-found",
            Self::Refused(_) => "refused",
        };
        if json {
            json!({"error": kind, "message": self.to_string(), "exitCode": self.exit_code()}).to_string()
        } else if matches!(self, Self::Usage(_)) {
            format!("failoverctl: {self}\n(failoverctl --help for usage)")
        } else {
            format!("failoverctl: {self}")
        }
    }

    /// An AWS failure, named by what was being read; a missing resource is `NotFound`.
    pub fn aws(what: &str, failure: AwsFailure) -> Self {
        let missing = [
            "ResourceNotFoundException",
            "StateMachineDoesNotExist",
            "ExecutionDoesNotExist",
            "ParameterNotFound",
        ];
        if missing.iter().any(|code| failure.has_code(code)) {
            Self::NotFound(format!("{what}: {failure}"))
        } else {
            Self::Aws(format!("{what}: {failure}"))
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help => f.write_str("usage"),
            Self::Usage(m) | Self::Aws(m) | Self::NotFound(m) | Self::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CtlError {}
