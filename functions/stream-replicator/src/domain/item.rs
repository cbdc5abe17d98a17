//! Items as the stream delivers them, with DynamoDB's size accounting and a stable content hash.
//!
//! The replicator works on the event's own attribute values (`serde_dynamo`), not on SDK
//! types: decisions stay testable without the SDK, and images move from the event into the
//! write requests without an intermediate copy.

use std::collections::HashMap;

use crate::domain::number::{number_key, parse_number};

pub use serde_dynamo::AttributeValue as Value;

/// An item or key: attribute name to value. Hashed with foldhash (randomly seeded, like
/// std's default), which is several times faster than SipHash on short attribute names.
pub type Attributes = HashMap<String, Value, foldhash::fast::RandomState>;

/// DynamoDB's maximum item size, attribute names included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The size DynamoDB charges for an item, following its documented rules: names and
/// strings in UTF-8 bytes, binaries in raw bytes, numbers about one byte per two
/// significant digits plus one, 1 byte for booleans and nulls, and for lists and maps 3 bytes
/// plus 1 byte per element.
pub fn item_size(item: &Attributes) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::S(s) => s.len(),
        Value::N(n) => number_size(n),
        Value::B(b) => b.len(),
        Value::Bool(_) | Value::Null(_) => 1,
        Value::Ss(set) => set.iter().map(String::len).sum(),
        Value::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        Value::Bs(set) => set.iter().map(Vec::len).sum(),
        Value::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

fn number_size(n: &str) -> usize {
    let digits = parse_number(n).map_or(n.len(), |v| v.digit_count());
    digits.div_ceil(2) + 1
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`), which
/// matters because the hash is stored in the table and checked by another deployment.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// Length-prefixed, so adjacent fields cannot run into each other.
    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }
}

/// A hash of the item's content, ignoring the attribute `exclude` (the origin marker).
/// Attribute order, set element order and number spelling do not change it.
pub fn content_hash(item: &Attributes, exclude: &str) -> u64 {
    let mut names: Vec<&String> = item.keys().filter(|name| name.as_str() != exclude).collect();
    names.sort_unstable();
    let mut hasher = Fnv::new();
    for name in names {
        hasher.field(name.as_bytes());
        hash_value(&mut hasher, &item[name]);
    }
    hasher.0
}

fn hash_value(hasher: &mut Fnv, value: &Value) {
    match value {
        Value::S(s) => {
            hasher.field(b"S");
            hasher.field(s.as_bytes());
        }
        Value::N(n) => {
            hasher.field(b"N");
            hash_number(hasher, n);
        }
        Value::B(b) => {
            hasher.field(b"B");
            hasher.field(b);
        }
        Value::Bool(b) => hasher.field(if *b { b"BOOL1" } else { b"BOOL0" }),
        Value::Null(_) => hasher.field(b"NULL"),
        Value::Ss(set) => {
            hasher.field(b"SS");
            let mut sorted: Vec<&String> = set.iter().collect();
            sorted.sort_unstable();
            sorted.dedup();
            for s in sorted {
                hasher.field(s.as_bytes());
            }
        }
        Value::Ns(set) => {
            hasher.field(b"NS");
            let mut sorted: Vec<String> = set.iter().map(|n| number_key(n)).collect();
            sorted.sort_unstable();
            sorted.dedup();
            for n in sorted {
                hasher.field(n.as_bytes());
            }
        }
        Value::Bs(set) => {
            hasher.field(b"BS");
            let mut sorted: Vec<&Vec<u8>> = set.iter().collect();
            sorted.sort_unstable();
            sorted.dedup();
            for b in sorted {
                hasher.field(b);
            }
        }
        Value::L(list) => {
            hasher.field(b"L");
            hasher.bytes(&(list.len() as u64).to_le_bytes());
            for v in list {
                hash_value(hasher, v);
            }
        }
        Value::M(map) => {
            hasher.field(b"M");
            let mut names: Vec<&String> = map.keys().collect();
            names.sort_unstable();
            hasher.bytes(&(names.len() as u64).to_le_bytes());
            for name in names {
                hasher.field(name.as_bytes());
                hash_value(hasher, &map[name]);
            }
        }
    }
}

/// Hashes the number's canonical spelling exactly as `field` would, without building it.
fn hash_number(hasher: &mut Fnv, n: &str) {
    match parse_number(n) {
        Some(view) => {
            let length = view.spell(|_| {});
            hasher.bytes(&(length as u64).to_le_bytes());
            view.spell(|part| hasher.bytes(part));
        }
        None => hasher.field(n.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, Value)]) -> Attributes {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn size_follows_dynamodb_rules() {
        let it = item(&[
            ("pk", Value::S("ORDER#1".into())), // 2 + 7
            ("qty", Value::N("12345".into())),  // 3 + (3 + 1)
            ("paid", Value::Bool(true)),        // 4 + 1
            ("blob", Value::B(vec![0; 10])),    // 4 + 10
            // 5 + 3 + (1 + 1) + (1 + 1): two one-byte elements with 1 byte overhead each
            ("items", Value::L(vec![Value::S("a".into()), Value::S("b".into())])),
            // 1 + 3 + (1 + 1 + 1) + (1 + 1 + 2): entries x => "y" and z => N "1"
            (
                "m",
                Value::M(HashMap::from([
                    ("x".to_string(), Value::S("y".into())),
                    ("z".to_string(), Value::N("1".into())),
                ])),
            ),
        ]);
        assert_eq!(item_size(&it), 9 + 7 + 5 + 14 + 12 + 11);
        assert_eq!(item_size(&Attributes::default()), 0);
    }

    #[test]
    fn content_hash_ignores_order_spelling_and_the_excluded_attribute() {
        let a = item(&[
            ("pk", Value::S("A".into())),
            ("n", Value::N("1.50".into())),
            ("tags", Value::Ss(vec!["x".into(), "y".into()])),
            ("marker", Value::S("us-east-1#put#1".into())),
        ]);
        let b = item(&[
            ("tags", Value::Ss(vec!["y".into(), "x".into()])),
            ("n", Value::N("1.5".into())),
            ("pk", Value::S("A".into())),
        ]);
        assert_eq!(content_hash(&a, "marker"), content_hash(&b, "marker"));
        assert_ne!(content_hash(&a, "marker"), content_hash(&a, "other"));
    }

    #[test]
    fn content_hash_sees_every_change() {
        let base = item(&[("pk", Value::S("A".into())), ("v", Value::N("1".into()))]);
        let variants = [
            item(&[("pk", Value::S("A".into())), ("v", Value::N("2".into()))]),
            item(&[("pk", Value::S("A".into())), ("v", Value::S("1".into()))]),
            item(&[("pk", Value::S("A".into())), ("w", Value::N("1".into()))]),
            item(&[("pk", Value::S("A".into()))]),
            item(&[
                ("pk", Value::S("A".into())),
                ("v", Value::L(vec![Value::N("1".into())])),
            ]),
            item(&[("pk", Value::S("A".into())), ("v", Value::Ns(vec!["1".into()]))]),
            // Field boundaries matter: "ab"+"c" is not "a"+"bc".
            item(&[
                ("pk", Value::S("A".into())),
                ("v", Value::Ss(vec!["ab".into(), "c".into()])),
            ]),
        ];
        let hashes: Vec<u64> = variants.iter().map(|v| content_hash(v, "m")).collect();
        for (i, h) in hashes.iter().enumerate() {
            assert_ne!(*h, content_hash(&base, "m"), "variant {i}");
        }
        let split = item(&[
            ("pk", Value::S("A".into())),
            ("v", Value::Ss(vec!["a".into(), "bc".into()])),
        ]);
        assert_ne!(content_hash(&split, "m"), hashes[6]);
    }

    #[test]
    fn content_hash_is_stable_across_builds() {
        // Pinned: the hash is stored in tables and compared by other deployments.
        let it = item(&[("pk", Value::S("A".into()))]);
        assert_eq!(content_hash(&it, "m"), 0x314a_4041_75a8_d528);
    }
}
