//! Grouping targets into SendCommand requests.

use std::collections::BTreeMap;

/// SSM accepts at most 50 instance ids per SendCommand.
pub const MAX_INSTANCES_PER_COMMAND: usize = 50;
/// SSM's limit on a command's comment.
const MAX_COMMENT_CHARS: usize = 100;

/// Settings shared by every SendCommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSettings {
    /// The custom Command document.
    pub document_name: String,
    /// `MaxConcurrency`, e.g. `10` or `25%`.
    pub max_concurrency: String,
    /// `MaxErrors`, e.g. `0` or `10%`.
    pub max_errors: String,
    /// Execution timeout per instance, seconds.
    pub timeout_seconds: i32,
}

/// One SendCommand request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandBatch {
    /// At most [`MAX_INSTANCES_PER_COMMAND`] ids.
    pub instance_ids: Vec<String>,
    /// The document parameters (all ids in a batch share them).
    pub parameters: BTreeMap<String, String>,
    /// The comment (carries the failover id).
    pub comment: String,
}

/// Groups instances with identical parameters and splits each group into batches of at
/// most 50 ids; the comment names the failover (truncated to SSM's 100 characters).
pub fn batch_commands(per_instance: &[(String, BTreeMap<String, String>)], failover_id: &str) -> Vec<CommandBatch> {
    let mut groups: BTreeMap<&BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    for (id, parameters) in per_instance {
        groups.entry(parameters).or_default().push(id.clone());
    }
    let comment: String = format!("failover {failover_id}")
        .chars()
        .take(MAX_COMMENT_CHARS)
        .collect();
    groups
        .into_iter()
        .flat_map(|(parameters, mut ids)| {
            ids.sort();
            ids.dedup();
            ids.chunks(MAX_INSTANCES_PER_COMMAND)
                .map(|chunk| CommandBatch {
                    instance_ids: chunk.to_vec(),
                    parameters: parameters.clone(),
                    comment: comment.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(profile: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("appProfile".to_string(), profile.to_string())])
    }

    #[test]
    fn splits_at_fifty_and_groups_by_parameters() {
        let mut input: Vec<(String, BTreeMap<String, String>)> =
            (0..120).map(|n| (format!("i-{n:03}"), params("magento"))).collect();
        input.extend((0..3).map(|n| (format!("mi-{n}"), params("wordpress"))));
        let batches = batch_commands(&input, "alarm@2026-11-21T03:00:05.123Z");
        let sizes: Vec<(usize, &str)> = batches
            .iter()
            .map(|b| (b.instance_ids.len(), b.parameters["appProfile"].as_str()))
            .collect();
        assert_eq!(
            sizes,
            [(50, "magento"), (50, "magento"), (20, "magento"), (3, "wordpress")]
        );
        assert!(batches
            .iter()
            .all(|b| b.comment == "failover alarm@2026-11-21T03:00:05.123Z"));
        let all: Vec<&String> = batches.iter().flat_map(|b| &b.instance_ids).collect();
        assert_eq!(all.len(), 123, "every instance exactly once");
    }

    #[test]
    fn long_comments_are_truncated_and_duplicates_dropped() {
        let input = vec![
            ("i-1".to_string(), params("magento")),
            ("i-1".to_string(), params("magento")),
        ];
        let batches = batch_commands(&input, &"x".repeat(300));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].instance_ids, ["i-1"]);
        assert_eq!(batches[0].comment.chars().count(), 100);
    }
}
