//! The command line, parsed without side effects (so every usage error is testable).

use crate::error::CtlError;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Active region, last switch, replica and lag, fence and replication, running plans,
    /// pending approvals.
    Status,
    /// Answer an approval request with "approved".
    Approve(TaskTarget),
    /// Answer an approval request with a rejection.
    Reject {
        /// Which request.
        target: TaskTarget,
        /// Why (the execution records it).
        reason: String,
    },
    /// Run the region-switch plan's dry run and print what it would do.
    FailoverDryRun,
    /// Start the failback plan and print its check (and, when ready, its approval request).
    Failback,
    /// Past executions of both plans, newest first.
    History {
        /// How many per plan.
        limit: i32,
    },
}

/// An approval request: by its task token, or by the execution waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskTarget {
    /// The token from the notification.
    Token(String),
    /// The failback execution's ARN (its pending request's token is read from its history).
    Execution(String),
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The command.
    pub command: Command,
    /// Print JSON instead of text.
    pub json: bool,
    /// The region of the plans, the state table and the parameters (the secondary region);
    /// `None`: `AWS_REGION`.
    pub region: Option<String>,
    /// The stacks' NamePrefix: `<prefix>-state`, `<prefix>-region-switch`, `<prefix>-failback`.
    pub name_prefix: String,
    /// The state table, when not `<prefix>-state`.
    pub state_table: Option<String>,
    /// The stacks' ParameterPrefix.
    pub parameter_prefix: String,
    /// The region-switch plan's ARN, when not found by name.
    pub switch_plan: Option<String>,
    /// The failback plan's ARN, when not found by name.
    pub failback_plan: Option<String>,
    /// The replica to report on, when not the one the state table names.
    pub replica: Option<String>,
    /// How long `failover --dry-run` and `failback` wait for the plan's answer.
    pub wait_seconds: u64,
    /// The primary region, whose app servers `status` reports too.
    pub primary_region: Option<String>,
    /// The repoint document, when not `<prefix>-repoint-app`.
    pub document: Option<String>,
}

/// `failoverctl --help`.
pub const USAGE: &str = "\
failoverctl: the on-call person's view of and hand on the shop's failover

usage: failoverctl <command> [options]

commands:
  status                      active region, last switch, replica and lag, fence and
                              replication, running plans, pending approvals, and each
                              app server's latest repoint and whether it converged
  approve --token T           approve a pending failback (or --execution ARN)
  reject --token T [--reason R]
                              reject it (or --execution ARN); nothing is changed
  failover --dry-run          what a region switch would do now (changes nothing)
  failback                    start the failback plan; prints its check and, when ready,
                              the approval request
  history [--limit N]         past executions of both plans with their outcome

options:
  --region R                  the secondary region (plans, state table, parameters);
                              default AWS_REGION
  --name-prefix P             the stacks' NamePrefix (default shop-failover)
  --parameter-prefix P        the stacks' ParameterPrefix (default /shop/failover)
  --state-table T             default <name-prefix>-state
  --switch-plan ARN           default the state machine <name-prefix>-region-switch
  --failback-plan ARN         default the state machine <name-prefix>-failback
  --replica ID                the replica to report on (default: from the state table)
  --primary-region R          status also reports the primary region's app servers
  --document D                the repoint document (default <name-prefix>-repoint-app)
  --wait-seconds N            how long failover --dry-run and failback wait (default 120)
  --json                      JSON on stdout (errors as JSON on stderr)

exit codes: 0 done; 1 an AWS call failed; 2 usage error; 3 not found (table, plan,
execution, pending approval); 4 the plan refused or failed (the output says why)";

/// Parses `argv` (without the program name).
pub fn parse(argv: &[String]) -> Result<Args, CtlError> {
    let mut words = argv.iter().map(String::as_str).peekable();
    let mut positional: Vec<&str> = Vec::new();
    let mut args = Args {
        command: Command::Status,
        json: false,
        region: None,
        name_prefix: "shop-failover".into(),
        state_table: None,
        parameter_prefix: "/shop/failover".into(),
        switch_plan: None,
        failback_plan: None,
        replica: None,
        wait_seconds: 120,
        primary_region: None,
        document: None,
    };
    let (mut token, mut execution, mut reason, mut dry_run, mut limit) = (None, None, None, false, 10);
    while let Some(word) = words.next() {
        let mut value = |name: &str| -> Result<String, CtlError> {
            match words.next() {
                Some(v) if !v.starts_with("--") && !v.is_empty() => Ok(v.to_owned()),
                _ => Err(CtlError::Usage(format!("{name} needs a value"))),
            }
        };
        match word {
            "--help" | "-h" => return Err(CtlError::Help),
            "--json" => args.json = true,
            "--dry-run" => dry_run = true,
            "--region" => args.region = Some(checked(value(word)?, word, is_region)?),
            "--primary-region" => args.primary_region = Some(checked(value(word)?, word, is_region)?),
            "--document" => args.document = Some(checked(value(word)?, word, is_name)?),
            "--name-prefix" => args.name_prefix = checked(value(word)?, word, is_name)?,
            "--parameter-prefix" => args.parameter_prefix = checked(value(word)?, word, is_parameter_path)?,
            "--state-table" => args.state_table = Some(checked(value(word)?, word, is_name)?),
            "--switch-plan" => args.switch_plan = Some(checked(value(word)?, word, is_arn)?),
            "--failback-plan" => args.failback_plan = Some(checked(value(word)?, word, is_arn)?),
            "--replica" => args.replica = Some(checked(value(word)?, word, is_name)?),
            "--token" => token = Some(checked(value(word)?, word, is_token)?),
            "--execution" => execution = Some(checked(value(word)?, word, is_arn)?),
            "--reason" => reason = Some(value(word)?),
            "--wait-seconds" => args.wait_seconds = number(&value(word)?, word, 1..=3600)?,
            "--limit" => limit = number(&value(word)?, word, 1..=100)? as i32,
            flag if flag.starts_with("--") => return Err(CtlError::Usage(format!("unknown option {flag}"))),
            word => positional.push(word),
        }
    }
    let target = || match (&token, &execution) {
        (Some(t), None) => Ok(TaskTarget::Token(t.clone())),
        (None, Some(e)) => Ok(TaskTarget::Execution(e.clone())),
        (Some(_), Some(_)) => Err(CtlError::Usage("give --token or --execution, not both".into())),
        (None, None) => Err(CtlError::Usage(
            "which request? --token <the token from the notification> or --execution <ARN>".into(),
        )),
    };
    args.command = match positional.as_slice() {
        [] => {
            return Err(CtlError::Usage(
                "no command: status, approve, reject, failover, failback or history".into(),
            ))
        }
        ["status"] => Command::Status,
        ["approve"] => Command::Approve(target()?),
        ["reject"] => Command::Reject {
            target: target()?,
            reason: reason.unwrap_or_else(|| "rejected with failoverctl".into()),
        },
        ["failover"] if dry_run => Command::FailoverDryRun,
        ["failover"] => {
            return Err(CtlError::Usage(
                "failover needs --dry-run: a real switch starts from the failover alarm, or by hand with \
                 infra/statemachine/manual-start.json (infra/README.md)"
                    .into(),
            ))
        }
        ["failback"] => Command::Failback,
        ["history"] => Command::History { limit },
        [other, ..] if positional.len() == 1 => return Err(CtlError::Usage(format!("unknown command {other:?}"))),
        _ => return Err(CtlError::Usage(format!("one command, not {positional:?}"))),
    };
    Ok(args)
}

fn checked(value: String, option: &str, valid: fn(&str) -> bool) -> Result<String, CtlError> {
    if valid(&value) {
        Ok(value)
    } else {
        Err(CtlError::Usage(format!("{option} {value:?} is not valid")))
    }
}

fn number(raw: &str, option: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, CtlError> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| CtlError::Usage(format!("{option} {raw:?} is not a number in {range:?}")))
}

fn is_region(v: &str) -> bool {
    failover_core::Region::new(v).is_ok()
}

fn is_name(v: &str) -> bool {
    (1..=255).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_parameter_path(v: &str) -> bool {
    v.starts_with('/') && v.len() <= 1011 && v[1..].split('/').all(is_name)
}

fn is_arn(v: &str) -> bool {
    v.starts_with("arn:") && v.len() <= 2048 && v.bytes().all(|b| b.is_ascii_graphic())
}

fn is_token(v: &str) -> bool {
    (1..=1024).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Args, CtlError> {
        parse(&words.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(parse_words("status --json").unwrap().command, Command::Status);
        assert!(parse_words("status --json").unwrap().json);
        assert_eq!(
            parse_words("approve --token AAAA").unwrap().command,
            Command::Approve(TaskTarget::Token("AAAA".into()))
        );
        assert_eq!(
            parse_words("reject --execution arn:aws:states:us-west-2:1:execution:m:e --reason sale")
                .unwrap()
                .command,
            Command::Reject {
                target: TaskTarget::Execution("arn:aws:states:us-west-2:1:execution:m:e".into()),
                reason: "sale".into()
            }
        );
        assert_eq!(
            parse_words("failover --dry-run").unwrap().command,
            Command::FailoverDryRun
        );
        assert_eq!(parse_words("failback").unwrap().command, Command::Failback);
        assert_eq!(
            parse_words("history --limit 5").unwrap().command,
            Command::History { limit: 5 }
        );
        let args = parse_words("status --region us-west-2 --name-prefix shop --parameter-prefix /a/b").unwrap();
        assert_eq!(args.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            (args.name_prefix.as_str(), args.parameter_prefix.as_str()),
            ("shop", "/a/b")
        );
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (words, wanted) in [
            ("", "no command"),
            ("launch", "unknown command \"launch\""),
            ("status --colour", "unknown option --colour"),
            ("status --region", "--region needs a value"),
            ("status --region mars-1", "--region \"mars-1\" is not valid"),
            ("status --state-table a;b", "--state-table"),
            ("approve", "which request?"),
            ("approve --token a --execution arn:x", "not both"),
            ("failover", "failover needs --dry-run"),
            ("history --limit 0", "--limit"),
            ("status history", "one command"),
        ] {
            let err = parse_words(words).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{words}");
            assert!(err.to_string().contains(wanted), "{words}: {err}");
        }
    }
}
