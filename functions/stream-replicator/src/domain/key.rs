//! The table's key schema and item keys in a canonical, hashable form.

use std::fmt;

use crate::domain::item::{Attributes, Value};
use crate::domain::number::{canonical_number, CanonicalNumber};

/// The key attributes of the replicated tables (learned with DescribeTable or configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    partition: String,
    sort: Option<String>,
}

/// Why a key schema description is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key schema {0:?}: expected a partition key name, optionally followed by a comma and a sort key name")]
pub struct InvalidKeySchema(pub String);

impl KeySchema {
    /// A schema with a partition key and an optional sort key.
    pub fn new(partition: impl Into<String>, sort: Option<String>) -> Result<Self, InvalidKeySchema> {
        let partition = partition.into();
        let valid = |name: &str| !name.is_empty() && name.len() <= 255;
        if !valid(&partition) || sort.as_deref().is_some_and(|s| !valid(s) || s == partition) {
            return Err(InvalidKeySchema(format!("{partition},{}", sort.unwrap_or_default())));
        }
        Ok(Self { partition, sort })
    }

    /// Parses `pk` or `pk,sk`.
    pub fn parse(text: &str) -> Result<Self, InvalidKeySchema> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        match parts.as_slice() {
            [pk] => Self::new(*pk, None),
            [pk, sk] => Self::new(*pk, Some((*sk).to_owned())),
            _ => Err(InvalidKeySchema(text.chars().take(80).collect())),
        }
    }

    /// The partition (hash) key name.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The sort (range) key name, if the table has one.
    pub fn sort(&self) -> Option<&str> {
        self.sort.as_deref()
    }

    /// Whether `name` is one of the key attributes.
    pub fn is_key_attribute(&self, name: &str) -> bool {
        name == self.partition || self.sort.as_deref() == Some(name)
    }

    /// The key of an item (or of a `Keys` map), canonicalized.
    pub(crate) fn key_of(&self, attributes: &Attributes) -> Result<ItemKey, KeyError> {
        let partition = key_part(&self.partition, attributes)?;
        let sort = match &self.sort {
            Some(name) => Some(key_part(name, attributes)?),
            None => None,
        };
        Ok(ItemKey { partition, sort })
    }

    /// Only the key attributes of `attributes` (as DeleteItem and BatchGetItem expect them).
    pub fn key_attributes(&self, attributes: &Attributes) -> Attributes {
        attributes
            .iter()
            .filter(|(name, _)| self.is_key_attribute(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

impl fmt::Display for KeySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sort {
            Some(sort) => write!(f, "{},{}", self.partition, sort),
            None => f.write_str(&self.partition),
        }
    }
}

/// Why a record or item has no usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A key attribute is absent.
    #[error("key attribute {0:?} is missing")]
    Missing(String),
    /// A key attribute is not a string, number or binary.
    #[error("key attribute {0:?} must be a string, number or binary")]
    WrongType(String),
}

/// One key attribute's value. Numbers are canonical, so `1` and `1.0` are the same key
/// (DynamoDB would reject a batch holding both as duplicates).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPart {
    /// A string key.
    S(String),
    /// A number key, canonicalized.
    N(CanonicalNumber),
    /// A binary key.
    B(Vec<u8>),
}

/// An item's primary key; equal keys denote the same item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey {
    partition: KeyPart,
    sort: Option<KeyPart>,
}

fn key_part(name: &str, attributes: &Attributes) -> Result<KeyPart, KeyError> {
    match attributes.get(name) {
        None => Err(KeyError::Missing(name.to_owned())),
        Some(Value::S(s)) => Ok(KeyPart::S(s.clone())),
        Some(Value::B(b)) => Ok(KeyPart::B(b.clone())),
        Some(Value::N(n)) => canonical_number(n)
            .map(KeyPart::N)
            .ok_or_else(|| KeyError::WrongType(name.to_owned())),
        Some(_) => Err(KeyError::WrongType(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, Value)]) -> Attributes {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn parses_one_or_two_names() {
        assert_eq!(KeySchema::parse("pk").unwrap(), KeySchema::new("pk", None).unwrap());
        let both = KeySchema::parse(" pk , sk ").unwrap();
        assert_eq!((both.partition(), both.sort()), ("pk", Some("sk")));
        assert_eq!(both.to_string(), "pk,sk");
        for bad in ["", "pk,", ",sk", "a,b,c", "pk,pk"] {
            assert!(KeySchema::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_canonical_and_ignore_other_attributes() {
        let schema = KeySchema::parse("pk,sk").unwrap();
        let a = attrs(&[("pk", Value::S("A".into())), ("sk", Value::N("1".into()))]);
        let b = attrs(&[
            ("pk", Value::S("A".into())),
            ("sk", Value::N("1.0".into())),
            ("qty", Value::N("3".into())),
        ]);
        assert_eq!(schema.key_of(&a).unwrap(), schema.key_of(&b).unwrap());
        let c = attrs(&[("pk", Value::S("A".into())), ("sk", Value::N("2".into()))]);
        assert_ne!(schema.key_of(&a).unwrap(), schema.key_of(&c).unwrap());
        assert_eq!(schema.key_attributes(&b).len(), 2);
        assert!(!schema.key_attributes(&b).contains_key("qty"));
    }

    #[test]
    fn binary_and_string_keys_differ() {
        let schema = KeySchema::parse("pk").unwrap();
        let s = schema.key_of(&attrs(&[("pk", Value::S("a".into()))])).unwrap();
        let b = schema.key_of(&attrs(&[("pk", Value::B(b"a".to_vec()))])).unwrap();
        assert_ne!(s, b);
    }

    #[test]
    fn missing_or_badly_typed_keys_are_errors() {
        let schema = KeySchema::parse("pk,sk").unwrap();
        assert_eq!(
            schema.key_of(&attrs(&[("pk", Value::S("A".into()))])),
            Err(KeyError::Missing("sk".into()))
        );
        assert_eq!(
            schema.key_of(&attrs(&[("pk", Value::Bool(true)), ("sk", Value::S("x".into()))])),
            Err(KeyError::WrongType("pk".into()))
        );
        assert_eq!(
            schema.key_of(&attrs(&[("pk", Value::S("A".into())), ("sk", Value::N("one".into()))])),
            Err(KeyError::WrongType("sk".into()))
        );
    }
}
