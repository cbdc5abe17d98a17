//! The replicator's configuration, read once at init from environment variables.

use std::str::FromStr;
use std::time::Duration;

use failover_core::{ConfigError, EnvReader, Region};

use crate::domain::key::KeySchema;

/// How changes are applied to the target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One-way: the target is a copy; BatchWriteItem puts and deletes, last change wins.
    Overwrite,
    /// Two-way (active-active): conditional writes, guarded by a numeric version or
    /// timestamp attribute; the higher value wins.
    LastWriterWins {
        /// The attribute holding the version (a DynamoDB number).
        version_attribute: String,
    },
}

/// What to do with deletes made by DynamoDB's time-to-live process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlPolicy {
    /// Delete the item in the target too (default: the target stays a faithful copy).
    Replicate,
    /// Leave the item; the target's own TTL removes it.
    Skip,
}

/// Where records that cannot be written go: an S3 bucket in the function's region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterConfig {
    /// The bucket (the stack creates it).
    pub bucket: String,
    /// The key prefix, ending in `/`; each source table gets its own folder below it.
    pub prefix: String,
    /// The key prefix of the conflict log (stranded changes that lost), ending in `/`.
    pub conflict_prefix: String,
}

/// Where the published active region is read, to tell stranded records from live ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRegionParameter {
    /// The parameter's name (`<PARAMETER_PREFIX>/active-region`).
    pub name: String,
    /// Its region (where the region-switch plan publishes: the target's).
    pub region: Region,
    /// Whether every change of the source is the shop's, or only those made while its
    /// region is the active one (`SOURCE_AUTHORITY`).
    pub authority: SourceAuthority,
}

/// Which of the source's changes are the shop's own (`SOURCE_AUTHORITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAuthority {
    /// `always` (the forward direction): the source is the primary; every change counts.
    Always,
    /// `while-active` (the reverse direction): the source is a copy except while its region
    /// is the published active region. Changes older than that moment are the other
    /// direction's copies; sending them back would overwrite newer writes stranded in the
    /// target (in overwrite mode nothing else recognises them).
    WhileActive,
}

impl FromStr for TtlPolicy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "replicate" => Ok(Self::Replicate),
            "skip" => Ok(Self::Skip),
            _ => Err(()),
        }
    }
}

/// Everything the replicator needs to know, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatorConfig {
    /// The table whose stream feeds the function (records from any other table are refused).
    pub source_table: String,
    /// The source table's region (KEYS_ONLY reads go there).
    pub source_region: Region,
    /// The table written to.
    pub target_table: String,
    /// The target table's region.
    pub target_region: Region,
    /// Overwrite or last-writer-wins.
    pub mode: Mode,
    /// The origin marker attribute's name.
    pub marker_attribute: String,
    /// TTL delete policy.
    pub ttl_deletes: TtlPolicy,
    /// Where records that cannot be written go.
    pub dead_letter: DeadLetterConfig,
    /// Attempts per write request before its change goes to the dead-letter store.
    pub write_attempts: u32,
    /// The published active region, when configured (`PARAMETER_PREFIX`).
    pub active_region: Option<ActiveRegionParameter>,
    /// The key schema when configured; otherwise learned from the target table at init.
    pub key_schema: Option<KeySchema>,
    /// Upper bound of write (and read) requests in flight at once.
    pub write_concurrency: usize,
    /// Time kept free before the invocation's deadline to report progress.
    pub deadline_margin: Duration,
    /// CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
}

/// Default name of the origin marker attribute.
pub const DEFAULT_MARKER_ATTRIBUTE: &str = "replica_origin";

impl ReplicatorConfig {
    /// Reads and validates the configuration; see the function's README for each variable.
    pub fn from_env(env: &EnvReader) -> Result<Self, ConfigError> {
        let target_table = env
            .required("TARGET_TABLE_NAME", "the target DynamoDB table name")?
            .to_owned();
        let target_region = env.region("TARGET_REGION")?;
        let source_table = env.optional("SOURCE_TABLE_NAME").unwrap_or(&target_table).to_owned();
        let source_region = match env.optional("SOURCE_REGION") {
            Some(_) => env.region("SOURCE_REGION")?,
            // Lambda sets AWS_REGION to the function's region, which is the stream's region.
            None => env.region("AWS_REGION").map_err(|_| ConfigError::Missing {
                var: "SOURCE_REGION".into(),
                expected: "the source table's region (defaults to AWS_REGION, which is not set either)".into(),
            })?,
        };
        if source_table == target_table && source_region == target_region {
            return Err(ConfigError::Inconsistent {
                vars: "SOURCE_TABLE_NAME, SOURCE_REGION, TARGET_TABLE_NAME, TARGET_REGION".into(),
                problem: format!("source and target are the same table {target_table} in {target_region}"),
            });
        }
        if let Some(value) = env.optional("UNWRITABLE_RECORDS") {
            return Err(ConfigError::invalid(
                "UNWRITABLE_RECORDS",
                value,
                "nothing: the variable is no longer read, records that cannot be written go to \
                 the dead-letter bucket (DEAD_LETTER_BUCKET); remove it",
            ));
        }
        let marker_attribute = env
            .optional("ORIGIN_MARKER_ATTRIBUTE")
            .unwrap_or(DEFAULT_MARKER_ATTRIBUTE)
            .to_owned();
        let mode = match env.optional("REPLICATION_MODE").unwrap_or("overwrite") {
            "overwrite" => Mode::Overwrite,
            "last-writer-wins" => Mode::LastWriterWins {
                version_attribute: env
                    .required(
                        "VERSION_ATTRIBUTE",
                        "the numeric version or timestamp attribute last-writer-wins compares",
                    )?
                    .to_owned(),
            },
            other => {
                return Err(ConfigError::invalid(
                    "REPLICATION_MODE",
                    other,
                    "overwrite or last-writer-wins",
                ))
            }
        };
        if let Mode::LastWriterWins { version_attribute } = &mode {
            if *version_attribute == marker_attribute {
                return Err(ConfigError::Inconsistent {
                    vars: "VERSION_ATTRIBUTE, ORIGIN_MARKER_ATTRIBUTE".into(),
                    problem: format!("both name {marker_attribute}"),
                });
            }
        }
        let key_schema = match env.optional("KEY_ATTRIBUTES") {
            None => None,
            Some(raw) => Some(KeySchema::parse(raw).map_err(|_| {
                ConfigError::invalid(
                    "KEY_ATTRIBUTES",
                    raw,
                    "the partition key name, or partition and sort key names separated by a comma",
                )
            })?),
        };
        let active_region = active_region(env, &target_region)?;
        let config = Self {
            source_table,
            source_region,
            target_table,
            target_region,
            mode,
            marker_attribute,
            ttl_deletes: env.parsed_or("TTL_DELETES", TtlPolicy::Replicate, "replicate or skip")?,
            dead_letter: dead_letter(env)?,
            write_attempts: write_attempts(env)?,
            active_region,
            key_schema,
            write_concurrency: concurrency(env)?,
            deadline_margin: env.seconds("DEADLINE_MARGIN_SECONDS", Duration::from_secs(3), 1..=60)?,
            metrics_namespace: env
                .optional("METRICS_NAMESPACE")
                .unwrap_or(failover_core::emf::NAMESPACE)
                .to_owned(),
        };
        if let Some(schema) = &config.key_schema {
            config.check_schema(schema)?;
        }
        Ok(config)
    }

    /// The version attribute in last-writer-wins mode.
    pub fn version_attribute(&self) -> Option<&str> {
        match &self.mode {
            Mode::Overwrite => None,
            Mode::LastWriterWins { version_attribute } => Some(version_attribute),
        }
    }

    /// Checks that neither the marker nor the version attribute is a key attribute (the
    /// replicator rewrites the marker, and a key cannot serve as a version).
    pub fn check_schema(&self, schema: &KeySchema) -> Result<(), ConfigError> {
        for (var, name) in [
            ("ORIGIN_MARKER_ATTRIBUTE", Some(self.marker_attribute.as_str())),
            ("VERSION_ATTRIBUTE", self.version_attribute()),
        ] {
            if let Some(name) = name.filter(|n| schema.is_key_attribute(n)) {
                return Err(ConfigError::Inconsistent {
                    vars: var.into(),
                    problem: format!("{name} is a key attribute of the table (key schema {schema})"),
                });
            }
        }
        Ok(())
    }
}

/// Default key prefix of the dead-letter objects.
pub const DEFAULT_DEAD_LETTER_PREFIX: &str = "dead-letter/";

fn dead_letter(env: &EnvReader) -> Result<DeadLetterConfig, ConfigError> {
    let bucket = env.required(
        "DEAD_LETTER_BUCKET",
        "the S3 bucket that keeps records which cannot be written",
    )?;
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_bucket {
        return Err(ConfigError::invalid(
            "DEAD_LETTER_BUCKET",
            bucket,
            "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens",
        ));
    }
    let prefix = key_prefix(env, "DEAD_LETTER_PREFIX", DEFAULT_DEAD_LETTER_PREFIX)?;
    let conflict_prefix = key_prefix(env, "CONFLICT_PREFIX", DEFAULT_CONFLICT_PREFIX)?;
    if prefix.starts_with(&conflict_prefix) || conflict_prefix.starts_with(&prefix) {
        return Err(ConfigError::Inconsistent {
            vars: "DEAD_LETTER_PREFIX, CONFLICT_PREFIX".into(),
            problem: format!("{prefix} and {conflict_prefix} overlap; a redrive would read conflicts as dead letters"),
        });
    }
    Ok(DeadLetterConfig {
        bucket: bucket.to_owned(),
        prefix,
        conflict_prefix,
    })
}

/// Default key prefix of the conflict log.
pub const DEFAULT_CONFLICT_PREFIX: &str = "conflicts/";

fn key_prefix(env: &EnvReader, var: &str, default: &str) -> Result<String, ConfigError> {
    let prefix = env.optional(var).unwrap_or(default);
    let valid = !prefix.is_empty()
        && prefix.len() <= 256
        && !prefix.starts_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !valid {
        return Err(ConfigError::invalid(
            var,
            prefix,
            "an S3 key prefix of at most 256 letters, digits, '-', '_', '.' and '/', not starting with '/'",
        ));
    }
    Ok(if prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    })
}

/// `<PARAMETER_PREFIX>/active-region` in `PARAMETER_REGION` (default: the target's region,
/// where the region-switch plan publishes); none when `PARAMETER_PREFIX` is not set.
fn active_region(env: &EnvReader, target_region: &Region) -> Result<Option<ActiveRegionParameter>, ConfigError> {
    let authority = match env.optional("SOURCE_AUTHORITY").unwrap_or("always") {
        "always" => SourceAuthority::Always,
        "while-active" => SourceAuthority::WhileActive,
        other => {
            return Err(ConfigError::invalid(
                "SOURCE_AUTHORITY",
                other,
                "always or while-active",
            ))
        }
    };
    let Some(prefix) = env.optional("PARAMETER_PREFIX") else {
        if authority == SourceAuthority::WhileActive {
            return Err(ConfigError::Inconsistent {
                vars: "SOURCE_AUTHORITY, PARAMETER_PREFIX".into(),
                problem: "while-active needs the published active region: set PARAMETER_PREFIX".into(),
            });
        }
        return Ok(None);
    };
    let names = failover_core::parameters::ParameterNames::new("PARAMETER_PREFIX", prefix)?;
    let region = match env.optional("PARAMETER_REGION") {
        Some(_) => env.region("PARAMETER_REGION")?,
        None => target_region.clone(),
    };
    Ok(Some(ActiveRegionParameter {
        name: names.active_region(),
        region,
        authority,
    }))
}

fn write_attempts(env: &EnvReader) -> Result<u32, ConfigError> {
    match env.optional("WRITE_ATTEMPTS") {
        None => Ok(8),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => Ok(n),
            _ => Err(ConfigError::invalid(
                "WRITE_ATTEMPTS",
                raw,
                "a whole number from 1 to 20",
            )),
        },
    }
}

fn concurrency(env: &EnvReader) -> Result<usize, ConfigError> {
    const EXPECTED: &str = "a whole number from 1 to 64";
    match env.optional("WRITE_CONCURRENCY") {
        None => Ok(8),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(ConfigError::invalid("WRITE_CONCURRENCY", raw, EXPECTED)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_pairs(pairs.iter().copied())
    }

    const BASE: &[(&str, &str)] = &[
        ("TARGET_TABLE_NAME", "shop-data"),
        ("TARGET_REGION", "us-west-2"),
        ("AWS_REGION", "us-east-1"),
        ("DEAD_LETTER_BUCKET", "shop-dead-letter"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> EnvReader {
        env(&BASE.iter().chain(extra).copied().collect::<Vec<_>>())
    }

    #[test]
    fn defaults_are_documented_ones() {
        let c = ReplicatorConfig::from_env(&with(&[])).unwrap();
        assert_eq!(c.source_table, "shop-data");
        assert_eq!(c.source_region.as_str(), "us-east-1");
        assert_eq!(c.mode, Mode::Overwrite);
        assert_eq!(c.marker_attribute, "replica_origin");
        assert_eq!(c.ttl_deletes, TtlPolicy::Replicate);
        assert_eq!(c.dead_letter.bucket, "shop-dead-letter");
        assert_eq!(c.dead_letter.prefix, "dead-letter/");
        assert_eq!(c.write_attempts, 8);
        assert_eq!(c.dead_letter.conflict_prefix, "conflicts/");
        assert_eq!(c.active_region, None);
        assert_eq!(c.key_schema, None);
        assert_eq!(c.write_concurrency, 8);
        assert_eq!(c.deadline_margin, Duration::from_secs(3));
        assert_eq!(c.metrics_namespace, "ShopFailover");
        assert_eq!(c.version_attribute(), None);
    }

    #[test]
    fn everything_can_be_set() {
        let c = ReplicatorConfig::from_env(&with(&[
            ("SOURCE_TABLE_NAME", "shop-data-eu"),
            ("SOURCE_REGION", "eu-west-1"),
            ("REPLICATION_MODE", "last-writer-wins"),
            ("VERSION_ATTRIBUTE", "updated_at"),
            ("ORIGIN_MARKER_ATTRIBUTE", "origin"),
            ("TTL_DELETES", "skip"),
            ("DEAD_LETTER_PREFIX", "replicator/dlq"),
            ("WRITE_ATTEMPTS", "3"),
            ("PARAMETER_PREFIX", "/shop/failover"),
            ("SOURCE_AUTHORITY", "while-active"),
            ("KEY_ATTRIBUTES", "pk,sk"),
            ("WRITE_CONCURRENCY", "32"),
            ("DEADLINE_MARGIN_SECONDS", "5"),
        ]))
        .unwrap();
        assert_eq!(c.source_table, "shop-data-eu");
        assert_eq!(c.source_region.as_str(), "eu-west-1");
        assert_eq!(c.version_attribute(), Some("updated_at"));
        assert_eq!(c.marker_attribute, "origin");
        assert_eq!(c.ttl_deletes, TtlPolicy::Skip);
        assert_eq!(c.dead_letter.prefix, "replicator/dlq/");
        assert_eq!(c.write_attempts, 3);
        let active = c.active_region.unwrap();
        assert_eq!(
            (active.name.as_str(), active.region.as_str()),
            ("/shop/failover/active-region", "us-west-2")
        );
        assert_eq!(active.authority, SourceAuthority::WhileActive);
        assert_eq!(c.key_schema, Some(KeySchema::parse("pk,sk").unwrap()));
        assert_eq!(c.write_concurrency, 32);
        assert_eq!(c.deadline_margin, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("REPLICATION_MODE", "both")], "REPLICATION_MODE=\"both\""),
            (&[("REPLICATION_MODE", "last-writer-wins")], "VERSION_ATTRIBUTE"),
            (&[("SOURCE_AUTHORITY", "sometimes")], "SOURCE_AUTHORITY=\"sometimes\""),
            (&[("SOURCE_AUTHORITY", "while-active")], "PARAMETER_PREFIX"),
            (
                &[("TTL_DELETES", "maybe")],
                "TTL_DELETES=\"maybe\": expected replicate or skip",
            ),
            (
                &[("UNWRITABLE_RECORDS", "skip")],
                "UNWRITABLE_RECORDS=\"skip\": expected nothing",
            ),
            (&[("DEAD_LETTER_BUCKET", "Shop_DLQ")], "DEAD_LETTER_BUCKET"),
            (&[("DEAD_LETTER_BUCKET", "ab")], "DEAD_LETTER_BUCKET"),
            (&[("DEAD_LETTER_PREFIX", "/abs")], "DEAD_LETTER_PREFIX"),
            (&[("DEAD_LETTER_PREFIX", "a b")], "DEAD_LETTER_PREFIX"),
            (&[("WRITE_ATTEMPTS", "0")], "WRITE_ATTEMPTS"),
            (&[("CONFLICT_PREFIX", "dead-letter/c")], "overlap"),
            (&[("PARAMETER_PREFIX", "no-slash")], "PARAMETER_PREFIX"),
            (
                &[("PARAMETER_PREFIX", "/shop/failover"), ("PARAMETER_REGION", "mars")],
                "PARAMETER_REGION",
            ),
            (&[("WRITE_ATTEMPTS", "21")], "WRITE_ATTEMPTS"),
            (&[("WRITE_CONCURRENCY", "0")], "WRITE_CONCURRENCY"),
            (&[("WRITE_CONCURRENCY", "65")], "WRITE_CONCURRENCY"),
            (&[("KEY_ATTRIBUTES", "a,b,c")], "KEY_ATTRIBUTES"),
            (&[("SOURCE_REGION", "mars")], "SOURCE_REGION"),
            (&[("KEY_ATTRIBUTES", "pk,replica_origin")], "ORIGIN_MARKER_ATTRIBUTE"),
            (
                &[
                    ("REPLICATION_MODE", "last-writer-wins"),
                    ("VERSION_ATTRIBUTE", "replica_origin"),
                ],
                "VERSION_ATTRIBUTE, ORIGIN_MARKER_ATTRIBUTE",
            ),
            (
                &[
                    ("REPLICATION_MODE", "last-writer-wins"),
                    ("VERSION_ATTRIBUTE", "pk"),
                    ("KEY_ATTRIBUTES", "pk"),
                ],
                "pk is a key attribute",
            ),
        ];
        for (extra, expected) in cases {
            let err = ReplicatorConfig::from_env(&with(extra)).unwrap_err().to_string();
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
    }

    #[test]
    fn required_variables_and_self_replication_are_refused() {
        let err = ReplicatorConfig::from_env(&env(&[("TARGET_REGION", "us-west-2")])).unwrap_err();
        assert!(err.to_string().contains("TARGET_TABLE_NAME"));
        let err = ReplicatorConfig::from_env(&env(&[("TARGET_TABLE_NAME", "t"), ("TARGET_REGION", "us-west-2")]))
            .unwrap_err();
        assert!(err.to_string().contains("SOURCE_REGION"), "{err}");
        let err = ReplicatorConfig::from_env(&env(&[
            ("TARGET_TABLE_NAME", "t"),
            ("TARGET_REGION", "us-east-1"),
            ("AWS_REGION", "us-east-1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("same table t in us-east-1"), "{err}");
        let err = ReplicatorConfig::from_env(&env(&[
            ("TARGET_TABLE_NAME", "t"),
            ("TARGET_REGION", "us-west-2"),
            ("AWS_REGION", "us-east-1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DEAD_LETTER_BUCKET"), "{err}");
    }
}
