//! Grouping targets into SendCommand requests.

use std::collections::BTreeMap;

/// SSM accepts at most 50 instance ids per SendCommand.
pub const MAX_INSTANCES_PER_COMMAND: usize = 50;
/// SSM's limit on a command's comment (kept in bytes, which also bounds characters).
const MAX_COMMENT_CHARS: usize = 100;
/// How much of the end of a long comment is kept (alarm ids end with their timestamp,
/// parameter-change ids with the event id: the parts that tell two failovers apart).
const COMMENT_TAIL_BYTES: usize = 40;

/// Settings shared by every SendCommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSettings {
    /// The custom Command document.
    pub document_name: String,
    /// `MaxConcurrency` of each command, e.g. `100%` or `10`.
    pub max_concurrency: String,
    /// SendCommand's `TimeoutSeconds`: how long SSM tries to start the command on a server
    /// (a server not started by then is `DeliveryTimedOut`).
    pub delivery_timeout_seconds: i32,
    /// The document's `executionTimeout`: how long the script may run on a server.
    pub execution_timeout_seconds: i32,
}

/// `MaxErrors` of every command: SSM stops handing a command out once more invocations
/// failed than this, so anything below 100% would leave later servers of a batch
/// unattempted because an earlier one failed.
pub const MAX_ERRORS: &str = "100%";

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

/// `failover <id>`, within SSM's comment limit: control characters become spaces, and a
/// too long comment keeps its start and its last [`COMMENT_TAIL_BYTES`] joined by `...`,
/// cut on character boundaries.
pub fn command_comment(failover_id: &str) -> String {
    let full: String = format!("failover {failover_id}")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if full.len() <= MAX_COMMENT_CHARS {
        return full;
    }
    const ELLIPSIS: &str = "...";
    let mut head_bytes = 0;
    let head: String = full
        .chars()
        .take_while(|c| {
            head_bytes += c.len_utf8();
            head_bytes <= MAX_COMMENT_CHARS - ELLIPSIS.len() - COMMENT_TAIL_BYTES
        })
        .collect();
    let mut tail_bytes = 0;
    let mut tail: Vec<char> = full
        .chars()
        .rev()
        .take_while(|c| {
            tail_bytes += c.len_utf8();
            tail_bytes <= COMMENT_TAIL_BYTES
        })
        .collect();
    tail.reverse();
    format!("{head}{ELLIPSIS}{}", tail.into_iter().collect::<String>())
}

/// Groups instances with identical parameters and splits each group into batches of at
/// most 50 ids; the comment names the failover ([`command_comment`]).
pub fn batch_commands(per_instance: &[(String, BTreeMap<String, String>)], failover_id: &str) -> Vec<CommandBatch> {
    let mut groups: BTreeMap<&BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    for (id, parameters) in per_instance {
        groups.entry(parameters).or_default().push(id.clone());
    }
    let comment = command_comment(failover_id);
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

    #[test]
    fn long_comments_keep_the_distinguishing_end_and_fit_in_bytes() {
        let alarm = format!("{}@2026-11-21T03:00:05.123Z", "shop-primary-unhealthy-".repeat(8));
        let comment = command_comment(&alarm);
        assert_eq!(comment.len(), 100);
        assert!(comment.starts_with("failover shop-primary-unhealthy-"), "{comment}");
        assert!(comment.ends_with("@2026-11-21T03:00:05.123Z"), "{comment}");
        assert!(comment.contains("..."));

        let parameter = "active-region@2026-11-21T03:01:42Z/6a7e8feb-b491-4cf7-a9f1-bf3703467718";
        assert_eq!(
            command_comment(parameter),
            format!("failover {parameter}"),
            "fits whole"
        );

        for id in [
            "é".repeat(120),
            "🚀".repeat(60),
            format!("a\nb\u{0}{}", "中".repeat(50)),
        ] {
            let comment = command_comment(&id);
            assert!(comment.len() <= 100, "{} bytes: {comment}", comment.len());
            assert!(!comment.chars().any(char::is_control), "{comment:?}");
        }
        assert_eq!(command_comment("a\nb"), "failover a b");
    }
}
