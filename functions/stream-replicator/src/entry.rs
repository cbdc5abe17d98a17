//! What an invocation is: a drain check (`{"drainCheck": …}`, which needs the source stream),
//! or anything the [`Replicator`] handles itself (a stream batch, a redrive).

use failover_core::parameters::ParameterHistoryReader;
use failover_core::retry::Deadline;
use failover_core::FailoverError;
use lambda_runtime::LambdaEvent;
use serde_json::value::RawValue;

use crate::drain::DrainRequest;
use crate::handler::Replicator;
use crate::ports::{DeadLetterStore, ItemReader, ItemWriter, StreamSource};
use crate::report::Response;

/// Routes one invocation.
pub async fn handle<W, R, D, P, S>(
    replicator: &Replicator<W, R, D, P>,
    stream: &S,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Response, FailoverError>
where
    W: ItemWriter + ItemReader,
    R: ItemReader,
    D: DeadLetterStore,
    P: ParameterHistoryReader,
    S: StreamSource,
{
    let payload = event.payload.get();
    // A stream batch starts with "Records": it is never parsed twice in full.
    if payload
        .trim_start()
        .trim_start_matches('{')
        .trim_start()
        .starts_with("\"drainCheck\"")
    {
        let request: DrainRequest =
            serde_json::from_str(payload).map_err(|e| FailoverError::InvalidEvent(format!("drainCheck event: {e}")))?;
        let deadline = Deadline::from_lambda(event.context.deadline(), replicator.config.deadline_margin);
        return replicator
            .drain_check(stream, &request.drain_check, deadline)
            .await
            .map(Response::Drain);
    }
    replicator.handle_lambda_event(event).await
}
