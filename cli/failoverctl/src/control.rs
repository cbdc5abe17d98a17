//! The AWS side of failoverctl: one set of clients in the secondary region (where the plans,
//! the state table and the parameters live), and the plans found by name.

use aws_sdk_sfn::types::StateMachineListItem;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::error::AwsFailure;
use failover_core::Region;
use rds_promoter::adapters::{DynamoDbLockStore, RdsInstances};

use crate::args::Args;
use crate::error::CtlError;

/// Which plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// `<prefix>-region-switch`.
    RegionSwitch,
    /// `<prefix>-failback`.
    Failback,
}

impl Plan {
    /// The plan's name suffix and label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegionSwitch => "region-switch",
            Self::Failback => "failback",
        }
    }
}

/// Clients and names.
pub struct Control {
    /// The region.
    pub region: Region,
    /// Step Functions there.
    pub sfn: aws_sdk_sfn::Client,
    /// Parameter Store (and the repoint commands) there.
    pub ssm: aws_sdk_ssm::Client,
    /// SSM in the primary region (`--primary-region`): its app servers' repoint commands.
    pub primary_ssm: Option<(Region, aws_sdk_ssm::Client)>,
    /// The state table, through rds-promoter's own store (the same reading as the plan's).
    pub state: DynamoDbLockStore,
    /// The state table's name.
    pub state_table: String,
    /// RDS there, with ReplicaLag from CloudWatch.
    pub rds: RdsInstances,
    /// The command line.
    pub args: Args,
}

impl Control {
    /// Clients for `--region` (or `AWS_REGION`).
    pub async fn connect(args: Args) -> Result<Self, CtlError> {
        let raw = match &args.region {
            Some(region) => region.clone(),
            None => std::env::var("AWS_REGION").map_err(|_| {
                CtlError::Usage("no region: pass --region <the secondary region> or set AWS_REGION".into())
            })?,
        };
        let region = Region::new(&raw).map_err(|e| CtlError::Usage(format!("AWS_REGION {raw:?}: {e}")))?;
        let config = sdk_config(&region, ClientTimeouts::default()).await;
        let state_table = args
            .state_table
            .clone()
            .unwrap_or_else(|| format!("{}-state", args.name_prefix));
        let primary_ssm = match &args.primary_region {
            Some(raw) => {
                let primary =
                    Region::new(raw).map_err(|e| CtlError::Usage(format!("--primary-region {raw:?}: {e}")))?;
                let config = sdk_config(&primary, ClientTimeouts::default()).await;
                Some((primary, aws_sdk_ssm::Client::new(&config)))
            }
            None => None,
        };
        Ok(Self {
            sfn: aws_sdk_sfn::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            primary_ssm,
            state: DynamoDbLockStore::new(aws_sdk_dynamodb::Client::new(&config), state_table.clone()),
            rds: RdsInstances::new(aws_sdk_rds::Client::new(&config))
                .with_metrics(aws_sdk_cloudwatch::Client::new(&config)),
            state_table,
            region,
            args,
        })
    }

    /// The repoint document's name.
    pub fn document(&self) -> String {
        self.args
            .document
            .clone()
            .unwrap_or_else(|| format!("{}-repoint-app", self.args.name_prefix))
    }

    /// The plan's ARN: `--switch-plan`/`--failback-plan`, or the state machine named
    /// `<prefix>-<plan>`.
    pub async fn plan_arn(&self, plan: Plan) -> Result<String, CtlError> {
        let given = match plan {
            Plan::RegionSwitch => &self.args.switch_plan,
            Plan::Failback => &self.args.failback_plan,
        };
        if let Some(arn) = given {
            return Ok(arn.clone());
        }
        let wanted = format!("{}-{}", self.args.name_prefix, plan.as_str());
        let mut pages = self.sfn.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| CtlError::aws("ListStateMachines", AwsFailure::from_sdk("ListStateMachines", &e)))?;
            if let Some(found) = page
                .state_machines()
                .iter()
                .find(|m: &&StateMachineListItem| m.name() == wanted)
            {
                return Ok(found.state_machine_arn().to_owned());
            }
        }
        Err(CtlError::NotFound(format!(
            "no state machine {wanted} in {}: check --name-prefix and --region, or pass --{}-plan <ARN>",
            self.region,
            if plan == Plan::RegionSwitch {
                "switch"
            } else {
                "failback"
            }
        )))
    }
}
