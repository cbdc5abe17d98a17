//! The custom SSM Command document, rendered from `infra/ssm/repoint-app.sh`.
//!
//! The script is the single source of truth: each `check <name> "$VAR" '<pattern>'` line
//! becomes a typed document parameter whose `allowedPattern` is that same pattern, so SSM
//! refuses a bad value before substitution and the script refuses it again after.

use serde_json::{json, Map, Value};

/// The repoint script, as shipped in the document.
pub const SCRIPT: &str = include_str!("../../../infra/ssm/repoint-app.sh");

/// One document parameter read from the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSpec {
    /// Parameter name (`{{ name }}` in the script).
    pub name: String,
    /// Its allowedPattern (an anchored regular expression).
    pub pattern: String,
}

/// The parameters, in script order, from its `check` lines.
pub fn parameter_specs(script: &str) -> Vec<ParameterSpec> {
    script
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("check ")?;
            let (name, rest) = rest.split_once(' ')?;
            let pattern = rest.split_once(" '")?.1.strip_suffix('\'')?;
            Some(ParameterSpec {
                name: name.to_owned(),
                pattern: pattern.to_owned(),
            })
        })
        .collect()
}

fn description(name: &str) -> &'static str {
    match name {
        "appProfile" => "How the app is repointed: magento, wordpress or envfile.",
        "region" => "The region the app must use (AWS_REGION, DYNAMODB_REGION, ...).",
        "dbHost" => "The new database host; empty leaves the database setting alone.",
        "dbPort" => "The new database port; empty or 3306 keeps the default.",
        "appRoot" => "Magento or WordPress root directory.",
        "webUser" => "User the app's CLI runs as.",
        "envFile" => "KEY=VALUE file to rewrite; empty for none.",
        "regionKeys" => "Comma-separated keys set to the region in the env file and pool files.",
        "dbHostKey" => "Key set to the database host in the env file and pool files.",
        "fpmPoolFiles" => "Comma-separated PHP-FPM pool files whose env[KEY] lines are rewritten.",
        "services" => "Comma-separated systemd services restarted after a change and checked active.",
        _ => "",
    }
}

/// Parameters that may be left empty get an empty default.
fn optional(name: &str) -> bool {
    matches!(
        name,
        "dbHost" | "dbPort" | "envFile" | "regionKeys" | "dbHostKey" | "fpmPoolFiles" | "services"
    )
}

/// The document (schema 2.2, one aws:runShellScript step) as JSON.
pub fn render(script: &str) -> Value {
    let mut parameters = Map::new();
    for spec in parameter_specs(script) {
        let mut parameter = json!({
            "type": "String",
            "description": description(&spec.name),
            "allowedPattern": spec.pattern,
        });
        if optional(&spec.name) {
            parameter["default"] = json!("");
        }
        parameters.insert(spec.name, parameter);
    }
    json!({
        "schemaVersion": "2.2",
        "description": "shop-failover env-rewriter: repoints a Magento, WordPress/WooCommerce or env-file app server at the active region and database, restarting its services only if something changed.",
        "parameters": parameters,
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "repointApp",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            "inputs": {"runCommand": script.lines().collect::<Vec<_>>()}
        }]
    })
}

/// What SSM does with the parameters: checks each value against its pattern (as `matches`
/// would), then substitutes `{{ name }}` textually. Used by tests to run the script as SSM would.
pub fn substitute(
    script: &str,
    values: &[(&str, &str)],
    matches: impl Fn(&str, &str) -> bool,
) -> Result<String, String> {
    let specs = parameter_specs(script);
    let mut text = script.to_owned();
    for spec in &specs {
        let value = values
            .iter()
            .find(|(n, _)| *n == spec.name)
            .map(|(_, v)| *v)
            .unwrap_or("");
        if !matches(&spec.pattern, value) {
            return Err(format!(
                "parameter {} value {value:?} does not match {}",
                spec.name, spec.pattern
            ));
        }
        text = text.replace(&format!("{{{{ {} }}}}", spec.name), value);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_has_a_checked_parameter() {
        let specs = parameter_specs(SCRIPT);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "appProfile",
                "region",
                "dbHost",
                "dbPort",
                "appRoot",
                "webUser",
                "envFile",
                "regionKeys",
                "dbHostKey",
                "fpmPoolFiles",
                "services"
            ]
        );
        for spec in &specs {
            assert!(
                SCRIPT.contains(&format!("'{{{{ {} }}}}'", spec.name)),
                "{} is substituted inside single quotes",
                spec.name
            );
            assert!(
                spec.pattern.starts_with('^') && spec.pattern.ends_with('$'),
                "{} pattern is anchored",
                spec.name
            );
            assert!(!spec.pattern.contains('\''), "a pattern cannot admit a quote");
        }
        assert_eq!(
            SCRIPT.matches("{{").count(),
            specs.len(),
            "no placeholder without a check"
        );
    }

    #[test]
    fn the_committed_document_is_rendered_from_the_script() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/ssm/repoint-app-document.json");
        let committed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            committed,
            render(SCRIPT),
            "infra/ssm/repoint-app-document.json is stale: run `cargo run -p env-rewriter --example render_ssm_document > infra/ssm/repoint-app-document.json`"
        );
    }
}
