//! The reverse DynamoDB replicator's drain check, as failback reads it (pure): before the
//! freeze its backlog must be small (the analogue of an iterator age under the threshold),
//! with writes frozen it must be empty, so no outage write is left in the copy's stream
//! when the directions swap.

use serde::{Deserialize, Serialize};

/// What stream-replicator's `{"drainCheck": {}}` answered (the fields failback uses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamDrain {
    /// No key pending, and the whole stream read.
    pub drained: bool,
    /// Records read from the copy's stream.
    pub records_read: usize,
    /// Keys whose last change the primary table holds.
    pub keys_in_target: usize,
    /// Keys still to be written back.
    pub keys_pending: usize,
    /// Keys with nothing to write back (copies from before the failover, own changes).
    pub keys_nothing_to_write: usize,
    /// Keys that can never be written (dead-lettered).
    pub keys_unwritable: usize,
    /// Age of the oldest pending change, seconds.
    #[serde(default)]
    pub oldest_pending_age_seconds: Option<f64>,
    /// Conflicts logged for the copy's table.
    pub conflicts_logged: usize,
    /// The stream held more than one check reads.
    pub truncated: bool,
}

/// Whether the reverse replicator keeps up well enough to freeze writes: nothing pending,
/// or the oldest pending change younger than `max_age_seconds`.
pub fn reverse_keeps_up(drain: &StreamDrain, max_age_seconds: f64) -> Result<(), String> {
    if drain.truncated {
        return Err(format!(
            "the copy's stream holds more than one drain check reads ({} records read)",
            drain.records_read
        ));
    }
    match drain.oldest_pending_age_seconds {
        Some(age) if drain.keys_pending > 0 && age > max_age_seconds => Err(format!(
            "the reverse replicator is {age:.0} s behind ({} keys pending, limit {max_age_seconds} s)",
            drain.keys_pending
        )),
        _ => Ok(()),
    }
}

/// Whether, with writes frozen, every outage write is back in the primary table.
pub fn reverse_drained(drain: &StreamDrain) -> Result<(), String> {
    if drain.drained {
        return Ok(());
    }
    Err(if drain.truncated {
        format!(
            "the copy's stream holds more than one drain check reads ({} records read)",
            drain.records_read
        )
    } else {
        format!(
            "{} DynamoDB keys written in the outage are not back in the primary table yet",
            drain.keys_pending
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(pending: usize, age: Option<f64>) -> StreamDrain {
        StreamDrain {
            drained: pending == 0,
            keys_pending: pending,
            oldest_pending_age_seconds: age,
            ..StreamDrain::default()
        }
    }

    #[test]
    fn a_small_backlog_may_be_frozen_only_an_empty_one_is_drained() {
        assert!(reverse_keeps_up(&drain(0, None), 30.0).is_ok());
        assert!(reverse_keeps_up(&drain(5, Some(3.0)), 30.0).is_ok());
        assert!(reverse_keeps_up(&drain(5, Some(90.0)), 30.0)
            .unwrap_err()
            .contains("90 s behind"));
        assert!(reverse_drained(&drain(0, None)).is_ok());
        assert!(reverse_drained(&drain(2, Some(1.0)))
            .unwrap_err()
            .contains("2 DynamoDB keys"));
        let truncated = StreamDrain {
            truncated: true,
            ..drain(0, None)
        };
        assert!(reverse_keeps_up(&truncated, 30.0).is_err());
        assert!(reverse_drained(&StreamDrain {
            drained: false,
            ..truncated
        })
        .is_err());
    }
}
