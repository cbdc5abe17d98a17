//! Turns the Lambda DynamoDB event into validated [`SourceChange`]s.
//!
//! The whole batch is validated before anything is written: a malformed event, a record
//! without keys or a record from another table fails the invocation with a NonRetryable
//! error naming the record, and nothing is written half-way.
//!
//! Reading is in two steps. [`Decoder::decode_json`] checks every record and keeps its new
//! image as raw (well-formed) JSON; [`Decoder::complete`] builds and checks the image, and
//! is only needed for the last change of each key: a superseded image is never written,
//! so it is never built.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::config::ReplicatorConfig;
use crate::domain::item::Attributes;
use crate::domain::key::KeySchema;
use crate::error::EventError;
use crate::event::change::{ChangeKind, SourceChange};
use crate::event::dynamo_json::{Image, RawImage};
use crate::event::wire::{read_records, ReadError, StreamEvent, StreamEventRecord};

/// The error for a payload that is not a stream event, naming the faulty path, e.g.
/// `Records[3].dynamodb`. The path is only tracked once reading has failed: a second,
/// tracked reading costs nothing on the valid batches that are nearly all of them.
fn malformed(json: &str, error: serde_json::Error) -> EventError {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    match serde_path_to_error::deserialize::<_, StreamEvent<'_>>(&mut deserializer) {
        Err(e) => EventError::Malformed(format!("at {}: {}", e.path(), e.inner())),
        Ok(_) => EventError::Malformed(error.to_string()),
    }
}

/// A checked record whose new image (if any) is still raw JSON; [`Decoder::complete`]
/// builds it. Until then an upsert's `new` is `None`.
#[derive(Debug)]
pub struct DecodedRecord<'a> {
    /// The change, without its new image.
    pub change: SourceChange,
    event_id: Cow<'a, str>,
    new_image: Option<&'a RawValue>,
}

impl AsRef<SourceChange> for DecodedRecord<'_> {
    fn as_ref(&self) -> &SourceChange {
        &self.change
    }
}

/// What the decoder checks records against and keeps from old images.
#[derive(Debug, Clone, Copy)]
pub struct Decoder<'a> {
    /// The key schema of the replicated tables.
    pub schema: &'a KeySchema,
    /// The only table whose records are accepted.
    pub source_table: &'a str,
    /// That table's region.
    pub source_region: &'a str,
    /// The origin marker attribute (kept from old images).
    pub marker_attribute: &'a str,
    /// The version attribute in last-writer-wins mode (kept from old images).
    pub version_attribute: Option<&'a str>,
}

impl<'a> Decoder<'a> {
    /// What records are checked against under `config`, for tables with `schema`.
    pub fn new(config: &'a ReplicatorConfig, schema: &'a KeySchema) -> Self {
        Self {
            schema,
            source_table: &config.source_table,
            source_region: config.source_region.as_str(),
            marker_attribute: &config.marker_attribute,
            version_attribute: config.version_attribute(),
        }
    }
}

impl Decoder<'_> {
    /// Reads the event JSON and validates each record, handing the records to `each` in
    /// stream order as they are read; returns how many records the batch holds.
    pub fn decode_json<'a>(&self, json: &'a str, mut each: impl FnMut(DecodedRecord<'a>)) -> Result<usize, EventError> {
        let mut index = 0;
        read_records(json, |record| {
            let change = self.decode_record(index, record)?;
            index += 1;
            each(change);
            Ok(())
        })
        .map_err(|e| match e {
            ReadError::Refused(refused) => refused,
            ReadError::Json(error) => malformed(json, error),
        })
    }

    /// Reads and validates the whole batch, every image built.
    #[cfg(test)]
    pub fn decode(&self, json: &str) -> Result<Vec<SourceChange>, EventError> {
        let mut records = Vec::new();
        self.decode_json(json, |record| records.push(record))?;
        records.into_iter().map(|record| self.complete(record)).collect()
    }

    /// Builds a record's new image and checks it: it must be a DynamoDB item with the
    /// record's key. The `Keys` attributes are added when the image lacks them (images
    /// always hold the key; a hand-made event may not, and `Keys` is authoritative).
    pub fn complete(&self, record: DecodedRecord<'_>) -> Result<SourceChange, EventError> {
        let DecodedRecord {
            mut change,
            event_id,
            new_image,
        } = record;
        change.event_id = event_id.clone().into_owned();
        let Some(raw) = new_image else {
            return Ok(change);
        };
        let fail = |problem: String| EventError::Record {
            index: change.index,
            event_id: event_id.chars().take(80).collect(),
            problem,
        };
        let mut new = serde_json::from_str::<Image>(raw.get())
            .map_err(|e| fail(format!("NewImage: {e}")))?
            .0;
        if new.is_empty() {
            return Ok(change);
        }
        for (name, value) in &change.key_attributes {
            if !new.contains_key(name) {
                new.insert(name.clone(), value.clone());
            }
        }
        let image_key = self.schema.key_of(&new).map_err(|e| fail(format!("NewImage: {e}")))?;
        if image_key != change.key {
            return Err(fail("NewImage holds a different key than Keys".into()));
        }
        if let ChangeKind::Upsert { new: slot, .. } = &mut change.kind {
            *slot = Some(new);
        }
        Ok(change)
    }

    fn decode_record<'a>(&self, index: usize, record: StreamEventRecord<'a>) -> Result<DecodedRecord<'a>, EventError> {
        let StreamEventRecord {
            change,
            event_id,
            event_name,
            event_source_arn,
            user_identity,
        } = record;
        let fail = |problem: String| EventError::Record {
            index,
            event_id: event_id.chars().take(80).collect(),
            problem,
        };
        self.check_source(event_source_arn.as_deref()).map_err(fail)?;
        let sequence = change
            .sequence_number
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| fail("no SequenceNumber".into()))?;
        let key_attributes: Attributes = change.keys.unwrap_or_default().0;
        if key_attributes.is_empty() {
            return Err(fail("no Keys".into()));
        }
        let key = self
            .schema
            .key_of(&key_attributes)
            .map_err(|e| fail(format!("Keys do not match the key schema {}: {e}", self.schema)))?;
        let by_ttl = user_identity
            .as_ref()
            .is_some_and(|u| u.kind == "Service" && u.principal_id == "dynamodb.amazonaws.com");
        let created_at_ms = change
            .created_at_seconds
            .filter(|seconds| seconds.is_finite())
            .map(|seconds| (seconds * 1000.0).round() as i64)
            .filter(|ms| *ms > 0);
        let old = match change.old_image.filter(|image| !image.0.is_empty()) {
            Some(image) => Some(
                self.reduce_old_image(&image)
                    .map_err(|e| fail(format!("OldImage: {e}")))?,
            ),
            None => None,
        };
        let (kind, new_image) = match event_name.as_ref() {
            // The image is built by `complete`, and only for the key's last change.
            "INSERT" | "MODIFY" => (ChangeKind::Upsert { new: None, old }, change.new_image),
            "REMOVE" => (ChangeKind::Remove { old, by_ttl }, None),
            other => {
                return Err(fail(format!(
                    "eventName {:?} is not INSERT, MODIFY or REMOVE",
                    other.chars().take(40).collect::<String>()
                )))
            }
        };
        Ok(DecodedRecord {
            change: SourceChange {
                index,
                sequence,
                key,
                key_attributes,
                kind,
                created_at_ms,
                event_id: String::new(),
            },
            event_id,
            new_image,
        })
    }

    /// Old images are only consulted for the marker and the version, so only those two
    /// attributes are ever built from them.
    fn reduce_old_image(&self, image: &RawImage<'_>) -> Result<Attributes, String> {
        let mut reduced = Attributes::default();
        for name in std::iter::once(self.marker_attribute).chain(self.version_attribute) {
            if let Some(value) = image.parse(name) {
                let value = value.map_err(|e| format!("attribute {name:?}: {e}"))?;
                reduced.insert(name.to_owned(), value);
            }
        }
        Ok(reduced)
    }

    fn check_source(&self, arn: Option<&str>) -> Result<(), String> {
        let arn = arn.ok_or("no eventSourceARN, so the source table is unknown")?;
        let (region, table) = stream_source(arn).ok_or_else(|| {
            format!(
                "eventSourceARN {:?} is not a DynamoDB stream ARN",
                arn.chars().take(200).collect::<String>()
            )
        })?;
        if region != self.source_region || table != self.source_table {
            return Err(format!(
                "the record comes from table {table} in {region}, but this function replicates {} in {}",
                self.source_table, self.source_region
            ));
        }
        Ok(())
    }
}

/// The region and table of `arn:<partition>:dynamodb:<region>:<account>:table/<name>/stream/<label>`.
pub fn stream_source(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, _partition, service, region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if prefix != "arn" || service != "dynamodb" || region.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix("table/")?;
    let (table, label) = rest.split_once("/stream/")?;
    if table.is_empty() || label.is_empty() || table.contains('/') {
        return None;
    }
    Some((region, table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::Value;
    use serde_json::json;

    const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/shop-data/stream/2026-11-01T00:00:00.000";

    fn schema() -> KeySchema {
        KeySchema::parse("pk,sk").unwrap()
    }

    fn decoder(schema: &KeySchema) -> Decoder<'_> {
        Decoder {
            schema,
            source_table: "shop-data",
            source_region: "us-east-1",
            marker_attribute: "replica_origin",
            version_attribute: Some("v"),
        }
    }

    fn record(name: &str, seq: &str, dynamodb: serde_json::Value) -> serde_json::Value {
        json!({
            "eventID": format!("id-{seq}"),
            "eventName": name,
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
            "eventSourceARN": ARN,
        })
    }

    fn body(seq: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut body = json!({
            "ApproximateCreationDateTime": 1763694000,
            "Keys": {"pk": {"S": "A"}, "sk": {"S": "1"}},
            "SequenceNumber": seq,
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    fn decode(records: Vec<serde_json::Value>) -> Result<Vec<SourceChange>, EventError> {
        let json = json!({ "Records": records }).to_string();
        decoder(&schema()).decode(&json)
    }

    #[test]
    fn the_sample_batch_decodes_with_its_ttl_delete() {
        let json = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/dynamodb-stream-batch.json"
        ))
        .unwrap();
        let changes = decoder(&schema()).decode(&json).unwrap();
        assert_eq!(changes.len(), 5);
        assert!(matches!(&changes[0].kind, ChangeKind::Upsert { new: Some(n), old: None } if n.len() == 6));
        assert!(matches!(
            &changes[3].kind,
            ChangeKind::Remove {
                old: Some(_),
                by_ttl: false
            }
        ));
        assert!(matches!(&changes[4].kind, ChangeKind::Remove { by_ttl: true, .. }));
        assert_eq!(changes[4].sequence, "100000000000000000005");
        assert_eq!(changes[0].created_at_ms, Some(1_763_694_000_000));
        assert_eq!(changes.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn old_images_keep_only_marker_and_version() {
        let changes = decode(vec![record(
            "MODIFY",
            "1",
            body(
                "1",
                json!({
                    "NewImage": {"pk": {"S": "A"}, "sk": {"S": "1"}, "v": {"N": "2"}},
                    "OldImage": {"pk": {"S": "A"}, "sk": {"S": "1"}, "v": {"N": "1"}, "big": {"S": "x"},
                                 "replica_origin": {"S": "m"}},
                }),
            ),
        )])
        .unwrap();
        let ChangeKind::Upsert { old: Some(old), .. } = &changes[0].kind else {
            panic!()
        };
        let mut names: Vec<&String> = old.keys().collect();
        names.sort();
        assert_eq!(names, ["replica_origin", "v"]);
    }

    #[test]
    fn keys_only_records_need_a_read_and_images_get_their_keys() {
        let changes = decode(vec![
            record("INSERT", "1", body("1", json!({"StreamViewType": "KEYS_ONLY"}))),
            record("MODIFY", "2", body("2", json!({"NewImage": {"qty": {"N": "1"}}}))),
        ])
        .unwrap();
        assert!(matches!(&changes[0].kind, ChangeKind::Upsert { new: None, old: None }));
        let ChangeKind::Upsert { new: Some(new), .. } = &changes[1].kind else {
            panic!()
        };
        assert_eq!(new.get("pk"), Some(&Value::S("A".into())));
        assert_eq!(new.len(), 3);
    }

    #[test]
    fn a_malformed_event_names_the_path() {
        let schema = schema();
        let parse = |json: &str| decoder(&schema).decode(json).unwrap_err();
        let err = parse(r#"{"Records": [{"eventID": "x"}]}"#);
        assert!(
            err.to_string()
                .starts_with("malformed DynamoDB stream event: at Records[0]"),
            "{err}"
        );
        let ok = r#"{"eventID": "1", "eventName": "INSERT", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/shop-data/stream/x",
                     "dynamodb": {"Keys": {"pk": {"S": "A"}, "sk": {"S": "1"}}, "SequenceNumber": "1"}}"#;
        let bad_keys = format!(
            r#"{{"Records": [{ok}, {{"eventID": "2", "eventName": "INSERT",
            "dynamodb": {{"Keys": {{"pk": {{"S": 5}}}}}}}}]}}"#
        );
        let err = parse(&bad_keys);
        assert!(
            err.to_string()
                .starts_with("malformed DynamoDB stream event: at Records[1].dynamodb.Keys.pk"),
            "{err}"
        );
        // An image is read when it is built: the error names the record.
        let bad_image = ok.replace(
            r#""SequenceNumber": "1""#,
            r#""SequenceNumber": "1", "NewImage": {"qty": {"N": 5}}"#,
        );
        let err = parse(&format!(r#"{{"Records": [{bad_image}]}}"#));
        assert!(
            err.to_string()
                .starts_with(r#"record 0 (eventID "1"): NewImage: invalid type"#),
            "{err}"
        );
        let err = parse("[1, 2]");
        assert!(matches!(err, EventError::Malformed(_)), "{err}");
        let err = parse("{not json");
        assert!(matches!(err, EventError::Malformed(_)), "{err}");
    }

    #[test]
    fn records_without_keys_or_sequence_are_refused() {
        let mut no_keys = body("1", json!({}));
        no_keys.as_object_mut().unwrap().remove("Keys");
        let err = decode(vec![
            record("INSERT", "1", body("1", json!({}))),
            record("INSERT", "2", no_keys),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            EventError::Record {
                index: 1,
                event_id: "id-2".into(),
                problem: "no Keys".into()
            }
        );
        let err = decode(vec![record(
            "INSERT",
            "1",
            body("1", json!({"Keys": {"pk": {"S": "A"}}})),
        )])
        .unwrap_err();
        assert!(err.to_string().contains("key attribute \"sk\" is missing"), "{err}");
        let mut no_seq = body("1", json!({}));
        no_seq.as_object_mut().unwrap().remove("SequenceNumber");
        let err = decode(vec![record("INSERT", "1", no_seq)]).unwrap_err();
        assert!(err.to_string().contains("no SequenceNumber"), "{err}");
    }

    #[test]
    fn records_of_another_table_or_region_are_refused() {
        for arn in [
            "arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/2026-11-01T00:00:00.000",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/shop-data/stream/2026-11-01T00:00:00.000",
        ] {
            let mut r = record("INSERT", "1", body("1", json!({})));
            r["eventSourceARN"] = json!(arn);
            let err = decode(vec![r]).unwrap_err();
            assert!(
                err.to_string()
                    .contains("but this function replicates shop-data in us-east-1"),
                "{err}"
            );
        }
        let mut r = record("INSERT", "1", body("1", json!({})));
        r["eventSourceARN"] = json!("arn:aws:kinesis:us-east-1:1:stream/x");
        assert!(decode(vec![r])
            .unwrap_err()
            .to_string()
            .contains("not a DynamoDB stream ARN"));
        let mut r = record("INSERT", "1", body("1", json!({})));
        r.as_object_mut().unwrap().remove("eventSourceARN");
        assert!(decode(vec![r]).unwrap_err().to_string().contains("no eventSourceARN"));
    }

    #[test]
    fn inconsistent_images_and_unknown_events_are_refused() {
        let err = decode(vec![record(
            "MODIFY",
            "1",
            body("1", json!({"NewImage": {"pk": {"S": "B"}, "sk": {"S": "1"}}})),
        )])
        .unwrap_err();
        assert!(err.to_string().contains("different key"), "{err}");
        let err = decode(vec![record("UPSERT", "1", body("1", json!({})))]).unwrap_err();
        assert!(err.to_string().contains("eventName \"UPSERT\""), "{err}");
    }

    #[test]
    fn only_the_dynamodb_service_principal_marks_a_ttl_delete() {
        let with_identity = |kind: &str, principal: &str| {
            let mut r = record("REMOVE", "1", body("1", json!({})));
            r["userIdentity"] = json!({"type": kind, "principalId": principal});
            r
        };
        let changes = decode(vec![
            with_identity("Service", "dynamodb.amazonaws.com"),
            with_identity("Service", "lambda.amazonaws.com"),
            with_identity("User", "dynamodb.amazonaws.com"),
            record("REMOVE", "1", body("1", json!({}))),
        ])
        .unwrap();
        let ttl: Vec<bool> = changes
            .iter()
            .map(|c| matches!(c.kind, ChangeKind::Remove { by_ttl: true, .. }))
            .collect();
        assert_eq!(ttl, [true, false, false, false]);
    }

    #[test]
    fn stream_arns_are_parsed_in_every_partition() {
        assert_eq!(stream_source(ARN), Some(("us-east-1", "shop-data")));
        assert_eq!(
            stream_source("arn:aws-cn:dynamodb:cn-north-1:1:table/t/stream/label"),
            Some(("cn-north-1", "t"))
        );
        for bad in [
            "",
            "arn:aws:dynamodb:us-east-1:1:table/t",
            "arn:aws:dynamodb::1:table/t/stream/x",
            "arn:aws:s3:us-east-1:1:table/t/stream/x",
            "arn:aws:dynamodb:us-east-1:1:table//stream/x",
        ] {
            assert_eq!(stream_source(bad), None, "{bad}");
        }
    }
}
