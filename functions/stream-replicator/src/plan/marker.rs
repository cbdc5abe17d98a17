//! The origin marker: how the replicator recognises its own writes in a two-way setup, so
//! that it never sends a change back to the region it came from.
//!
//! Every item the replicator writes carries the marker attribute with a *put token*,
//! `<source-region>#put#<content hash>`. A change seen on a stream is the replicator's own
//! exactly when the new image still carries a put token whose hash matches the image's
//! content: an application update of a replicated item changes the content (so the hash no
//! longer matches) without touching the marker, and is therefore replicated. Where the view
//! has an old image, the marker must also have changed in the record, so an application
//! change *back* to the replicated content is replicated too; with NEW_IMAGE only the hash
//! decides.
//!
//! Deletes leave no image to mark, so in last-writer-wins mode the replicator first tags the
//! item with a *delete token*, `<source-region>#delete#<sequence number>`, then deletes it on
//! condition that the tag is still there (the scheme of the 2017 Global Tables). A REMOVE
//! whose old image carries a delete token is the replicator's own; so is the tagging MODIFY
//! itself (the marker changed to a delete token). Applications must not write the marker.

use crate::domain::item::{content_hash, Attributes, Value};

/// The marker attribute and the region whose changes this replicator copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginMarker {
    attribute: String,
    source_region: String,
}

/// A parsed marker value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// Written with a replicated put of content with this hash.
    Put {
        /// The region the change was copied from.
        region: &'a str,
        /// [`content_hash`] of the item without the marker.
        hash: u64,
    },
    /// Written by the tagging step of a replicated delete.
    Delete {
        /// The region the delete was copied from.
        region: &'a str,
        /// The sequence number of the source REMOVE record.
        sequence: &'a str,
    },
}

/// Parses a marker value; `None` for anything the replicator did not write.
pub fn parse_token(text: &str) -> Option<Token<'_>> {
    let mut parts = text.splitn(3, '#');
    let (region, kind, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if region.is_empty() || rest.is_empty() {
        return None;
    }
    match kind {
        "put" if rest.len() == 16 => u64::from_str_radix(rest, 16)
            .ok()
            .map(|hash| Token::Put { region, hash }),
        "delete" => Some(Token::Delete { region, sequence: rest }),
        _ => None,
    }
}

impl OriginMarker {
    /// A marker named `attribute` for changes copied from `source_region`.
    pub fn new(attribute: impl Into<String>, source_region: impl Into<String>) -> Self {
        Self {
            attribute: attribute.into(),
            source_region: source_region.into(),
        }
    }

    /// The marker attribute's name.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// Sets the marker on an item about to be written, replacing any marker it carried.
    pub fn stamp(&self, item: &mut Attributes) {
        let hash = content_hash(item, &self.attribute);
        let token = format!("{}#put#{hash:016x}", self.source_region);
        item.insert(self.attribute.clone(), Value::S(token));
    }

    /// The tag a replicated delete of the record `sequence` puts on the item first.
    pub fn delete_token(&self, sequence: &str) -> String {
        format!("{}#delete#{sequence}", self.source_region)
    }

    /// Whether an INSERT/MODIFY with this new image (and old image, when the view has one)
    /// was made by a replicator rather than by the application.
    pub fn upsert_is_own(&self, new: &Attributes, old: Option<&Attributes>) -> bool {
        let Some(Value::S(text)) = new.get(&self.attribute) else {
            return false;
        };
        let marker_changed = || old.and_then(|o| o.get(&self.attribute)) != new.get(&self.attribute);
        match parse_token(text) {
            // A replicator write always changes the marker (a write that changes nothing
            // leaves no stream record), so with an old image an unchanged marker means the
            // application wrote, even content that hashes like the token (A → B → A).
            Some(Token::Put { hash, .. }) => {
                hash == content_hash(new, &self.attribute) && (old.is_none() || marker_changed())
            }
            // The tagging step of a delete changes the marker and nothing else. Without an
            // old image a delete token can only come from that step.
            Some(Token::Delete { .. }) => marker_changed(),
            None => false,
        }
    }

    /// Whether a REMOVE whose old image is `old` was made by a replicator.
    pub fn remove_is_own(&self, old: &Attributes) -> bool {
        matches!(
            old.get(&self.attribute),
            Some(Value::S(text)) if matches!(parse_token(text), Some(Token::Delete { .. }))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "replica_origin";

    fn marker() -> OriginMarker {
        OriginMarker::new(M, "us-east-1")
    }

    fn item(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::S(v.to_string())))
            .collect()
    }

    #[test]
    fn tokens_round_trip_and_junk_is_not_a_token() {
        let mut it = item(&[("pk", "A")]);
        marker().stamp(&mut it);
        let Some(Value::S(text)) = it.get(M) else {
            panic!("no marker")
        };
        assert!(matches!(
            parse_token(text),
            Some(Token::Put {
                region: "us-east-1",
                ..
            })
        ));
        assert_eq!(
            parse_token(&marker().delete_token("4200")),
            Some(Token::Delete {
                region: "us-east-1",
                sequence: "4200"
            })
        );
        for junk in [
            "",
            "us-east-1",
            "us-east-1#put#",
            "us-east-1#put#xyz",
            "us-east-1#put#00000000000000000",
            "#put#0000000000000000",
            "us-east-1#other#1",
            "us-east-1#delete#",
        ] {
            assert_eq!(parse_token(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_replicated_put_seen_again_is_own() {
        let mut written = item(&[("pk", "A"), ("status", "paid")]);
        marker().stamp(&mut written);
        assert!(marker().upsert_is_own(&written, None));
        // The other region's replicator uses its own source region but recognises any put token.
        assert!(OriginMarker::new(M, "us-west-2").upsert_is_own(&written, Some(&item(&[("pk", "A")]))));
    }

    #[test]
    fn an_application_update_of_a_replicated_item_is_not_own() {
        let mut written = item(&[("pk", "A"), ("status", "paid")]);
        marker().stamp(&mut written);
        let mut updated = written.clone();
        updated.insert("status".into(), Value::S("shipped".into()));
        assert!(!marker().upsert_is_own(&updated, Some(&written)));
        assert!(!marker().upsert_is_own(&updated, None));
    }

    #[test]
    fn an_application_change_back_to_replicated_content_is_not_own() {
        let mut replicated = item(&[("pk", "A"), ("status", "paid")]);
        marker().stamp(&mut replicated);
        let mut changed = replicated.clone();
        changed.insert("status".into(), Value::S("shipped".into()));
        // The application changes the status back: same content as the token's, marker untouched.
        let changed_back = replicated.clone();
        assert!(!marker().upsert_is_own(&changed_back, Some(&changed)));
        // Without an old image (NEW_IMAGE view) the hash is all there is to go by.
        assert!(marker().upsert_is_own(&changed_back, None));
    }

    #[test]
    fn items_without_a_marker_or_with_junk_are_not_own() {
        assert!(!marker().upsert_is_own(&item(&[("pk", "A")]), None));
        assert!(!marker().upsert_is_own(&item(&[("pk", "A"), (M, "hello")]), None));
        let mut wrong_type = item(&[("pk", "A")]);
        wrong_type.insert(M.into(), Value::N("1".into()));
        assert!(!marker().upsert_is_own(&wrong_type, None));
    }

    #[test]
    fn the_delete_tagging_step_is_own_but_later_app_writes_are_not() {
        let mut before = item(&[("pk", "A"), ("status", "paid")]);
        marker().stamp(&mut before);
        let token = marker().delete_token("77");
        let mut tagged = before.clone();
        tagged.insert(M.into(), Value::S(token.clone()));
        assert!(marker().upsert_is_own(&tagged, Some(&before)));
        assert!(marker().upsert_is_own(&tagged, None));
        // An application update that raced in between tag and delete keeps the tag unchanged.
        let mut raced = tagged.clone();
        raced.insert("status".into(), Value::S("refunded".into()));
        assert!(!marker().upsert_is_own(&raced, Some(&tagged)));
    }

    #[test]
    fn only_removes_of_tagged_items_are_own() {
        let mut tagged = item(&[("pk", "A")]);
        tagged.insert(M.into(), Value::S(marker().delete_token("9")));
        assert!(marker().remove_is_own(&tagged));
        // An application deleting an item that was last written by the replicator is replicated.
        let mut replicated = item(&[("pk", "A")]);
        marker().stamp(&mut replicated);
        assert!(!marker().remove_is_own(&replicated));
        assert!(!marker().remove_is_own(&item(&[("pk", "A")])));
    }

    #[test]
    fn stamping_replaces_a_foreign_marker() {
        let mut it = item(&[("pk", "A")]);
        OriginMarker::new(M, "eu-west-1").stamp(&mut it);
        marker().stamp(&mut it);
        let Some(Value::S(text)) = it.get(M) else {
            panic!("no marker")
        };
        assert!(text.starts_with("us-east-1#put#"));
        assert!(marker().upsert_is_own(&it, None));
    }
}
