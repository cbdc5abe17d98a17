//! The generator of the SSM Command document: renders it from `infra/ssm/repoint-app.sh` and
//! checks or rewrites its two committed copies, `infra/ssm/repoint-app-document.json` and the
//! `Content` of the `RepointDocument` resource in `infra/core.yaml` (CloudFormation cannot
//! include a file, so the template carries the document inline, as a JSON value).
//!
//! ```text
//! cargo run -p env-rewriter --example ssm_document              # check: exit 1 naming each stale file
//! cargo run -p env-rewriter --example ssm_document -- --write   # rewrite both copies (make ssm-document)
//! cargo run -p env-rewriter --example ssm_document -- --print   # print the document
//! ```
//!
//! The unit test `document::tests::the_committed_document_is_rendered_from_the_script` makes
//! the same check, so `cargo test` (and with it `scripts/test.sh`) fails on a stale copy.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use env_rewriter::document::{self, template, DOCUMENT_FILE, SCRIPT_FILE, TEMPLATE_FILE, WRITE_COMMAND};
use serde_json::Value;

const USAGE: &str = "usage: cargo run -p env-rewriter --example ssm_document [-- --write | --print]";

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

fn read(relative: &str) -> Result<String, String> {
    std::fs::read_to_string(repo_file(relative)).map_err(|e| format!("{relative}: {e}"))
}

/// Writes `new` unless the file already holds exactly that text.
fn write(relative: &str, old: Option<&str>, new: &str) -> Result<(), String> {
    if old == Some(new) {
        println!("{relative}: unchanged");
        return Ok(());
    }
    std::fs::write(repo_file(relative), new).map_err(|e| format!("{relative}: {e}"))?;
    println!("{relative}: written");
    Ok(())
}

/// Rewrites both copies from the rendered document.
fn write_copies(rendered: &Value) -> Result<(), String> {
    let json = read(DOCUMENT_FILE).ok();
    write(DOCUMENT_FILE, json.as_deref(), &document::document_file_text(rendered))?;
    let yaml = read(TEMPLATE_FILE)?;
    let updated = template::with_content(&yaml, rendered).map_err(|e| format!("{TEMPLATE_FILE}: {e}"))?;
    write(TEMPLATE_FILE, Some(&yaml), &updated)
}

/// Compares both copies with the rendered document, as JSON values; one message per stale file.
fn stale_copies(rendered: &Value) -> Vec<String> {
    let mut stale = Vec::new();
    let json = read(DOCUMENT_FILE).and_then(|text| {
        serde_json::from_str::<Value>(&text).map_err(|e| format!("{DOCUMENT_FILE}: not a JSON document: {e}"))
    });
    match json {
        Ok(committed) if committed == *rendered => {}
        Ok(_) => stale.push(format!(
            "{DOCUMENT_FILE} is stale: it differs from the document rendered from {SCRIPT_FILE}"
        )),
        Err(e) => stale.push(e),
    }
    let yaml =
        read(TEMPLATE_FILE).and_then(|text| template::content(&text).map_err(|e| format!("{TEMPLATE_FILE}: {e}")));
    match yaml {
        Ok(committed) if committed == *rendered => {}
        Ok(_) => stale.push(format!(
            "{TEMPLATE_FILE} is stale: its {}.Content differs from the document rendered from {SCRIPT_FILE}",
            template::RESOURCE
        )),
        Err(e) => stale.push(e),
    }
    stale
}

fn main() -> ExitCode {
    let rendered = document::render(document::SCRIPT);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => {}
        ["--write"] => {
            if let Err(e) = write_copies(&rendered) {
                eprintln!("ssm_document: {e}");
                return ExitCode::FAILURE;
            }
        }
        ["--print"] => {
            print!("{}", document::document_file_text(&rendered));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let stale = stale_copies(&rendered);
    if stale.is_empty() {
        println!(
            "SSM document in sync: {DOCUMENT_FILE} and {TEMPLATE_FILE} {}.Content equal the document rendered from {SCRIPT_FILE}",
            template::RESOURCE
        );
        return ExitCode::SUCCESS;
    }
    for message in &stale {
        eprintln!("{message}");
    }
    eprintln!("run: {WRITE_COMMAND}");
    ExitCode::FAILURE
}
