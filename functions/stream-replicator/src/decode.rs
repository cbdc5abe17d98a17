//! Turns the Lambda DynamoDB event into validated [`SourceChange`]s.
//!
//! The whole batch is validated before anything is written: a malformed event, a record
//! without keys or a record from another table fails the invocation with a NonRetryable
//! error naming the record, and nothing is written half-way.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};

use crate::change::{ChangeKind, SourceChange};
use crate::item::Attributes;
use crate::key::KeySchema;

/// Why an event cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload is not a DynamoDB stream event.
    #[error("malformed DynamoDB stream event: {0}")]
    Malformed(String),
    /// One record is unusable.
    #[error("record {index} (eventID {event_id:?}): {problem}")]
    Record {
        /// Position in the batch.
        index: usize,
        /// The record's eventID.
        event_id: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Parses the raw event JSON; errors name the faulty path, e.g. `Records[3].dynamodb`.
pub fn parse_event(json: &[u8]) -> Result<Event, EventError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| EventError::Malformed(format!("at {}: {}", e.path(), e.inner())))
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

impl Decoder<'_> {
    /// Validates every record and converts the batch, consuming the event so images move
    /// instead of being copied.
    pub fn decode(&self, event: Event) -> Result<Vec<SourceChange>, EventError> {
        event
            .records
            .into_iter()
            .enumerate()
            .map(|(index, record)| self.decode_record(index, record))
            .collect()
    }

    fn decode_record(&self, index: usize, record: EventRecord) -> Result<SourceChange, EventError> {
        let EventRecord {
            change,
            event_id,
            event_name,
            event_source_arn,
            user_identity,
            ..
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
        let key_attributes: Attributes = change.keys.into_inner();
        if key_attributes.is_empty() {
            return Err(fail("no Keys".into()));
        }
        let key = self
            .schema
            .key_of(&key_attributes)
            .map_err(|e| fail(format!("Keys do not match the key schema {}: {e}", self.schema)))?;
        let by_ttl = user_identity
            .as_ref()
            .is_some_and(|u| u.type_ == "Service" && u.principal_id == "dynamodb.amazonaws.com");
        let created_at_ms = Some(change.approximate_creation_date_time.timestamp_millis()).filter(|ms| *ms > 0);
        let old = Some(change.old_image.into_inner())
            .filter(|image| !image.is_empty())
            .map(|image| self.reduce_old_image(image));
        let kind = match event_name.as_str() {
            "INSERT" | "MODIFY" => {
                let mut new = change.new_image.into_inner();
                if new.is_empty() {
                    ChangeKind::Upsert { new: None, old }
                } else {
                    // Images always hold the key; a hand-made event may not, and Keys is authoritative.
                    for (name, value) in &key_attributes {
                        new.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                    let image_key = self.schema.key_of(&new).map_err(|e| fail(format!("NewImage: {e}")))?;
                    if image_key != key {
                        return Err(fail("NewImage holds a different key than Keys".into()));
                    }
                    ChangeKind::Upsert { new: Some(new), old }
                }
            }
            "REMOVE" => ChangeKind::Remove { old, by_ttl },
            other => {
                return Err(fail(format!(
                    "eventName {:?} is not INSERT, MODIFY or REMOVE",
                    other.chars().take(40).collect::<String>()
                )))
            }
        };
        Ok(SourceChange {
            index,
            sequence,
            key,
            key_attributes,
            kind,
            created_at_ms,
        })
    }

    /// Old images are only consulted for the marker and the version: keeping nothing else
    /// halves the memory a large batch needs.
    fn reduce_old_image(&self, image: Attributes) -> Attributes {
        image
            .into_iter()
            .filter(|(name, _)| name == self.marker_attribute || Some(name.as_str()) == self.version_attribute)
            .collect()
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
    use crate::item::Value;
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
        let event = parse_event(json!({ "Records": records }).to_string().as_bytes())?;
        decoder(&schema()).decode(event)
    }

    #[test]
    fn the_sample_batch_decodes_with_its_ttl_delete() {
        let json = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/dynamodb-stream-batch.json"
        ))
        .unwrap();
        let changes = decoder(&schema()).decode(parse_event(&json).unwrap()).unwrap();
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
        let err = parse_event(br#"{"Records": [{"eventID": "x"}]}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("malformed DynamoDB stream event: at Records[0]"),
            "{err}"
        );
        let err = parse_event(b"[1, 2]").unwrap_err();
        assert!(matches!(err, EventError::Malformed(_)), "{err}");
        let err = parse_event(b"{not json").unwrap_err();
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
