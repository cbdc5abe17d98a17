//! The Lambda DynamoDB stream event as it arrives, read in one pass over the payload.
//!
//! [`read_records`] hands each record over as soon as it is read, so a 10,000-record batch
//! never exists twice in memory. Only the fields replication uses are read; the rest are
//! skipped without being built. Short strings borrow from the payload, `Keys` becomes
//! [`Attributes`](crate::domain::item::Attributes) directly, and the images stay raw text: only
//! the last `NewImage` of each key is ever built, and only the marker and version of an
//! `OldImage`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::dynamo_json::{Image, Name, RawImage};

/// Why [`read_records`] stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The payload is not a stream event.
    Json(serde_json::Error),
    /// The callback refused a record.
    Refused(E),
}

/// Reads `{"Records": [...]}` from `json`, handing each record to `each` in order as soon
/// as it is read; returns how many records there were. Stops at the first record `each`
/// refuses.
pub fn read_records<'a, E>(
    json: &'a str,
    mut each: impl FnMut(StreamEventRecord<'a>) -> Result<(), E>,
) -> Result<usize, ReadError<E>> {
    let mut refusal = None;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let read = EventSeed {
        each: &mut each,
        refusal: &mut refusal,
    }
    .deserialize(&mut deserializer)
    .and_then(|count| deserializer.end().map(|()| count));
    match (read, refusal) {
        (_, Some(refused)) => Err(ReadError::Refused(refused)),
        (Ok(count), None) => Ok(count),
        (Err(e), None) => Err(ReadError::Json(e)),
    }
}

struct EventSeed<'s, F, E> {
    each: &'s mut F,
    refusal: &'s mut Option<E>,
}

impl<'de, F, E> DeserializeSeed<'de> for EventSeed<'_, F, E>
where
    F: FnMut(StreamEventRecord<'de>) -> Result<(), E>,
{
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F, E> Visitor<'de> for EventSeed<'_, F, E>
where
    F: FnMut(StreamEventRecord<'de>) -> Result<(), E>,
{
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a DynamoDB stream event, {"Records": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut count = None;
        while let Some(key) = map.next_key::<Name<'de>>()? {
            if key.0 != "Records" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if count.is_some() {
                return Err(de::Error::duplicate_field("Records"));
            }
            count = Some(map.next_value_seed(RecordsSeed {
                each: &mut *self.each,
                refusal: &mut *self.refusal,
            })?);
        }
        count.ok_or_else(|| de::Error::missing_field("Records"))
    }
}

struct RecordsSeed<'s, F, E> {
    each: &'s mut F,
    refusal: &'s mut Option<E>,
}

impl<'de, F, E> DeserializeSeed<'de> for RecordsSeed<'_, F, E>
where
    F: FnMut(StreamEventRecord<'de>) -> Result<(), E>,
{
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F, E> Visitor<'de> for RecordsSeed<'_, F, E>
where
    F: FnMut(StreamEventRecord<'de>) -> Result<(), E>,
{
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of stream records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while let Some(record) = seq.next_element::<StreamEventRecord<'de>>()? {
            if let Err(refused) = (self.each)(record) {
                *self.refusal = Some(refused);
                return Err(de::Error::custom("record refused"));
            }
            count += 1;
        }
        Ok(count)
    }
}

/// `{"Records": [...]}`, read whole: what [`read_records`] reads one record at a time
/// (also used to name the faulty path of a malformed event).
#[derive(Debug, Deserialize)]
pub struct StreamEvent<'a> {
    /// The records, in stream order (only read to find the faulty path of a malformed event).
    #[allow(dead_code)]
    #[serde(rename = "Records", borrow)]
    pub records: Vec<StreamEventRecord<'a>>,
}

/// One record of the event.
#[derive(Debug, Deserialize)]
pub struct StreamEventRecord<'a> {
    /// `eventID`, used to name the record in errors.
    #[serde(rename = "eventID", borrow)]
    pub event_id: Cow<'a, str>,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName", borrow)]
    pub event_name: Cow<'a, str>,
    /// The stream the record comes from.
    #[serde(rename = "eventSourceARN", default, borrow)]
    pub event_source_arn: Option<Cow<'a, str>>,
    /// Present on deletes made by DynamoDB's TTL process.
    #[serde(rename = "userIdentity", default, borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    /// The change itself.
    #[serde(rename = "dynamodb", borrow)]
    pub change: StreamChange<'a>,
}

/// `userIdentity`.
#[derive(Debug, Deserialize)]
pub struct UserIdentity<'a> {
    /// `Service` for TTL deletes.
    #[serde(rename = "type", default, borrow)]
    pub kind: Cow<'a, str>,
    /// `dynamodb.amazonaws.com` for TTL deletes.
    #[serde(rename = "principalId", default, borrow)]
    pub principal_id: Cow<'a, str>,
}

/// The record's `dynamodb` object.
#[derive(Debug, Deserialize)]
pub struct StreamChange<'a> {
    /// `ApproximateCreationDateTime`, in epoch seconds.
    #[serde(rename = "ApproximateCreationDateTime", default)]
    pub created_at_seconds: Option<f64>,
    /// `Keys`; absent or `null` reads as empty.
    #[serde(rename = "Keys", default)]
    pub keys: Option<Image>,
    /// `NewImage`, when the stream view type has one (checked for well-formed JSON only).
    #[serde(rename = "NewImage", default, borrow)]
    pub new_image: Option<&'a RawValue>,
    /// `OldImage`, when the stream view type has one.
    #[serde(rename = "OldImage", default, borrow)]
    pub old_image: Option<RawImage<'a>>,
    /// `SequenceNumber`.
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"eventID": "1", "eventName": "INSERT", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"pk": {"S": "a"}}, "SequenceNumber": "7", "SizeBytes": 3}}"#;

    fn read(json: &str, refuse_at: Option<usize>) -> Result<Vec<String>, ReadError<usize>> {
        let mut seen = Vec::new();
        read_records(json, |record| {
            if refuse_at == Some(seen.len()) {
                return Err(seen.len());
            }
            seen.push(record.change.sequence_number.unwrap_or_default());
            Ok(())
        })
        .map(|count| {
            assert_eq!(count, seen.len());
            seen
        })
    }

    #[test]
    fn records_are_handed_over_in_order_and_other_fields_are_skipped() {
        let json = format!(r#"{{"extra": {{"a": [1, 2]}}, "Records": [{RECORD}, {RECORD}]}}"#);
        assert_eq!(read(&json, None).unwrap(), ["7", "7"]);
        assert_eq!(read(r#"{"Records": []}"#, None).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_refused_record_stops_the_reading() {
        let json = format!(r#"{{"Records": [{RECORD}, {RECORD}, {RECORD}]}}"#);
        assert!(matches!(read(&json, Some(1)), Err(ReadError::Refused(1))));
    }

    #[test]
    fn malformed_events_are_json_errors() {
        for json in [
            "{}",
            r#"{"Records": {}}"#,
            r#"{"Records": [], "Records": []}"#,
            r#"{"Records": []} trailing"#,
            r#"{"Records": [{"eventID": "1"}]}"#,
            "[1]",
        ] {
            assert!(matches!(read(json, None), Err(ReadError::Json(_))), "{json}");
        }
    }
}
