//! Step "resolve": from the trigger to the target the servers must use, reading the
//! published parameters when their change is the trigger, or to the reason to do nothing.

use failover_core::alarm::Verdict;
use failover_core::parameters::ParameterReader;
use failover_core::Region;

use crate::domain::{RewriteMode, RewriteTarget, RewriteTrigger};
use crate::error::RewriterError;
use crate::handler::Rewriter;
use crate::ports::{CommandRunner, InstanceFinder, NodeDirectory};

/// What the trigger asks for, or why nothing is to be done.
pub(crate) enum Resolution {
    /// Repoint the servers at `target`.
    Rewrite {
        target: RewriteTarget,
        failover_id: String,
        mode: RewriteMode,
        /// Whose servers (`None`: APP_REGION's).
        fleet_region: Option<Region>,
    },
    /// Nothing to do, for this reason.
    Ignore(String),
}

impl<F, N, C, P> Rewriter<F, N, C, P>
where
    F: InstanceFinder,
    N: NodeDirectory,
    C: CommandRunner,
    P: ParameterReader,
{
    /// Turns the trigger into a target (reading Parameter Store when it changed).
    pub(crate) async fn resolve(&self, trigger: RewriteTrigger) -> Result<Resolution, RewriterError> {
        match trigger {
            RewriteTrigger::Manual {
                region,
                db_host,
                db_port,
                maintenance,
                fleet_region,
                mode,
            } => Ok(Resolution::Rewrite {
                failover_id: format!("manual {region}"),
                target: RewriteTarget {
                    region,
                    db_host,
                    db_port,
                    maintenance,
                },
                mode,
                fleet_region,
            }),
            RewriteTrigger::ParameterChange { change, trigger_id } => {
                let names = &self.config.parameters;
                if change.name != names.active_region() {
                    return Ok(Resolution::Ignore(format!(
                        "{} is not {}: the active region is published last, and its change triggers the rewrite",
                        change.name,
                        names.active_region()
                    )));
                }
                if change.operation == "Delete" {
                    return Ok(Resolution::Ignore(format!("{} was deleted", change.name)));
                }
                let wanted = vec![names.db_host(), names.db_port(), names.active_region()];
                let values = self.parameters.get(&wanted).await?;
                let target = RewriteTarget::from_parameters(names, &values)
                    .map_err(|e| RewriterError::UnusableParameters(e.to_string()))?;
                Ok(Resolution::Rewrite {
                    failover_id: trigger_id,
                    target,
                    mode: RewriteMode::default(),
                    fleet_region: None,
                })
            }
            RewriteTrigger::Alarm(transition) => {
                let (Some(policy), Some(region)) = (&self.config.alarm_policy, &self.config.failover_region) else {
                    return Err(RewriterError::AlarmsNotConfigured);
                };
                match policy.evaluate(&transition) {
                    Verdict::Ignored { reason } => Ok(Resolution::Ignore(reason.to_string())),
                    Verdict::Act => Ok(Resolution::Rewrite {
                        failover_id: transition.failover_id(),
                        target: RewriteTarget {
                            region: region.clone(),
                            db_host: None,
                            db_port: None,
                            maintenance: None,
                        },
                        mode: RewriteMode::default(),
                        fleet_region: None,
                    }),
                }
            }
        }
    }
}
