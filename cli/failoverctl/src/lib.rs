//! failoverctl: the on-call person's command line. It reads the same state table,
//! parameters and plan executions as the functions, through the SDK, and answers a plan's
//! approval request. Each command is one file; `args` parses without side effects.

mod answer;
mod approval;
pub mod args;
mod control;
mod error;
mod executions;
mod history;
mod servers;
mod start;
mod status;

pub use answer::Answer;
pub use error::CtlError;

use args::{Args, Command};

/// Runs one command.
pub async fn run(args: Args) -> Result<Answer, CtlError> {
    let command = args.command.clone();
    let control = control::Control::connect(args).await?;
    match command {
        Command::Status => status::status(&control).await,
        Command::Approve(target) => approval::answer(&control, &target, None).await,
        Command::Reject { target, reason } => approval::answer(&control, &target, Some(&reason)).await,
        Command::FailoverDryRun => start::failover_dry_run(&control).await,
        Command::Failback => start::failback(&control).await,
        Command::History { limit } => history::history(&control, limit).await,
    }
}
