//! What an invocation asks for: a whole failover (an alarm delivered straight to the
//! function), one step of the region-switch plan, or the scheduled sweep of fences.

use serde_json::Value;

/// The steps the region-switch plan (`infra/statemachine/region-switch.asl.json`) calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStep {
    /// Policy, lock, guards and PromoteReadReplica, without waiting.
    Promote,
    /// One look at the promoted replica: writable yet? (The plan's Wait loop repeats it.)
    CheckWritable,
    /// Fence the old primary database and pause the forward replicator.
    Fence,
    /// Publish the endpoint and the active region.
    Publish,
}

impl PlanStep {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "promote" => Some(Self::Promote),
            "checkWritable" => Some(Self::CheckWritable),
            "fence" => Some(Self::Fence),
            "publish" => Some(Self::Publish),
            _ => None,
        }
    }
}

/// The steps of the failback plan (`infra/statemachine/failback.asl.json`), in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailbackStep {
    /// May failback start? What it would do (for the approval message).
    Check,
    /// Record the approved failback and create the replica in the original region.
    Begin,
    /// One look: does the new replica replicate, close enough?
    CheckReplica,
    /// One look after the write freeze: has it applied everything (a lag of 0 since)?
    CheckDrained,
    /// Promote the original-region replica.
    Promote,
    /// One look: does the new primary take writes?
    CheckWritable,
    /// Publish its endpoint and the original region; swap the stream directions.
    Publish,
    /// One look: rename the old writer (freeing its name) and stop it.
    Retire,
    /// Create the replica of the new primary in the failover region, then look at it.
    Reprotect,
    /// Give up a failback that stopped before the switch, so a later one can take it over.
    Abandon,
}

impl FailbackStep {
    const NAMES: [(&'static str, Self); 10] = [
        ("check", Self::Check),
        ("begin", Self::Begin),
        ("checkReplica", Self::CheckReplica),
        ("checkDrained", Self::CheckDrained),
        ("promote", Self::Promote),
        ("checkWritable", Self::CheckWritable),
        ("publish", Self::Publish),
        ("retire", Self::Retire),
        ("reprotect", Self::Reprotect),
        ("abandon", Self::Abandon),
    ];

    fn parse(raw: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(name, _)| *name == raw).map(|(_, step)| *step)
    }

    /// The step's name in the plan and the report.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, step)| *step == self)
            .map_or("?", |(name, _)| name)
    }
}

/// One invocation's request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An alarm event: every stage in this invocation (resumable by a retry).
    Failover(Value),
    /// A plan step for the failover of `alarm`.
    Step {
        /// Which step.
        step: PlanStep,
        /// The alarm event that started the plan (it names the failover).
        alarm: Value,
        /// Check everything, change nothing.
        dry_run: bool,
        /// The plan execution (`$$.Execution.Id`), when the plan passes it: the owner of the
        /// failover lock, so that the next step, or a retry of this one, resumes a lease an
        /// earlier step of the same execution could not give back.
        execution_arn: Option<String>,
    },
    /// EventBridge's schedule: complete pending fences and keep the done ones fenced.
    SweepFences,
    /// A step of the failback plan.
    Failback {
        /// Which step.
        step: FailbackStep,
        /// The failback plan execution (`$$.Execution.Id`): the owner of the failback.
        execution_arn: String,
    },
    /// The failback plan's report, from the execution's history and state.
    FailbackReport {
        /// The failback execution (`$$.Execution.Id`).
        execution_arn: String,
        /// The execution's state (what the steps returned).
        plan: Value,
    },
    /// The plan's last step: its report, from the execution's history and state.
    Report {
        /// The plan execution (`$$.Execution.Id`).
        execution_arn: String,
        /// The execution's state (what the steps returned).
        plan: Value,
    },
}

impl Request {
    /// The plan execution a step belongs to, which holds the failover lock for it.
    pub fn plan_execution(&self) -> Option<&str> {
        match self {
            Self::Step { execution_arn, .. } => execution_arn.as_deref(),
            _ => None,
        }
    }

    /// Reads the payload; anything else is an alarm event (whose parser names what is wrong).
    pub fn from_value(payload: Value) -> Result<Self, String> {
        if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Ok(Self::SweepFences);
        }
        if let Some(raw_step) = payload.get("failbackStep") {
            if raw_step == "report" {
                return match Self::report(&payload, "failbackStep")? {
                    Self::Report { execution_arn, plan } => Ok(Self::FailbackReport { execution_arn, plan }),
                    other => Ok(other),
                };
            }
            return Self::failback(raw_step, &payload);
        }
        let Some(raw_step) = payload.get("planStep") else {
            return Ok(Self::Failover(payload));
        };
        let name = raw_step.as_str().unwrap_or_default();
        if name == "report" {
            return Self::report(&payload, "planStep");
        }
        let step = PlanStep::parse(name).ok_or_else(|| {
            format!(
                "planStep {raw_step} is not one of \"promote\", \"checkWritable\", \"fence\", \"publish\", \"report\""
            )
        })?;
        let alarm = payload
            .get("alarm")
            .cloned()
            .ok_or_else(|| format!("planStep {name:?} needs \"alarm\": the alarm event that started the plan"))?;
        let dry_run = match payload.get("dryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("dryRun must be true or false, not {other}")),
        };
        let execution_arn = match payload.get("executionArn") {
            None | Some(Value::Null) => None,
            Some(Value::String(arn)) if arn.starts_with("arn:") => Some(arn.clone()),
            Some(other) => return Err(format!("executionArn must be the plan execution's ARN, not {other}")),
        };
        Ok(Self::Step {
            step,
            alarm,
            dry_run,
            execution_arn,
        })
    }

    fn failback(raw_step: &Value, payload: &Value) -> Result<Self, String> {
        let step = raw_step.as_str().and_then(FailbackStep::parse).ok_or_else(|| {
            let names: Vec<&str> = FailbackStep::NAMES.iter().map(|(name, _)| *name).collect();
            format!("failbackStep {raw_step} is not one of {names:?}")
        })?;
        let execution_arn = payload
            .get("executionArn")
            .and_then(Value::as_str)
            .filter(|arn| arn.starts_with("arn:") && arn.len() <= 2048)
            .ok_or("a failbackStep needs \"executionArn\": the failback execution's ARN ($$.Execution.Id)")?;
        Ok(Self::Failback {
            step,
            execution_arn: execution_arn.to_owned(),
        })
    }

    fn report(payload: &Value, key: &str) -> Result<Self, String> {
        let execution_arn = payload
            .get("executionArn")
            .and_then(Value::as_str)
            .filter(|arn| arn.starts_with("arn:"))
            .ok_or_else(|| {
                format!("{key} \"report\" needs \"executionArn\": the plan execution's ARN ($$.Execution.Id)")
            })?;
        let plan = payload
            .get("plan")
            .filter(|plan| plan.is_object())
            .cloned()
            .ok_or_else(|| format!("{key} \"report\" needs \"plan\": the execution's state object ($)"))?;
        Ok(Self::Report {
            execution_arn: execution_arn.to_owned(),
            plan,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plan_steps_schedules_and_alarms_are_told_apart() {
        let alarm = json!({"detail-type": "CloudWatch Alarm State Change"});
        assert_eq!(Request::from_value(alarm.clone()), Ok(Request::Failover(alarm.clone())));
        assert_eq!(
            Request::from_value(json!({"detail-type": "Scheduled Event", "source": "aws.events"})),
            Ok(Request::SweepFences)
        );
        assert_eq!(
            Request::from_value(json!({"planStep": "fence", "alarm": alarm, "dryRun": true})),
            Ok(Request::Step {
                step: PlanStep::Fence,
                alarm: alarm.clone(),
                dry_run: true,
                execution_arn: None
            })
        );
        assert_eq!(
            Request::from_value(json!({"planStep": "promote", "alarm": alarm, "executionArn": "arn:aws:states:x"})),
            Ok(Request::Step {
                step: PlanStep::Promote,
                alarm: alarm.clone(),
                dry_run: false,
                execution_arn: Some("arn:aws:states:x".into())
            })
        );
        let err = Request::from_value(json!({"planStep": "promote", "alarm": alarm, "executionArn": 7})).unwrap_err();
        assert!(err.contains("executionArn"), "{err}");
    }

    #[test]
    fn failback_steps_are_parsed_and_bad_ones_named() {
        assert_eq!(
            Request::from_value(json!({"failbackStep": "checkDrained", "executionArn": "arn:aws:states:x"})),
            Ok(Request::Failback {
                step: FailbackStep::CheckDrained,
                execution_arn: "arn:aws:states:x".into()
            })
        );
        for (name, step) in FailbackStep::NAMES {
            assert_eq!(step.as_str(), name);
        }
        let err = Request::from_value(json!({"failbackStep": "flip", "executionArn": "arn:x"})).unwrap_err();
        assert!(err.contains("\"flip\"") && err.contains("checkReplica"), "{err}");
        assert!(matches!(
            Request::from_value(json!({"failbackStep": "report", "executionArn": "arn:aws:states:x", "plan": {}})),
            Ok(Request::FailbackReport { .. })
        ));
        let err = Request::from_value(json!({"failbackStep": "report", "executionArn": "arn:x"})).unwrap_err();
        assert!(err.contains("failbackStep \"report\" needs \"plan\""), "{err}");
        let err = Request::from_value(json!({"failbackStep": "check"})).unwrap_err();
        assert!(err.contains("executionArn"), "{err}");
    }

    #[test]
    fn malformed_steps_are_named() {
        let err = Request::from_value(json!({"planStep": "reboot", "alarm": {}})).unwrap_err();
        assert!(err.contains("\"reboot\""), "{err}");
        let err = Request::from_value(json!({"planStep": "publish"})).unwrap_err();
        assert!(err.contains("needs \"alarm\""), "{err}");
        let err = Request::from_value(json!({"planStep": "promote", "alarm": {}, "dryRun": "yes"})).unwrap_err();
        assert!(err.contains("dryRun"), "{err}");
        let err = Request::from_value(json!({"planStep": "report", "plan": {}})).unwrap_err();
        assert!(err.contains("executionArn"), "{err}");
        let err = Request::from_value(json!({"planStep": "report", "executionArn": "arn:x", "plan": 3})).unwrap_err();
        assert!(err.contains("\"plan\""), "{err}");
        let ok = Request::from_value(json!({"planStep": "report", "executionArn": "arn:x", "plan": {"a": 1}}));
        assert_eq!(
            ok,
            Ok(Request::Report {
                execution_arn: "arn:x".into(),
                plan: json!({"a": 1})
            })
        );
    }
}
