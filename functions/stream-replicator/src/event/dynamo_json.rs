//! DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, `{"M": {...}}`, ...) read straight into
//! [`Value`]s in one pass.
//!
//! serde_dynamo's reader allocates a `String` for every type tag and checks for a second
//! tag with another; a 10,000-record batch holds hundreds of thousands of values, so this
//! reader matches the tag in place instead. The result is the same [`Attributes`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::item::{Attributes, Value};

/// An item image or key map in DynamoDB JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image(pub Attributes);

/// One attribute value in DynamoDB JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Dynamo(pub Value);

/// An image kept as raw text per attribute: only a few of its attributes are ever read,
/// so the rest are checked for well-formed JSON and never built.
#[derive(Debug, Clone, Default)]
pub struct RawImage<'a>(pub Vec<(Name<'a>, &'a RawValue)>);

/// An attribute name, borrowed from the payload unless it holds JSON escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name<'a>(pub Cow<'a, str>);

/// The type tags of DynamoDB JSON.
#[derive(Deserialize)]
#[allow(clippy::upper_case_acronyms)]
enum Tag {
    S,
    N,
    B,
    BOOL,
    NULL,
    M,
    L,
    SS,
    NS,
    BS,
}

impl RawImage<'_> {
    /// The attribute `name`, parsed; `None` when the image does not hold it.
    pub fn parse(&self, name: &str) -> Option<Result<Value, serde_json::Error>> {
        let (_, raw) = self.0.iter().rev().find(|(n, _)| n.0 == name)?;
        Some(serde_json::from_str::<Dynamo>(raw.get()).map(|d| d.0))
    }
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    aws_smithy_types::base64::decode(text).map_err(|e| format!("invalid base64 in a binary value: {e}"))
}

impl<'de> Deserialize<'de> for Dynamo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DynamoVisitor;
        impl<'de> Visitor<'de> for DynamoVisitor {
            type Value = Dynamo;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a DynamoDB attribute value: an object with one key "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS" or "BS""#)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dynamo, A::Error> {
                let tag: Tag = map
                    .next_key()?
                    .ok_or_else(|| de::Error::custom("an attribute value has no type key"))?;
                let value = match tag {
                    Tag::S => Value::S(map.next_value()?),
                    Tag::N => Value::N(map.next_value()?),
                    Tag::B => Value::B(base64(&map.next_value::<String>()?).map_err(de::Error::custom)?),
                    Tag::BOOL => Value::Bool(map.next_value()?),
                    Tag::NULL => Value::Null(map.next_value()?),
                    Tag::M => Value::M(map.next_value::<NestedMap>()?.0),
                    Tag::L => Value::L(map.next_value::<Vec<Dynamo>>()?.into_iter().map(|d| d.0).collect()),
                    Tag::SS => Value::Ss(map.next_value()?),
                    Tag::NS => Value::Ns(map.next_value()?),
                    Tag::BS => Value::Bs(
                        map.next_value::<Vec<String>>()?
                            .iter()
                            .map(|text| base64(text))
                            .collect::<Result<_, _>>()
                            .map_err(de::Error::custom)?,
                    ),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("an attribute value has more than one type key"));
                }
                Ok(Dynamo(value))
            }
        }
        deserializer.deserialize_map(DynamoVisitor)
    }
}

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData)).map(Image)
    }
}

/// Written back as DynamoDB JSON (the dead-letter envelope), so that [`Image`]'s reader
/// reads it again unchanged: binaries in base64, numbers as their strings.
impl Serialize for Image {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, &Tagged(value))?;
        }
        map.end()
    }
}

/// One value written as DynamoDB JSON.
struct Tagged<'a>(&'a Value);

/// A list of values written as DynamoDB JSON.
struct TaggedList<'a>(&'a [Value]);

/// A binary set written as base64 strings.
struct Base64List<'a>(&'a [Vec<u8>]);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use aws_smithy_types::base64::encode;
        let mut map = serializer.serialize_map(Some(1))?;
        match self.0 {
            Value::S(s) => map.serialize_entry("S", s)?,
            Value::N(n) => map.serialize_entry("N", n)?,
            Value::B(b) => map.serialize_entry("B", &encode(b))?,
            Value::Bool(b) => map.serialize_entry("BOOL", b)?,
            Value::Null(n) => map.serialize_entry("NULL", n)?,
            Value::Ss(set) => map.serialize_entry("SS", set)?,
            Value::Ns(set) => map.serialize_entry("NS", set)?,
            Value::Bs(set) => map.serialize_entry("BS", &Base64List(set))?,
            Value::L(list) => map.serialize_entry("L", &TaggedList(list))?,
            Value::M(nested) => {
                let nested: Attributes = nested.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                map.serialize_entry("M", &Image(nested))?
            }
        }
        map.end()
    }
}

impl Serialize for TaggedList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for value in self.0 {
            seq.serialize_element(&Tagged(value))?;
        }
        seq.end()
    }
}

impl Serialize for Base64List<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for bytes in self.0 {
            seq.serialize_element(&aws_smithy_types::base64::encode(bytes))?;
        }
        seq.end()
    }
}

/// A nested `M` value, which serde_dynamo keeps in a std `HashMap`.
struct NestedMap(HashMap<String, Value>);

impl<'de> Deserialize<'de> for NestedMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData)).map(NestedMap)
    }
}

/// Reads a map of attribute names to values into a `HashMap` with hasher `S`.
struct MapVisitor<S>(PhantomData<S>);

impl<'de, S: BuildHasher + Default> Visitor<'de> for MapVisitor<S> {
    type Value = HashMap<String, Value, S>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of attribute names to DynamoDB attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Room for seven attributes (one table of eight buckets): a key map wastes a few
        // buckets, and most images need no rehash on the way.
        let mut attributes = HashMap::with_capacity_and_hasher(7, S::default());
        while let Some((name, value)) = map.next_entry::<String, Dynamo>()? {
            attributes.insert(name, value.0);
        }
        Ok(attributes)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawImage<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawImageVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for RawImageVisitor<'a> {
            type Value = RawImage<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attribute names to DynamoDB attribute values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawImage<'a>, A::Error> {
                let mut attributes = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Name<'a>, &'a RawValue>()? {
                    attributes.push(entry);
                }
                Ok(RawImage(attributes))
            }
        }
        deserializer.deserialize_map(RawImageVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for NameVisitor<'a> {
            type Value = Name<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn image(json: &str) -> Result<Attributes, serde_json::Error> {
        serde_json::from_str::<Image>(json).map(|i| i.0)
    }

    /// One attribute of every DynamoDB type.
    const EVERY_TYPE: &str = r#"{
            "s": {"S": "text \"quoted\" \u00e9"}, "n": {"N": "-1.5e3"}, "b": {"B": "AAH/"},
            "t": {"BOOL": true}, "z": {"NULL": true},
            "m": {"M": {"inner": {"L": [{"S": "a"}, {"N": "1"}, {"M": {}}]}}},
            "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AA==", "AQI="]}
        }"#;

    #[test]
    fn every_type_written_back_reads_the_same() {
        let json = EVERY_TYPE;
        let read = image(json).unwrap();
        let written = serde_json::to_string(&Image(read.clone())).unwrap();
        assert_eq!(image(&written).unwrap(), read, "{written}");
        assert!(written.contains(r#""b":{"B":"AAH/"}"#), "{written}");
    }

    #[test]
    fn every_type_reads_as_serde_dynamo_reads_it() {
        let json = EVERY_TYPE;
        let ours = image(json).unwrap();
        let theirs: Attributes = serde_json::from_str::<serde_dynamo::Item>(json)
            .unwrap()
            .into_inner()
            .into_iter()
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours["b"], Value::B(vec![0, 1, 255]));
        assert_eq!(ours["s"], Value::S("text \"quoted\" é".into()));
    }

    #[test]
    fn malformed_values_are_errors_that_say_why() {
        for (json, expected) in [
            (r#"{"a": {}}"#, "has no type key"),
            (r#"{"a": {"S": "x", "N": "1"}}"#, "more than one type key"),
            (r#"{"a": {"X": "1"}}"#, "unknown variant `X`"),
            (r#"{"a": {"S": 1}}"#, "invalid type"),
            (r#"{"a": {"B": "not base64!"}}"#, "invalid base64"),
            (r#"{"a": "plain"}"#, "a DynamoDB attribute value"),
        ] {
            let err = image(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn raw_images_parse_only_the_attributes_asked_for() {
        let json = r#"{"v": {"N": "7"}, "big": {"S": "ignored"}, "odd\"name": {"BOOL": false}}"#;
        let raw: RawImage<'_> = serde_json::from_str(json).unwrap();
        assert_eq!(raw.0.len(), 3);
        assert!(matches!(raw.0[0].0, Name(Cow::Borrowed("v"))));
        assert!(matches!(&raw.0[2].0, Name(Cow::Owned(n)) if n == "odd\"name"));
        assert_eq!(raw.parse("v").unwrap().unwrap(), Value::N("7".into()));
        assert_eq!(raw.parse("odd\"name").unwrap().unwrap(), Value::Bool(false));
        assert!(raw.parse("missing").is_none());
        let bad: RawImage<'_> = serde_json::from_str(r#"{"v": {"Q": 1}}"#).unwrap();
        assert!(bad.parse("v").unwrap().is_err());
        assert!(serde_json::from_str::<RawImage<'_>>(r#"{"v": {"N": "1"}"#).is_err());
    }
}
