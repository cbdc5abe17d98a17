//! The document parameters for one server.

use std::collections::BTreeMap;

use failover_core::rewrite::RewriteTarget;

use crate::config::{Profile, RewriterConfig};

/// The SSM document parameters that repoint a server of `profile` at `target`.
pub fn document_parameters(
    config: &RewriterConfig,
    profile: Profile,
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
            "dbHost",
            target.db_host.as_ref().map(|h| h.to_string()).unwrap_or_default(),
        ),
        ("dbPort", target.db_port.map(|p| p.to_string()).unwrap_or_default()),
        ("appRoot", app_root.to_owned()),
        ("webUser", config.web_user.clone()),
        ("envFile", config.env_file.clone().unwrap_or_default()),
        ("regionKeys", config.region_keys.join(",")),
        ("dbHostKey", config.db_host_key.clone()),
        ("fpmPoolFiles", config.fpm_pool_files.join(",")),
        ("services", config.services.join(",")),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
