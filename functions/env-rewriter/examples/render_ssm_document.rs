//! Prints the SSM Command document rendered from `infra/ssm/repoint-app.sh`:
//! `cargo run -p env-rewriter --example render_ssm_document > infra/ssm/repoint-app-document.json`

fn main() {
    let document = env_rewriter::document::render(env_rewriter::document::SCRIPT);
    println!(
        "{}",
        serde_json::to_string_pretty(&document).expect("a JSON value always serializes")
    );
}
