//! [`ExecutionHistory`] over the Step Functions API (GetExecutionHistory).

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};

use crate::domain::{StateKind, StateVisit};
use crate::ports::ExecutionHistory;
use failover_core::error::AwsFailure;

/// The execution history in the client's region (the plan's).
#[derive(Debug, Clone)]
pub struct SfnHistory {
    client: aws_sdk_sfn::Client,
}

impl SfnHistory {
    /// Wraps a client of the region the plan runs in.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl ExecutionHistory for SfnHistory {
    async fn visits(&self, execution_arn: &str) -> Result<(i64, Vec<StateVisit>), AwsFailure> {
        let mut pages = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| AwsFailure::from_sdk("GetExecutionHistory", &err))?;
            events.extend(page.events().iter().cloned());
        }
        Ok(fold(&events))
    }
}

/// Pairs each StateEntered event with the StateExited of the same state that follows it.
fn fold(events: &[HistoryEvent]) -> (i64, Vec<StateVisit>) {
    let millis = |e: &HistoryEvent| e.timestamp().to_millis().unwrap_or_default();
    let started = events
        .iter()
        .find(|e| e.r#type() == &HistoryEventType::ExecutionStarted)
        .or(events.first())
        .map(millis)
        .unwrap_or_default();
    let mut visits: Vec<StateVisit> = Vec::new();
    for event in events {
        if let Some(entered) = event.state_entered_event_details() {
            visits.push(StateVisit {
                name: entered.name().to_owned(),
                kind: kind(event.r#type()),
                entered_at_ms: millis(event),
                exited_at_ms: None,
            });
        } else if let Some(exited) = event.state_exited_event_details() {
            let open = visits
                .iter_mut()
                .rev()
                .find(|v| v.name == exited.name() && v.exited_at_ms.is_none());
            if let Some(visit) = open {
                visit.exited_at_ms = Some(millis(event));
            }
        }
    }
    (started, visits)
}

fn kind(event: &HistoryEventType) -> StateKind {
    match event {
        HistoryEventType::TaskStateEntered | HistoryEventType::ParallelStateEntered => StateKind::Task,
        HistoryEventType::WaitStateEntered => StateKind::Wait,
        _ => StateKind::Flow,
    }
}
