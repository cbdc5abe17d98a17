//! Whether the shop's published active region is the primary: the evidence Route 53's
//! calculated health check of the PRIMARY record reads (through the `PrimaryActive` metric
//! and its alarm), so that DNS follows the region-switch plan, not raw endpoint health.

use failover_core::Region;

/// `Some(true)` when `published` (the `active-region` parameter) names the primary,
/// `Some(false)` when it names another region, `None` when nothing usable is published
/// (no datapoint: the alarm and the health check keep their last state).
pub fn primary_active(published: Option<&str>, primary: &Region) -> Option<bool> {
    let published = Region::new(published?.trim()).ok()?;
    Some(&published == primary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_published_region_is_evidence() {
        let primary = Region::new("us-east-1").unwrap();
        assert_eq!(primary_active(Some("us-east-1"), &primary), Some(true));
        assert_eq!(primary_active(Some(" us-east-1\n"), &primary), Some(true));
        assert_eq!(primary_active(Some("us-west-2"), &primary), Some(false));
        assert_eq!(primary_active(Some("not a region"), &primary), None);
        assert_eq!(primary_active(None, &primary), None);
    }
}
