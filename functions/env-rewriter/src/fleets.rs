//! The fleets env-rewriter commands: the app servers of its own region (APP_REGION, the
//! region it repoints after a failover) and, when FENCE_REGION is set, those of the other
//! region, which the plan's fence puts into maintenance with their cron off, and failback
//! brings back. Each fleet has its own clients, in its own region.

use failover_core::Region;

use crate::error::RewriterError;
use crate::handler::Rewriter;

/// The servers of one region: how they are found and commanded there.
pub struct Fleet<F, N, C> {
    /// The region the servers (and the clients) are in.
    pub region: Region,
    pub(crate) finder: F,
    pub(crate) nodes: N,
    pub(crate) commands: C,
}

impl<F, N, C> Fleet<F, N, C> {
    /// The ports of one region's fleet.
    pub fn new(region: Region, finder: F, nodes: N, commands: C) -> Self {
        Self {
            region,
            finder,
            nodes,
            commands,
        }
    }
}

impl<F, N, C, P> Rewriter<F, N, C, P> {
    /// Adds the other region's fleet (FENCE_REGION), commanded by requests that name it as
    /// `fleetRegion`. Without FENCE_REGION in the configuration there is no such fleet.
    pub fn with_fence_fleet(mut self, finder: F, nodes: N, commands: C) -> Self {
        if let Some(region) = self.config.fence_region.clone() {
            self.fence = Some(Fleet::new(region, finder, nodes, commands));
        }
        self
    }

    /// The fleet of `region` (`None`: APP_REGION's).
    pub(crate) fn fleet(&self, region: Option<&Region>) -> Result<&Fleet<F, N, C>, RewriterError> {
        let Some(region) = region else {
            return Ok(&self.home);
        };
        if *region == self.home.region {
            return Ok(&self.home);
        }
        match &self.fence {
            Some(fence) if fence.region == *region => Ok(fence),
            _ => Err(RewriterError::InvalidEvent(format!(
                "fleetRegion {region} is neither APP_REGION ({}) nor FENCE_REGION ({})",
                self.home.region,
                self.config.fence_region.as_ref().map_or("not set", Region::as_str)
            ))),
        }
    }
}
