//! Database host names, validated so no value can carry anything but a host name.

use std::fmt;

/// A DNS host name or IPv4 address (letters, digits, dots, hyphens; RFC 1123 labels).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DbHost(String);

impl From<DbHost> for String {
    fn from(host: DbHost) -> Self {
        host.0
    }
}

/// Read back (the plan hands a report back to collect its results): validated again.
impl TryFrom<String> for DbHost {
    type Error = InvalidDbHost;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

/// Why a string is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a database host name (letters, digits, dots and hyphens; labels of 1-63 characters)")]
pub struct InvalidDbHost {
    /// The rejected input, truncated.
    pub value: String,
}

impl DbHost {
    /// Validates a host name.
    pub fn new(value: &str) -> Result<Self, InvalidDbHost> {
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if (1..=253).contains(&value.len()) && value.split('.').all(label_ok) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidDbHost {
                value: value.chars().take(80).collect(),
            })
        }
    }

    /// The host name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DbHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_endpoints_and_addresses() {
        for host in [
            "shop-db.c9akciq32.us-west-2.rds.amazonaws.com",
            "10.0.3.17",
            "localhost",
            "db1",
        ] {
            assert_eq!(DbHost::new(host).unwrap().as_str(), host);
        }
    }

    #[test]
    fn rejects_anything_that_could_be_more_than_a_host() {
        for bad in [
            "",
            "db host",
            "db;reboot",
            "$(id)",
            "`id`",
            "db'",
            "db\"",
            "db\nx",
            "-db",
            "db-",
            "a..b",
            ".db",
            "db:3306",
            "dé.example",
        ] {
            assert!(DbHost::new(bad).is_err(), "{bad:?}");
        }
        assert!(DbHost::new(&"a".repeat(64)).is_err());
    }
}
