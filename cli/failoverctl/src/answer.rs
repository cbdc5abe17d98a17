//! A command's answer: JSON for scripts, a few readable lines for people.

use serde_json::Value;

/// What a command found or did.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Everything, as `--json` prints it.
    pub json: Value,
    /// The same for a person.
    pub text: String,
}

impl Answer {
    /// The answer in the chosen form.
    pub fn render(&self, json: bool) -> String {
        if json {
            serde_json::to_string_pretty(&self.json).unwrap_or_default()
        } else {
            self.text.clone()
        }
    }
}
