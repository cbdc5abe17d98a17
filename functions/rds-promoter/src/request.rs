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
    },
    /// EventBridge's schedule: complete pending fences and keep the done ones fenced.
    SweepFences,
    /// The plan's last step: its report, from the execution's history and state.
    Report {
        /// The plan execution (`$$.Execution.Id`).
        execution_arn: String,
        /// The execution's state (what the steps returned).
        plan: Value,
    },
}

impl Request {
    /// Reads the payload; anything else is an alarm event (whose parser names what is wrong).
    pub fn from_value(payload: Value) -> Result<Self, String> {
        if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Ok(Self::SweepFences);
        }
        let Some(raw_step) = payload.get("planStep") else {
            return Ok(Self::Failover(payload));
        };
        let name = raw_step.as_str().unwrap_or_default();
        if name == "report" {
            return Self::report(&payload);
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
        Ok(Self::Step { step, alarm, dry_run })
    }

    fn report(payload: &Value) -> Result<Self, String> {
        let execution_arn = payload
            .get("executionArn")
            .and_then(Value::as_str)
            .filter(|arn| arn.starts_with("arn:"))
            .ok_or("planStep \"report\" needs \"executionArn\": the plan execution's ARN ($$.Execution.Id)")?;
        let plan = payload
            .get("plan")
            .filter(|plan| plan.is_object())
            .cloned()
            .ok_or("planStep \"report\" needs \"plan\": the execution's state object ($)")?;
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
                alarm,
                dry_run: true
            })
        );
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
