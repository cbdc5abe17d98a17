//! Which discovered servers get the command, and why the others do not.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A running EC2 instance carrying the App and Environment tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInstance {
    /// `i-…`
    pub id: String,
    /// Its App tag.
    pub app: String,
}

/// A node SSM knows (EC2 instance or hybrid `mi-…` node), found by the same tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNode {
    /// `i-…` or `mi-…`
    pub id: String,
    /// Its App tag.
    pub app: String,
    /// SSM's PingStatus: `Online`, `ConnectionLost`, `Inactive`.
    pub ping_status: String,
}

/// A server that will receive the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Instance or node id.
    pub instance_id: String,
    /// Its App tag (chooses the profile).
    pub app: String,
}

/// A matching server that will not receive the command, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Instance or node id.
    pub instance_id: String,
    /// Its App tag.
    pub app: String,
    /// Why it is skipped.
    pub reason: String,
}

/// Targets and skipped servers, each sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Servers to command.
    pub targets: Vec<Target>,
    /// Servers left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Every running tagged EC2 instance and every tagged hybrid node is a candidate; only
/// those SSM reports `Online` are targeted. EC2 instances SSM does not know are skipped
/// (no agent or no instance profile), as are nodes whose agent is not online.
pub fn select_targets(ec2: &[AppInstance], ssm: &[ManagedNode]) -> Selection {
    let nodes: HashMap<&str, &ManagedNode> = ssm.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut candidates: BTreeMap<&str, (&str, Option<&str>)> = BTreeMap::new();
    for instance in ec2 {
        let ping = nodes.get(instance.id.as_str()).map(|n| n.ping_status.as_str());
        candidates.insert(&instance.id, (&instance.app, ping));
    }
    for node in ssm.iter().filter(|n| n.id.starts_with("mi-")) {
        candidates.insert(&node.id, (&node.app, Some(&node.ping_status)));
    }
    let mut selection = Selection::default();
    for (id, (app, ping)) in candidates {
        match ping {
            Some("Online") => selection.targets.push(Target {
                instance_id: id.to_owned(),
                app: app.to_owned(),
            }),
            Some(status) => selection.skipped.push(Skipped {
                instance_id: id.to_owned(),
                app: app.to_owned(),
                reason: format!("SSM agent is {status}, not Online"),
            }),
            None => selection.skipped.push(Skipped {
                instance_id: id.to_owned(),
                app: app.to_owned(),
                reason: "not registered with SSM (no agent running, or no instance profile allowing SSM)".into(),
            }),
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec2(id: &str, app: &str) -> AppInstance {
        AppInstance {
            id: id.into(),
            app: app.into(),
        }
    }

    fn node(id: &str, app: &str, ping: &str) -> ManagedNode {
        ManagedNode {
            id: id.into(),
            app: app.into(),
            ping_status: ping.into(),
        }
    }

    #[test]
    fn online_nodes_are_targeted_and_the_rest_skipped_with_a_reason() {
        let selection = select_targets(
            &[ec2("i-2", "Magento"), ec2("i-1", "WooCommerce"), ec2("i-3", "Magento")],
            &[
                node("i-1", "WooCommerce", "Online"),
                node("i-2", "Magento", "ConnectionLost"),
                node("mi-9", "WordPress", "Online"),
                node("mi-8", "Magento", "Inactive"),
                node("i-stopped", "Magento", "Online"),
            ],
        );
        let targets: Vec<&str> = selection.targets.iter().map(|t| t.instance_id.as_str()).collect();
        assert_eq!(targets, ["i-1", "mi-9"]);
        let skipped: Vec<(&str, &str)> = selection
            .skipped
            .iter()
            .map(|s| (s.instance_id.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("i-2", "SSM agent is ConnectionLost, not Online"),
                (
                    "i-3",
                    "not registered with SSM (no agent running, or no instance profile allowing SSM)"
                ),
                ("mi-8", "SSM agent is Inactive, not Online"),
            ]
        );
    }

    #[test]
    fn nothing_found_is_an_empty_selection() {
        assert_eq!(select_targets(&[], &[]), Selection::default());
    }
}
