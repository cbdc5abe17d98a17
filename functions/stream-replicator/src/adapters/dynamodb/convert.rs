//! Conversions between the event's attribute values and the SDK's.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as SdkValue;
use aws_smithy_types::Blob;

use crate::domain::item::{Attributes, Value};

/// The SDK form of an item (cloned: the domain item stays available for retries).
pub fn item_to_sdk(item: &Attributes) -> HashMap<String, SdkValue> {
    item.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()
}

/// The SDK form of one value.
pub fn to_sdk(value: &Value) -> SdkValue {
    match value {
        Value::S(s) => SdkValue::S(s.clone()),
        Value::N(n) => SdkValue::N(n.clone()),
        Value::B(b) => SdkValue::B(Blob::new(b.clone())),
        Value::Bool(b) => SdkValue::Bool(*b),
        Value::Null(n) => SdkValue::Null(*n),
        Value::Ss(set) => SdkValue::Ss(set.clone()),
        Value::Ns(set) => SdkValue::Ns(set.clone()),
        Value::Bs(set) => SdkValue::Bs(set.iter().map(|b| Blob::new(b.clone())).collect()),
        Value::L(list) => SdkValue::L(list.iter().map(to_sdk).collect()),
        Value::M(map) => SdkValue::M(map.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect()),
    }
}

/// An attribute type this SDK version does not know (newer than the crate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute {0:?} has a type unknown to this SDK version")]
pub struct UnknownType(pub String);

/// The domain form of an SDK item.
pub fn item_from_sdk(item: HashMap<String, SdkValue>) -> Result<Attributes, UnknownType> {
    item.into_iter()
        .map(|(name, value)| match from_sdk(value) {
            Some(v) => Ok((name, v)),
            None => Err(UnknownType(name)),
        })
        .collect()
}

/// The domain form of one SDK value; `None` for a type unknown to this SDK version.
pub fn from_sdk(value: SdkValue) -> Option<Value> {
    Some(match value {
        SdkValue::S(s) => Value::S(s),
        SdkValue::N(n) => Value::N(n),
        SdkValue::B(b) => Value::B(b.into_inner()),
        SdkValue::Bool(b) => Value::Bool(b),
        SdkValue::Null(n) => Value::Null(n),
        SdkValue::Ss(set) => Value::Ss(set),
        SdkValue::Ns(set) => Value::Ns(set),
        SdkValue::Bs(set) => Value::Bs(set.into_iter().map(Blob::into_inner).collect()),
        SdkValue::L(list) => Value::L(list.into_iter().map(from_sdk).collect::<Option<_>>()?),
        SdkValue::M(map) => Value::M(
            map.into_iter()
                .map(|(k, v)| from_sdk(v).map(|v| (k, v)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let item: Attributes = [
            ("s", Value::S("x".into())),
            ("n", Value::N("1.5".into())),
            ("b", Value::B(vec![0, 1, 255])),
            ("bool", Value::Bool(true)),
            ("null", Value::Null(true)),
            ("ss", Value::Ss(vec!["a".into(), "b".into()])),
            ("ns", Value::Ns(vec!["1".into(), "2".into()])),
            ("bs", Value::Bs(vec![vec![1], vec![2]])),
            ("l", Value::L(vec![Value::S("x".into()), Value::N("2".into())])),
            (
                "m",
                Value::M([("inner".to_string(), Value::L(vec![Value::Bool(false)]))].into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let sdk = item_to_sdk(&item);
        assert_eq!(sdk["b"], SdkValue::B(Blob::new(vec![0, 1, 255])));
        assert_eq!(item_from_sdk(sdk).unwrap(), item);
    }
}
