//! Which way the data flows now (pure): the published active region says whether the
//! source is still the authority. After a failover the target's region is active, and the
//! records still in the source's stream ("stranded": written before the outage, never
//! replicated) must not be applied blindly over the table that became authoritative.

/// What a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The source is active (or no switch was ever published): replicate.
    Replicate,
    /// The target's region is active: the batch holds stranded records; reconcile them.
    Reconcile,
}

/// The direction, given the published active region (`None`: not published, or not
/// configured). A region that is neither source nor target is a configuration error.
pub fn direction(active: Option<&str>, source_region: &str, target_region: &str) -> Result<Direction, String> {
    match active {
        None => Ok(Direction::Replicate),
        Some(region) if region == source_region => Ok(Direction::Replicate),
        Some(region) if region == target_region => Ok(Direction::Reconcile),
        Some(other) => Err(format!(
            "the published active region {other:?} is neither the source ({source_region}) nor the target ({target_region})"
        )),
    }
}

/// A batch's direction, and which of its changes are copies never to be sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Replicate or reconcile.
    pub direction: Direction,
    /// Changes created before this moment (epoch ms) are the other direction's copies
    /// (`SOURCE_AUTHORITY=while-active`): skipped. `None`: every change counts.
    pub copies_before_ms: Option<i64>,
}

/// The flow, given the published active region with since when it is active
/// (`active_since_ms`) and whether the source is a copy until its region is active.
///
/// The cut-off is rounded down to the whole second: a record's ApproximateCreationDateTime
/// is rounded down to the second, so a record dated before that second was surely made
/// before the switch, and none made after it is ever skipped.
pub fn flow(
    active: Option<&str>,
    active_since_ms: Option<i64>,
    copy_until_active: bool,
    source_region: &str,
    target_region: &str,
) -> Result<Flow, String> {
    let direction = direction(active, source_region, target_region)?;
    let copies_before_ms = match (copy_until_active, direction, active) {
        (false, _, _) | (true, Direction::Reconcile, _) => None,
        // Never active: everything in this stream is a copy.
        (true, Direction::Replicate, None) => Some(i64::MAX),
        (true, Direction::Replicate, Some(_)) => match active_since_ms {
            Some(since) => Some(since.div_euclid(1000) * 1000),
            None => {
                return Err(format!(
                    "the active region {source_region} has no modification time: cannot tell its \
                     own changes from the other direction's copies"
                ))
            }
        },
    };
    Ok(Flow {
        direction,
        copies_before_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_counts_only_its_changes_since_its_region_became_active() {
        let f = |active, since, copy| flow(active, since, copy, "us-west-2", "us-east-1");
        // The forward direction: every change counts.
        assert_eq!(f(Some("us-west-2"), Some(5_500), false).unwrap().copies_before_ms, None);
        // The reverse direction after the failover: from the second the switch happened.
        let after_failover = f(Some("us-west-2"), Some(5_500), true).unwrap();
        assert_eq!(after_failover.direction, Direction::Replicate);
        assert_eq!(after_failover.copies_before_ms, Some(5_000));
        // Never switched: all of it is a copy. Switched back: stranded, reconciled.
        assert_eq!(f(None, None, true).unwrap().copies_before_ms, Some(i64::MAX));
        let back = f(Some("us-east-1"), Some(9_000), true).unwrap();
        assert_eq!((back.direction, back.copies_before_ms), (Direction::Reconcile, None));
        assert!(f(Some("us-west-2"), None, true)
            .unwrap_err()
            .contains("modification time"));
    }

    #[test]
    fn the_target_active_means_the_batch_is_stranded() {
        let d = |active| direction(active, "us-east-1", "us-west-2");
        assert_eq!(d(None), Ok(Direction::Replicate));
        assert_eq!(d(Some("us-east-1")), Ok(Direction::Replicate));
        assert_eq!(d(Some("us-west-2")), Ok(Direction::Reconcile));
        assert!(d(Some("eu-west-1")).unwrap_err().contains("neither"));
    }
}
