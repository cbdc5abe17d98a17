//! The custom SSM Command document, rendered from `infra/ssm/repoint-app.sh`.
//!
//! The script is the single source of truth: each `check <name> "$VAR" '<pattern>'` line
//! becomes a typed document parameter whose `allowedPattern` is that same pattern, so SSM
//! refuses a bad value before the script runs and the script refuses it again. Every
//! parameter has `interpolationType: ENV_VAR`: SSM passes its value as the environment
//! variable `SSM_<name>` and never writes it into the script's text, so no value is ever
//! parsed by bash as code (see the AWS Systems Manager documentation, "Data elements and
//! parameters", `interpolationType`).
//!
//! The rendered document has two committed copies, [`DOCUMENT_FILE`] and the `Content` of
//! the [`template::RESOURCE`] resource in [`TEMPLATE_FILE`] (CloudFormation cannot include a
//! file). One generator writes both ([`WRITE_COMMAND`], also `make ssm-document`); run
//! without `--write` it checks them, and so does a unit test here.

use serde_json::{json, Map, Value};

/// The repoint script, as shipped in the document.
pub const SCRIPT: &str = include_str!("../../../infra/ssm/repoint-app.sh");

/// Where [`SCRIPT`] lives, relative to the repository root.
pub const SCRIPT_FILE: &str = "infra/ssm/repoint-app.sh";

/// The committed JSON copy of the document, relative to the repository root.
pub const DOCUMENT_FILE: &str = "infra/ssm/repoint-app-document.json";

/// The template whose [`template::RESOURCE`] carries the document, relative to the repository root.
pub const TEMPLATE_FILE: &str = "infra/core.yaml";

/// The command that rewrites both copies from the script.
pub const WRITE_COMMAND: &str = "cargo run -p env-rewriter --example ssm_document -- --write";

/// The document's execution timeout when a command does not set one (seconds): a repoint
/// takes seconds; Magento's setup:config:set and cache:flush on a cold cache take longest.
pub const DEFAULT_EXECUTION_TIMEOUT: &str = "300";

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
        "region" => "The active region: the region the app must use (AWS_REGION, DYNAMODB_REGION, ...).",
        "serverRegion" => "The region of this server's fleet: the shop's cron runs where it equals region; empty leaves the cron alone.",
        "dbHost" => "The new database host; empty leaves the database setting alone.",
        "dbPort" => "The new database port; empty or 3306 keeps the default.",
        "cacheHost" => "The Redis/ElastiCache host of the active region; empty leaves the cache settings alone.",
        "cacheHosts" => "region=host pairs (comma-separated): the cache host of the active region when cacheHost is empty (for State Manager, which cannot look it up).",
        "appRoot" => "Magento or WordPress root directory.",
        "webUser" => "User the app's CLI runs as; empty: the owner of app/etc/env.php or wp-config.php.",
        "envFile" => "KEY=VALUE file to rewrite; empty for none.",
        "regionKeys" => "Comma-separated keys set to the region in the env file and pool files.",
        "dbHostKey" => "Key set to the database host in the env file and pool files.",
        "cacheHostKey" => "Key set to the cache host in the env file and pool files.",
        "fpmPoolFiles" => "Comma-separated PHP-FPM pool files whose env[KEY] lines are rewritten.",
        "services" => "Comma-separated systemd services reloaded or restarted after a change and checked active; empty: the enabled PHP-FPM unit and web server.",
        "cronTimers" => "Comma-separated systemd timers that run the shop's cron; empty: Magento's crontab or the WordPress cron entry.",
        "maintenance" => "on or off: maintenance mode (Magento flag, WordPress .maintenance, env-file key); empty leaves it alone.",
        "maintenanceKey" => "Env-file key set to 1 or 0 with maintenance; empty for none.",
        "executionTimeout" => "Seconds the run may take before SSM stops it (the step's timeoutSeconds); a run waits at most half of it for another run's lock.",
        _ => "",
    }
}

/// Parameters that may be left empty get an empty default.
fn optional(name: &str) -> bool {
    matches!(
        name,
        "serverRegion"
            | "dbHost"
            | "dbPort"
            | "cacheHost"
            | "cacheHosts"
            | "webUser"
            | "envFile"
            | "regionKeys"
            | "dbHostKey"
            | "cacheHostKey"
            | "fpmPoolFiles"
            | "services"
            | "cronTimers"
            | "maintenance"
            | "maintenanceKey"
    )
}

/// The default of a parameter that has one besides the empty string.
fn default(name: &str) -> Option<&'static str> {
    match name {
        "executionTimeout" => Some(DEFAULT_EXECUTION_TIMEOUT),
        _ if optional(name) => Some(""),
        _ => None,
    }
}

/// The document (schema 2.2, one aws:runShellScript step) as JSON.
pub fn render(script: &str) -> Value {
    let mut parameters = Map::new();
    for spec in parameter_specs(script) {
        let mut parameter = json!({
            "type": "String",
            "description": description(&spec.name),
            "allowedPattern": spec.pattern,
            "interpolationType": "ENV_VAR",
        });
        if let Some(value) = default(&spec.name) {
            parameter["default"] = json!(value);
        }
        parameters.insert(spec.name, parameter);
    }
    json!({
        "schemaVersion": "2.2",
        "description": "shop-failover env-rewriter: points a Magento, WordPress/WooCommerce or env-file app server at the active region, database and cache, runs the shop's cron only in the active region, switches maintenance mode, and reloads or restarts its services only if something changed.",
        "parameters": parameters,
        "mainSteps": [{
            "action": "aws:runShellScript",
            "name": "repointApp",
            "precondition": {"StringEquals": ["platformType", "Linux"]},
            // SSM stops the run after executionTimeout (digits only, by its pattern, so its
            // textual substitution here is safe); the script bounds its lock wait by it too.
            "inputs": {
                "runCommand": script.lines().collect::<Vec<_>>(),
                "timeoutSeconds": "{{ executionTimeout }}"
            }
        }]
    })
}

/// The text of [`DOCUMENT_FILE`] for a document: pretty-printed JSON and a final newline.
pub fn document_file_text(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// The document inside `infra/core.yaml`, read and written as lines, without a YAML parser.
///
/// The `RepointDocument` resource carries the document as a JSON value (YAML is a superset of
/// JSON, and CloudFormation accepts an object as an `AWS::SSM::Document`'s `Content`) on the
/// lines after its `Content:` key:
///
/// ```text
///   RepointDocument:            <- the resource: this exact line, indented 2
///     Type: AWS::SSM::Document
///     Properties:
///       Content:                <- the key, alone on its line
///         {                     <- the JSON value: every line indented deeper than the key
///           "schemaVersion": "2.2",
///           ...
///         }
///                               <- ends at the first non-blank line indented no deeper than the key
///   NextResource:
/// ```
///
/// The resource ends at the next non-blank, non-comment line indented 2 or less; its first
/// `Content:` line opens the block; the block is every following line that is blank or
/// indented deeper than that key, trailing blank lines excluded. Its text is the JSON value
/// itself (indentation is JSON whitespace), so reading it is `serde_json::from_str`, and
/// writing it replaces exactly those lines, leaving every other byte of the template alone.
pub mod template {
    use serde_json::Value;

    /// The template resource that carries the document.
    pub const RESOURCE: &str = "RepointDocument";

    /// The Content block: `start` is the index of the `Content:` line, `end` one past its
    /// last line, `indent` the key's indentation.
    struct Block {
        start: usize,
        end: usize,
        indent: usize,
    }

    /// The template's lines, each with its line ending, so they concatenate back to the text.
    fn lines(template: &str) -> Vec<&str> {
        template.split_inclusive('\n').collect()
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start_matches(' ').len()
    }

    fn find_block(lines: &[&str]) -> Result<Block, String> {
        let header = format!("  {RESOURCE}:");
        let resource = lines
            .iter()
            .position(|line| line.trim_end() == header)
            .ok_or_else(|| format!("no resource line `{header}`"))?;
        let mut start = None;
        for (i, line) in lines.iter().enumerate().skip(resource + 1) {
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if indent(line) <= 2 {
                break;
            }
            if text == "Content:" {
                start = Some(i);
                break;
            }
        }
        let start = start.ok_or_else(|| format!("{RESOURCE} has no `Content:` line (followed by the JSON value)"))?;
        let key_indent = indent(lines[start]);
        let mut end = start + 1;
        while end < lines.len() && (lines[end].trim().is_empty() || indent(lines[end]) > key_indent) {
            end += 1;
        }
        // Blank lines that end the block belong to what follows.
        while end > start + 1 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        Ok(Block {
            start,
            end,
            indent: key_indent,
        })
    }

    /// The document in the template's [`RESOURCE`] `Content`, parsed.
    pub fn content(template: &str) -> Result<Value, String> {
        let lines = lines(template);
        let block = find_block(&lines)?;
        let text = lines[block.start + 1..block.end].concat();
        if text.trim().is_empty() {
            return Err(format!("{RESOURCE}.Content (line {}) has no value", block.start + 1));
        }
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{RESOURCE}.Content is not a JSON value: {e} (template line {})",
                block.start + 1 + e.line()
            )
        })
    }

    /// The template with its [`RESOURCE`] `Content` replaced by `document`, pretty-printed
    /// and indented two spaces deeper than the `Content:` key; every other line unchanged.
    pub fn with_content(template: &str, document: &Value) -> Result<String, String> {
        let lines = lines(template);
        let block = find_block(&lines)?;
        let pad = " ".repeat(block.indent + 2);
        let mut text = String::with_capacity(template.len());
        text.extend(lines[..=block.start].iter().copied());
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let json = serde_json::to_string_pretty(document).expect("a JSON value always serializes");
        for line in json.lines() {
            text.push_str(&pad);
            text.push_str(line);
            text.push('\n');
        }
        text.extend(lines[block.end..].iter().copied());
        Ok(text)
    }
}

/// The environment variable SSM sets for the parameter `name` (`interpolationType: ENV_VAR`).
pub fn environment_variable(name: &str) -> String {
    format!("SSM_{name}")
}

/// What SSM does with the parameters: checks each value against its pattern (as `matches`
/// would), then passes it as the environment variable [`environment_variable`]; a parameter
/// left out gets its default. Used by tests to run the script as SSM would.
pub fn ssm_environment(
    script: &str,
    values: &[(&str, &str)],
    matches: impl Fn(&str, &str) -> bool,
) -> Result<Vec<(String, String)>, String> {
    let mut environment = Vec::new();
    for spec in parameter_specs(script) {
        let value = values
            .iter()
            .find(|(n, _)| *n == spec.name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| default(&spec.name).unwrap_or(""));
        if !matches(&spec.pattern, value) {
            return Err(format!(
                "parameter {} value {value:?} does not match {}",
                spec.name, spec.pattern
            ));
        }
        environment.push((environment_variable(&spec.name), value.to_owned()));
    }
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_checked_and_read_from_its_variable() {
        let specs = parameter_specs(SCRIPT);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "appProfile",
                "region",
                "serverRegion",
                "dbHost",
                "dbPort",
                "cacheHost",
                "cacheHosts",
                "appRoot",
                "webUser",
                "envFile",
                "regionKeys",
                "dbHostKey",
                "cacheHostKey",
                "fpmPoolFiles",
                "services",
                "cronTimers",
                "maintenance",
                "maintenanceKey",
                "executionTimeout"
            ]
        );
        for spec in &specs {
            let variable = environment_variable(&spec.name);
            assert!(
                SCRIPT.contains(&format!("=${variable}\n")),
                "{} is read from ${variable}",
                spec.name
            );
            assert!(
                spec.pattern.starts_with('^') && spec.pattern.ends_with('$'),
                "{} pattern is anchored",
                spec.name
            );
            assert!(!spec.pattern.contains('\''), "a pattern cannot admit a quote");
        }
        assert!(!SCRIPT.contains("{{"), "no value is substituted into the script's text");
        let timeout = specs.iter().find(|s| s.name == "executionTimeout").unwrap();
        assert_eq!(
            timeout.pattern, "^[1-9][0-9]{1,3}$",
            "only digits may be substituted into timeoutSeconds"
        );
        let rendered = render(SCRIPT);
        for (name, parameter) in rendered["parameters"].as_object().unwrap() {
            assert_eq!(
                parameter["interpolationType"], "ENV_VAR",
                "{name} reaches the script as a variable"
            );
        }
    }

    fn repo_file(relative: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_committed_document_is_rendered_from_the_script() {
        let rendered = render(SCRIPT);
        let committed: Value = serde_json::from_str(&repo_file(DOCUMENT_FILE)).unwrap();
        assert_eq!(committed, rendered, "{DOCUMENT_FILE} is stale: run `{WRITE_COMMAND}`");
        let in_template =
            template::content(&repo_file(TEMPLATE_FILE)).unwrap_or_else(|e| panic!("{TEMPLATE_FILE}: {e}"));
        assert_eq!(
            in_template,
            rendered,
            "{TEMPLATE_FILE} {}.Content is stale: run `{WRITE_COMMAND}`",
            template::RESOURCE
        );
    }

    #[test]
    fn the_template_block_is_found_read_and_replaced_in_place() {
        let head = "Resources:
  Other:
    Properties:
      Content: not this one
  RepointDocument:
    Type: AWS::SSM::Document
    # a comment
    Properties:
      Name: doc
      Content:
";
        let tail = "
  # ---- next
  After:
    Type: AWS::SQS::Queue
";
        let old_block = r#"        {
          "old": [1, 2]
        }
"#;
        let yaml = format!("{head}{old_block}{tail}");
        assert_eq!(template::content(&yaml).unwrap(), json!({"old": [1, 2]}));

        let document = json!({"list": ["a", "b"]});
        let written = template::with_content(&yaml, &document).unwrap();
        let new_block = r#"        {
          "list": [
            "a",
            "b"
          ]
        }
"#;
        assert_eq!(written, format!("{head}{new_block}{tail}"), "only the block changes");
        assert_eq!(template::content(&written).unwrap(), document);
        assert_eq!(template::with_content(&written, &document).unwrap(), written);

        let no_resource = "Resources:\n  Other:\n    Type: X\n";
        assert!(template::content(no_resource).unwrap_err().contains("no resource"));
        let no_content = "Resources:\n  RepointDocument:\n    Properties:\n      Name: doc\n  Next:\n      Content:\n";
        assert!(template::content(no_content).unwrap_err().contains("no `Content:`"));
        let not_json = "Resources:\n  RepointDocument:\n    Properties:\n      Content:\n        schemaVersion: 2.2\n";
        assert!(template::content(not_json).unwrap_err().contains("template line 5"));
    }
}
