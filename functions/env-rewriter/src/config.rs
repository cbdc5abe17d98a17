//! env-rewriter configuration, read once from the environment at start.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{CommandSettings, DbHost};
use failover_core::alarm::AlarmPolicy;
use failover_core::parameters::ParameterNames;
use failover_core::{ConfigError, EnvReader, Region};

/// How an app is repointed; chosen by the server's App tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// `bin/magento setup:config:set --db-host` and a cache flush.
    Magento,
    /// `wp config set DB_HOST` (WP-CLI), for WordPress and WooCommerce.
    Wordpress,
    /// Only the env file and PHP-FPM pool files.
    Envfile,
}

impl Profile {
    /// The document's `appProfile` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Magento => "magento",
            Profile::Wordpress => "wordpress",
            Profile::Envfile => "envfile",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "magento" => Some(Profile::Magento),
            "wordpress" => Some(Profile::Wordpress),
            "envfile" => Some(Profile::Envfile),
            _ => None,
        }
    }
}

/// Everything the function needs, validated.
#[derive(Debug, Clone)]
pub struct RewriterConfig {
    /// Region whose app servers are discovered and commanded.
    pub app_region: Region,
    /// The Environment tag value.
    pub environment: String,
    /// App tag value → profile; the keys are the apps looked for.
    pub profiles: BTreeMap<String, Profile>,
    /// Magento root directory.
    pub magento_root: String,
    /// WordPress root directory.
    pub wordpress_root: String,
    /// User the app's CLI runs as; empty: the script takes the owner of the app's
    /// configuration (Magento's file-system owner, wp-config.php's owner).
    pub web_user: String,
    /// KEY=VALUE file to rewrite (optional for magento/wordpress, required for envfile).
    pub env_file: Option<String>,
    /// Keys set to the region (e.g. AWS_REGION, DYNAMODB_REGION).
    pub region_keys: Vec<String>,
    /// Key set to the database host, in env and pool files.
    pub db_host_key: String,
    /// PHP-FPM pool files whose `env[KEY]` lines are rewritten.
    pub fpm_pool_files: Vec<String>,
    /// Services reloaded or restarted after a change and checked active; empty: the script
    /// detects the enabled PHP-FPM unit and web server.
    pub services: Vec<String>,
    /// The Redis/ElastiCache host of each region (sessions and cache are per region).
    pub cache_hosts: BTreeMap<Region, DbHost>,
    /// Key set to the cache host, in env and pool files.
    pub cache_host_key: String,
    /// Whether the shop's cron follows the active region (on there, off everywhere else).
    pub manage_cron: bool,
    /// systemd timers that run the shop's cron (empty: Magento's crontab, WordPress's entry).
    pub cron_timers: Vec<String>,
    /// Env-file key set to 1/0 with maintenance mode (empty: none).
    pub maintenance_key: String,
    /// The other region's fleet, which the plan's fence (maintenance on, cron off) and
    /// failback command; `None` when not configured.
    pub fence_region: Option<Region>,
    /// SendCommand settings.
    pub command: CommandSettings,
    /// Published parameters (read on Parameter Store Change events).
    pub parameters: ParameterNames,
    /// Alarms allowed to trigger a region-only switch, if any.
    pub alarm_policy: Option<AlarmPolicy>,
    /// Region a region-only alarm switch points at.
    pub failover_region: Option<Region>,
    /// Upper bound of waiting for command results.
    pub max_wait: Duration,
    /// First pause between result polls.
    pub poll_initial: Duration,
    /// Longest pause between result polls.
    pub poll_max: Duration,
    /// Discover and plan, send nothing.
    pub dry_run: bool,
}

/// The document's allowed characters for absolute paths (checked again by the script).
fn path(var: &str, raw: &str) -> Result<String, ConfigError> {
    let valid = raw.starts_with('/')
        && raw.len() <= 200
        && !raw.contains("..")
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::invalid(
            var,
            raw,
            "an absolute path of letters, digits, . _ / - (no ..)",
        ))
    }
}

fn env_key(var: &str, raw: &str) -> Result<String, ConfigError> {
    let valid = (1..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::invalid(
            var,
            raw,
            "variable names of capitals, digits and _",
        ))
    }
}

fn service(var: &str, raw: &str) -> Result<String, ConfigError> {
    let valid = (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'-'));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::invalid(
            var,
            raw,
            "systemd unit names (letters, digits, @ . _ -)",
        ))
    }
}

fn tag_value(var: &str, raw: &str) -> Result<String, ConfigError> {
    let valid =
        (1..=128).contains(&raw.chars().count()) && raw.chars().all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::invalid(
            var,
            raw,
            "an EC2 tag value (letters, digits, spaces, _ . : / = + - @)",
        ))
    }
}

/// `region=host` pairs: the cache endpoint of each region.
fn cache_hosts(env: &EnvReader) -> Result<BTreeMap<Region, DbHost>, ConfigError> {
    let expected = "region=host pairs such as us-east-1=shop.abc.use1.cache.amazonaws.com";
    let mut hosts = BTreeMap::new();
    for entry in env.list("CACHE_HOSTS") {
        let (region, host) = entry
            .split_once('=')
            .ok_or_else(|| ConfigError::invalid("CACHE_HOSTS", &entry, expected))?;
        let region = Region::new(region.trim()).map_err(|_| ConfigError::invalid("CACHE_HOSTS", &entry, expected))?;
        let host = DbHost::new(host.trim()).map_err(|_| ConfigError::invalid("CACHE_HOSTS", &entry, expected))?;
        hosts.insert(region, host);
    }
    Ok(hosts)
}

/// A systemd timer unit name.
fn timer(var: &str, raw: &str) -> Result<String, ConfigError> {
    match service(var, raw) {
        Ok(unit) if unit.ends_with(".timer") => Ok(unit),
        _ => Err(ConfigError::invalid(
            var,
            raw,
            "systemd timer units such as magento-cron.timer",
        )),
    }
}

/// Variables of earlier versions that would now be silently ignored: refused, naming what
/// replaced them.
fn refuse_replaced(env: &EnvReader) -> Result<(), ConfigError> {
    for (var, replaced_by) in [
        (
            "COMMAND_TIMEOUT_SECONDS",
            "it was SSM's delivery timeout; set DELIVERY_TIMEOUT_SECONDS and EXECUTION_TIMEOUT_SECONDS",
        ),
        (
            "MAX_ERRORS",
            "every server is attempted now (MaxErrors 100%): one failing server never stops the others; remove it",
        ),
    ] {
        if let Some(raw) = env.optional(var) {
            return Err(ConfigError::invalid(var, raw, replaced_by));
        }
    }
    Ok(())
}

/// Accepts `10`, `25%` (SSM's MaxConcurrency syntax).
fn count_or_percent(var: &str, raw: &str) -> Result<String, ConfigError> {
    let digits = raw.strip_suffix('%').unwrap_or(raw);
    if (1..=4).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::invalid(
            var,
            raw,
            "a number or a percentage such as 10 or 25%",
        ))
    }
}

impl RewriterConfig {
    /// Reads and validates every variable; the first problem names its variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let profiles_raw = env
            .optional("APP_PROFILES")
            .unwrap_or("Magento=magento,WooCommerce=wordpress,WordPress=wordpress");
        let mut profiles = BTreeMap::new();
        for entry in profiles_raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let expected = "App=profile pairs, profile one of magento, wordpress, envfile";
            let (app, profile) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::invalid("APP_PROFILES", entry, expected))?;
            let profile =
                Profile::parse(profile.trim()).ok_or_else(|| ConfigError::invalid("APP_PROFILES", entry, expected))?;
            profiles.insert(tag_value("APP_PROFILES", app.trim())?, profile);
        }
        if profiles.is_empty() {
            return Err(ConfigError::invalid(
                "APP_PROFILES",
                profiles_raw,
                "at least one App=profile pair",
            ));
        }
        let env_file = env.optional("ENV_FILE").map(|p| path("ENV_FILE", p)).transpose()?;
        if env_file.is_none() && profiles.values().any(|p| *p == Profile::Envfile) {
            return Err(ConfigError::Missing {
                var: "ENV_FILE".into(),
                expected: "the env file path, required by the envfile profile in APP_PROFILES".into(),
            });
        }
        let alarm_policy =
            if env.optional("ALLOWED_ALARM_NAMES").is_some() || env.optional("ALLOWED_ALARM_PREFIXES").is_some() {
                Some(AlarmPolicy::from_env(env)?)
            } else {
                None
            };
        let failover_region = env
            .optional("FAILOVER_REGION")
            .map(|_| env.region("FAILOVER_REGION"))
            .transpose()?;
        if alarm_policy.is_some() && failover_region.is_none() {
            return Err(ConfigError::Missing {
                var: "FAILOVER_REGION".into(),
                expected: "the region an alarm-triggered switch points at (alarms are allowed by ALLOWED_ALARM_*)"
                    .into(),
            });
        }
        let region_keys = match env.optional("REGION_KEYS") {
            None => vec!["AWS_REGION".to_owned(), "DYNAMODB_REGION".to_owned()],
            Some(_) => env
                .list("REGION_KEYS")
                .iter()
                .map(|k| env_key("REGION_KEYS", k))
                .collect::<Result<_, _>>()?,
        };
        refuse_replaced(env)?;
        let services = env
            .list("SERVICES")
            .iter()
            .map(|s| service("SERVICES", s))
            .collect::<Result<_, _>>()?;
        let web_user = env.optional("WEB_USER").unwrap_or_default().to_owned();
        let user_ok = web_user.is_empty()
            || (1..=32).contains(&web_user.len())
                && web_user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && web_user
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !user_ok {
            return Err(ConfigError::invalid(
                "WEB_USER",
                &web_user,
                "a Linux user name such as www-data (or unset: the owner of the app's configuration)",
            ));
        }
        let delivery_timeout = env.seconds("DELIVERY_TIMEOUT_SECONDS", Duration::from_secs(120), 30..=2_880)?;
        let execution_timeout = env.seconds("EXECUTION_TIMEOUT_SECONDS", Duration::from_secs(300), 30..=3_600)?;
        // A server may start at the end of the delivery window and then run its full
        // execution timeout; waiting less would call a run timed-out that may still succeed.
        let least_wait = delivery_timeout + execution_timeout;
        let max_wait = env.seconds("RESULT_WAIT_SECONDS", least_wait + Duration::from_secs(30), 1..=3_600)?;
        if max_wait < least_wait {
            return Err(ConfigError::invalid(
                "RESULT_WAIT_SECONDS",
                &max_wait.as_secs().to_string(),
                format!(
                    "at least DELIVERY_TIMEOUT_SECONDS + EXECUTION_TIMEOUT_SECONDS = {} s, so no server still allowed to run is reported timed-out",
                    least_wait.as_secs()
                ),
            ));
        }
        let app_region = env.region("APP_REGION")?;
        let fence_region = env
            .optional("FENCE_REGION")
            .map(|_| env.region("FENCE_REGION"))
            .transpose()?;
        if fence_region.as_ref() == Some(&app_region) {
            return Err(ConfigError::invalid(
                "FENCE_REGION",
                fence_region.as_ref().map(Region::as_str).unwrap_or_default(),
                "the other region (the primary), not APP_REGION",
            ));
        }
        let poll_initial = Duration::from_millis(
            env.parsed_or("POLL_INITIAL_MS", 1_000u64, "milliseconds")?
                .clamp(10, 60_000),
        );
        let poll_max = Duration::from_millis(
            env.parsed_or("POLL_MAX_MS", 10_000u64, "milliseconds")?
                .clamp(10, 120_000),
        );
        Ok(Self {
            app_region,
            environment: tag_value(
                "ENVIRONMENT",
                env.required("ENVIRONMENT", "the Environment tag value of the app servers")?,
            )?,
            profiles,
            magento_root: path(
                "MAGENTO_ROOT",
                env.optional("MAGENTO_ROOT").unwrap_or("/var/www/magento"),
            )?,
            wordpress_root: path(
                "WORDPRESS_ROOT",
                env.optional("WORDPRESS_ROOT").unwrap_or("/var/www/html"),
            )?,
            web_user,
            env_file,
            region_keys,
            db_host_key: env_key("DB_HOST_KEY", env.optional("DB_HOST_KEY").unwrap_or("DB_HOST"))?,
            fpm_pool_files: env
                .list("FPM_POOL_FILES")
                .iter()
                .map(|p| path("FPM_POOL_FILES", p))
                .collect::<Result<_, _>>()?,
            services,
            cache_hosts: cache_hosts(env)?,
            cache_host_key: env_key("CACHE_HOST_KEY", env.optional("CACHE_HOST_KEY").unwrap_or("REDIS_HOST"))?,
            manage_cron: env.flag("MANAGE_CRON", true)?,
            cron_timers: env
                .list("CRON_TIMERS")
                .iter()
                .map(|t| timer("CRON_TIMERS", t))
                .collect::<Result<_, _>>()?,
            maintenance_key: env
                .optional("MAINTENANCE_KEY")
                .map(|k| env_key("MAINTENANCE_KEY", k))
                .transpose()?
                .unwrap_or_default(),
            fence_region,
            command: CommandSettings {
                document_name: env.resource_name(
                    "DOCUMENT_NAME",
                    "the repoint SSM Command document name",
                    3..=128,
                    "an SSM document name (3-128 letters, digits, _ - .)",
                )?,
                max_concurrency: count_or_percent(
                    "MAX_CONCURRENCY",
                    env.optional("MAX_CONCURRENCY").unwrap_or("100%"),
                )?,
                delivery_timeout_seconds: delivery_timeout.as_secs() as i32,
                execution_timeout_seconds: execution_timeout.as_secs() as i32,
            },
            parameters: ParameterNames::new(
                "PARAMETER_PREFIX",
                env.required("PARAMETER_PREFIX", "a Parameter Store path such as /shop/failover")?,
            )?,
            alarm_policy,
            failover_region,
            max_wait,
            poll_initial,
            poll_max: poll_max.max(poll_initial),
            dry_run: env.flag("DRY_RUN", false)?,
        })
    }

    /// The apps looked for (App tag values).
    pub fn apps(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(overrides: &[(&'static str, &'static str)]) -> Result<RewriterConfig, ConfigError> {
        let mut vars = vec![
            ("APP_REGION", "us-west-2"),
            ("ENVIRONMENT", "production"),
            ("DOCUMENT_NAME", "shop-failover-repoint-app"),
            ("PARAMETER_PREFIX", "/shop/failover"),
        ];
        vars.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        vars.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        RewriterConfig::from_env(&EnvReader::from_pairs(vars))
    }

    #[test]
    fn defaults() {
        let config = with(&[]).unwrap();
        assert_eq!(config.apps(), ["Magento", "WooCommerce", "WordPress"]);
        assert_eq!(config.profiles["WooCommerce"], Profile::Wordpress);
        assert_eq!(config.region_keys, ["AWS_REGION", "DYNAMODB_REGION"]);
        assert!(config.services.is_empty(), "detected on each server");
        assert!(config.web_user.is_empty(), "the owner of the app's configuration");
        assert_eq!(config.command.max_concurrency, "100%");
        assert_eq!(
            (
                config.command.delivery_timeout_seconds,
                config.command.execution_timeout_seconds,
                config.max_wait.as_secs()
            ),
            (120, 300, 450)
        );
        assert!(config.manage_cron && config.cache_hosts.is_empty() && config.fence_region.is_none());
        assert!(config.alarm_policy.is_none() && !config.dry_run);
    }

    #[test]
    fn each_bad_variable_is_named() {
        for (var, value, needle) in [
            ("APP_REGION", "", "missing environment variable APP_REGION"),
            ("ENVIRONMENT", "prod;id", "ENVIRONMENT"),
            ("APP_PROFILES", "Magento=drupal", "APP_PROFILES"),
            ("APP_PROFILES", "Shop=envfile", "ENV_FILE"),
            ("MAGENTO_ROOT", "/var/www/../etc", "MAGENTO_ROOT"),
            ("ENV_FILE", "relative/path", "ENV_FILE"),
            ("REGION_KEYS", "aws_region", "REGION_KEYS"),
            ("SERVICES", "nginx;reboot", "SERVICES"),
            ("WEB_USER", "Root User", "WEB_USER"),
            ("MAX_ERRORS", "0", "every server is attempted"),
            (
                "COMMAND_TIMEOUT_SECONDS",
                "600",
                "DELIVERY_TIMEOUT_SECONDS and EXECUTION_TIMEOUT_SECONDS",
            ),
            ("MAX_CONCURRENCY", "all", "MAX_CONCURRENCY"),
            (
                "RESULT_WAIT_SECONDS",
                "300",
                "at least DELIVERY_TIMEOUT_SECONDS + EXECUTION_TIMEOUT_SECONDS = 420 s",
            ),
            ("CACHE_HOSTS", "us-east-1", "CACHE_HOSTS"),
            ("CACHE_HOSTS", "us-east-1=$(id)", "CACHE_HOSTS"),
            ("CRON_TIMERS", "magento-cron.service", "CRON_TIMERS"),
            ("MAINTENANCE_KEY", "maintenance", "MAINTENANCE_KEY"),
            ("FENCE_REGION", "us-west-2", "not APP_REGION"),
            ("DOCUMENT_NAME", "x", "DOCUMENT_NAME"),
            ("ALLOWED_ALARM_PREFIXES", "shop-", "FAILOVER_REGION"),
            (
                "FPM_POOL_FILES",
                "/etc/php/8.2/fpm/pool.d/www.conf,$(id)",
                "FPM_POOL_FILES",
            ),
        ] {
            let err = with(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{var}={value:?}: {err}");
        }
    }
}
