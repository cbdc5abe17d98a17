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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_active_means_the_batch_is_stranded() {
        let d = |active| direction(active, "us-east-1", "us-west-2");
        assert_eq!(d(None), Ok(Direction::Replicate));
        assert_eq!(d(Some("us-east-1")), Ok(Direction::Replicate));
        assert_eq!(d(Some("us-west-2")), Ok(Direction::Reconcile));
        assert!(d(Some("eu-west-1")).unwrap_err().contains("neither"));
    }
}
