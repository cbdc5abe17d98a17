//! Which profile each server gets, and the document parameters for one server.

use std::collections::BTreeMap;

use failover_core::Region;

use crate::domain::{RewriteTarget, Selection, Skipped, Target};

use crate::config::{Profile, RewriterConfig};

/// The SSM document parameters that repoint a server of `profile` in `fleet_region` at
/// `target`: the target region's cache host, the shop's cron on only where the fleet's
/// region is the target's (when MANAGE_CRON), maintenance as the request asks.
pub fn document_parameters(
    config: &RewriterConfig,
    profile: Profile,
    fleet_region: &Region,
    target: &RewriteTarget,
) -> BTreeMap<String, String> {
    let app_root = match profile {
        Profile::Magento => config.magento_root.as_str(),
        Profile::Wordpress => config.wordpress_root.as_str(),
        Profile::Envfile => "/",
    };
    let pairs = [
        ("appProfile", profile.as_str().to_owned()),
        ("region", target.region.to_string()),
        (
            "serverRegion",
            if config.manage_cron {
                fleet_region.to_string()
            } else {
                String::new()
            },
        ),
        (
            "dbHost",
            target.db_host.as_ref().map(|h| h.to_string()).unwrap_or_default(),
        ),
        ("dbPort", target.db_port.map(|p| p.to_string()).unwrap_or_default()),
        (
            "cacheHost",
            config
                .cache_hosts
                .get(&target.region)
                .map(|h| h.to_string())
                .unwrap_or_default(),
        ),
        ("appRoot", app_root.to_owned()),
        ("webUser", config.web_user.clone()),
        ("envFile", config.env_file.clone().unwrap_or_default()),
        ("regionKeys", config.region_keys.join(",")),
        ("dbHostKey", config.db_host_key.clone()),
        ("cacheHostKey", config.cache_host_key.clone()),
        ("fpmPoolFiles", config.fpm_pool_files.join(",")),
        ("services", config.services.join(",")),
        ("cronTimers", config.cron_timers.join(",")),
        (
            "maintenance",
            target.maintenance.map(|m| m.as_str().to_owned()).unwrap_or_default(),
        ),
        ("maintenanceKey", config.maintenance_key.clone()),
        ("executionTimeout", config.command.execution_timeout_seconds.to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Selected servers paired with their profile, and every server that is not commanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfiledSelection {
    /// Servers to command, each with the profile its App tag names.
    pub targets: Vec<(Target, Profile)>,
    /// Servers left out, with the reason (discovery's, plus App tags without a profile).
    pub skipped: Vec<Skipped>,
}

impl ProfiledSelection {
    /// Each target's document parameters for `target`, by instance id.
    pub fn document_parameters(
        &self,
        config: &RewriterConfig,
        fleet_region: &Region,
        target: &RewriteTarget,
    ) -> Vec<(String, BTreeMap<String, String>)> {
        self.targets
            .iter()
            .map(|(t, profile)| {
                let parameters = document_parameters(config, *profile, fleet_region, target);
                (t.instance_id.clone(), parameters)
            })
            .collect()
    }

    /// Each target's App tag, by instance id (for the report).
    pub fn apps(&self) -> BTreeMap<String, String> {
        self.targets
            .iter()
            .map(|(t, _)| (t.instance_id.clone(), t.app.clone()))
            .collect()
    }
}

/// Pairs each target with the profile of its App tag. The tag comes from the server, so a
/// value that is not an `APP_PROFILES` key (a discovery that matched differently, a tag edited
/// meanwhile) skips that server with the reason instead of guessing a profile.
pub fn assign_profiles(selection: Selection, profiles: &BTreeMap<String, Profile>) -> ProfiledSelection {
    let mut result = ProfiledSelection {
        targets: Vec::new(),
        skipped: selection.skipped,
    };
    for target in selection.targets {
        match profiles.get(&target.app) {
            Some(profile) => result.targets.push((target, *profile)),
            None => result.skipped.push(Skipped {
                reason: format!(
                    "App tag {:?} has no profile in APP_PROFILES ({})",
                    target.app,
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                instance_id: target.instance_id,
                app: target.app,
            }),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, app: &str) -> Target {
        Target {
            instance_id: id.into(),
            app: app.into(),
        }
    }

    #[test]
    fn targets_get_their_profile_and_unknown_app_tags_are_skipped_with_the_reason() {
        let profiles = BTreeMap::from([
            ("Magento".to_string(), Profile::Magento),
            ("WooCommerce".to_string(), Profile::Wordpress),
        ]);
        let offline = Skipped {
            instance_id: "i-0".into(),
            app: "Magento".into(),
            reason: "SSM agent is ConnectionLost, not Online".into(),
        };
        let selection = Selection {
            targets: vec![
                target("i-1", "Magento"),
                target("i-2", "magento"),
                target("i-3", "WooCommerce"),
            ],
            skipped: vec![offline.clone()],
        };
        let profiled = assign_profiles(selection, &profiles);
        assert_eq!(
            profiled.targets,
            [
                (target("i-1", "Magento"), Profile::Magento),
                (target("i-3", "WooCommerce"), Profile::Wordpress)
            ]
        );
        assert_eq!(
            profiled.skipped,
            [
                offline,
                Skipped {
                    instance_id: "i-2".into(),
                    app: "magento".into(),
                    reason: "App tag \"magento\" has no profile in APP_PROFILES (Magento, WooCommerce)".into(),
                }
            ]
        );
    }
}
