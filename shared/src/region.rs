//! AWS region names, validated once so no other code has to.

use std::fmt;
use std::str::FromStr;

/// A syntactically valid AWS region name such as `us-east-1` or `us-gov-west-1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Region(String);

/// Why a string is not a region name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an AWS region name (expected lowercase words and a number, like us-east-1)")]
pub struct InvalidRegion {
    /// The rejected input (truncated to keep logs small).
    pub value: String,
}

impl Region {
    /// Parses and validates a region name.
    pub fn new(value: &str) -> Result<Self, InvalidRegion> {
        if is_region_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidRegion {
                value: value.chars().take(64).collect(),
            })
        }
    }

    /// The region name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Region names are 2–4 lowercase words followed by a number: `eu-west-1`, `us-gov-east-1`.
fn is_region_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    if !(3..=5).contains(&parts.len()) || value.len() > 32 {
        return false;
    }
    let (number, words) = parts.split_last().expect("at least three parts");
    let number_ok = !number.is_empty() && number.len() <= 2 && number.bytes().all(|b| b.is_ascii_digit());
    let words_ok = words
        .iter()
        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
    number_ok && words_ok
}

impl FromStr for Region {
    type Err = InvalidRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Region::new(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_region_names() {
        for name in [
            "us-east-1",
            "us-west-2",
            "eu-central-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
        ] {
            assert_eq!(Region::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_anything_else() {
        for name in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1; rm -rf /",
            "us_east_1",
            "us--1",
            "us-east-123",
            "east-1",
            "us-east-1\n",
        ] {
            let err = Region::new(name).unwrap_err();
            assert!(err.to_string().contains("not an AWS region name"), "{name:?}");
        }
    }

    #[test]
    fn deserializes_with_validation() {
        let ok: Region = serde_json::from_str("\"eu-west-1\"").unwrap();
        assert_eq!(ok.to_string(), "eu-west-1");
        assert!(serde_json::from_str::<Region>("\"moon-1\"").is_err());
    }
}
