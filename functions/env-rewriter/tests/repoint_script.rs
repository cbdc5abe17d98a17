//! The repoint script, run for real with bash against fixture trees (Magento root with a
//! stub `bin/magento`, WordPress root with a stub `wp`, env and PHP-FPM pool files) and a
//! stub `systemctl` that records calls. Values go through the document's allowedPattern
//! and reach the script as SSM passes them (`interpolationType: ENV_VAR`: environment
//! variables `SSM_<parameter>`, never script text). The script's state (lock,
//! restart-pending marker) lives in the fixture's `state/` directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use env_rewriter::document::{parameter_specs, ssm_environment, SCRIPT};
use proptest::prelude::*;

const SYSTEMCTL: &str = r#"#!/bin/bash
echo "systemctl $*" >> "$STUB_LOG"
if [[ $1 == is-active ]]; then
  for failing in ${FAILING_SERVICES:-}; do [[ ${@: -1} == "$failing" ]] && exit 3; done
fi
if [[ $1 == restart ]]; then
  for failing in ${FAILING_RESTARTS:-}; do [[ ${@: -1} == "$failing" ]] && exit 1; done
fi
exit 0
"#;

const RUNUSER: &str = r#"#!/bin/bash
while [[ $# -gt 0 && $1 != -- ]]; do shift; done
shift
exec "$@"
"#;

const WP: &str = r#"#!/bin/bash
echo "wp $*" >> "$STUB_LOG"
for arg in "$@"; do [[ $arg == --path=* ]] && root=${arg#--path=}; done
file="$root/wp-config.php"
if [[ "$1 $2" == "config get" ]]; then
  while IFS= read -r line; do
    if [[ $line =~ ^define\(\ \'DB_HOST\',\ \'(.*)\'\ \)\;$ ]]; then echo "${BASH_REMATCH[1]}"; fi
  done < "$file"
elif [[ "$1 $2" == "config set" ]]; then
  tmp=$(mktemp)
  while IFS= read -r line; do
    if [[ $line == "define( 'DB_HOST',"* ]]; then printf "define( 'DB_HOST', '%s' );\n" "$4"; else printf '%s\n' "$line"; fi
  done < "$file" > "$tmp"
  cat "$tmp" > "$file"
fi
"#;

const MAGENTO: &str = r#"#!/bin/bash
echo "magento $*" >> "$STUB_LOG"
if [[ $1 == cache:flush && -n ${FAIL_CACHE_FLUSH:-} ]]; then
  echo "cache:flush: Redis connection refused" >&2
  exit 1
fi
if [[ $1 == setup:config:set ]]; then
  host=${2#--db-host=}
  tmp=$(mktemp)
  while IFS= read -r line; do
    if [[ $line == *"'host' => '"* ]]; then printf "        'host' => '%s',\n" "$host"; else printf '%s\n' "$line"; fi
  done < app/etc/env.php > "$tmp"
  cat "$tmp" > app/etc/env.php
fi
"#;

const ENV_FILE: &str = "# shop settings\nexport AWS_REGION=us-east-1\nAPP_NAME=shop\nDB_HOST=old-db.us-east-1.rds.amazonaws.com\n\nCACHE_TTL=300";
const POOL_FILE: &str = "[www]\nuser = www-data\nenv[AWS_REGION] = us-east-1\nenv[PATH] = /usr/local/bin:/usr/bin\n";

/// A fixture server: stubs, app roots, env and pool files, in a temporary directory.
struct Server {
    dir: tempfile::TempDir,
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

impl Server {
    fn new() -> Self {
        let server = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        write(&server.path("bin/systemctl"), SYSTEMCTL, 0o755);
        write(&server.path("bin/runuser"), RUNUSER, 0o755);
        write(&server.path("bin/wp"), WP, 0o755);
        write(&server.path("magento/bin/magento"), MAGENTO, 0o755);
        write(
            &server.path("magento/app/etc/env.php"),
            "<?php\nreturn [\n    'db' => [\n        'connection' => [\n            'default' => [\n        'host' => 'old-db.us-east-1.rds.amazonaws.com',\n            ],\n        ],\n    ],\n];\n",
            0o640,
        );
        write(
            &server.path("wordpress/wp-config.php"),
            "<?php\ndefine( 'DB_NAME', 'shop' );\ndefine( 'DB_HOST', 'old-db.us-east-1.rds.amazonaws.com' );\n",
            0o640,
        );
        write(&server.path("etc/shop.env"), ENV_FILE, 0o640);
        write(&server.path("etc/pool.d/www.conf"), POOL_FILE, 0o644);
        server
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn p(&self, relative: &str) -> String {
        self.path(relative).to_string_lossy().into_owned()
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("calls.log")).unwrap_or_default()
    }

    fn backups(&self, relative: &str) -> usize {
        let file = self.path(relative);
        let name = format!("{}.bak.", file.file_name().unwrap().to_string_lossy());
        fs::read_dir(file.parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(&name))
            .count()
    }

    fn values(&self, profile: &str, db_host: &str, db_port: &str) -> Vec<(String, String)> {
        let root = match profile {
            "magento" => self.p("magento"),
            "wordpress" => self.p("wordpress"),
            _ => "/".to_owned(),
        };
        vec![
            ("appProfile".into(), profile.into()),
            ("region".into(), "us-west-2".into()),
            ("dbHost".into(), db_host.into()),
            ("dbPort".into(), db_port.into()),
            ("appRoot".into(), root),
            ("webUser".into(), "www-data".into()),
            ("envFile".into(), self.p("etc/shop.env")),
            ("regionKeys".into(), "AWS_REGION,DYNAMODB_REGION".into()),
            ("dbHostKey".into(), "DB_HOST".into()),
            ("fpmPoolFiles".into(), self.p("etc/pool.d/www.conf")),
            ("services".into(), "php8.2-fpm,nginx".into()),
        ]
    }

    /// Passes the values as SSM does (after the allowedPattern check) and runs the script.
    fn run(&self, values: &[(String, String)], failing_services: &str) -> Result<Output, String> {
        self.run_with(values, &[("FAILING_SERVICES", failing_services)])
    }

    /// [`Self::run`] with extra environment for the stubs (`FAILING_SERVICES`,
    /// `FAILING_RESTARTS`, `FAIL_CACHE_FLUSH`) or the script (`REPOINT_LOCK_WAIT_SECONDS`).
    fn run_with(&self, values: &[(String, String)], env: &[(&str, &str)]) -> Result<Output, String> {
        Ok(self.command(values)?.envs(env.iter().copied()).output().unwrap())
    }

    /// The script with its parameters in the environment, ready to run with the stubs on PATH.
    fn command(&self, values: &[(String, String)]) -> Result<Command, String> {
        self.command_checked(values, |pattern, value| {
            regex::Regex::new(pattern).unwrap().is_match(value)
        })
    }

    /// [`Self::command`] with `matches` in place of SSM's allowedPattern check.
    fn command_checked(
        &self,
        values: &[(String, String)],
        matches: impl Fn(&str, &str) -> bool,
    ) -> Result<Command, String> {
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let environment = ssm_environment(SCRIPT, &pairs, matches)?;
        let path = self.path("repoint.sh");
        fs::write(&path, SCRIPT).unwrap();
        let mut command = Command::new("bash");
        command
            .arg(&path)
            .current_dir(self.dir.path())
            .env(
                "PATH",
                format!("{}:{}", self.p("bin"), std::env::var("PATH").unwrap_or_default()),
            )
            .env("STUB_LOG", self.path("calls.log"))
            .env("REPOINT_STATE_DIR", self.path("state"))
            .envs(environment)
            .env_remove("REPOINT_LOCK_WAIT_SECONDS")
            .env_remove("FAILING_SERVICES")
            .env_remove("FAILING_RESTARTS")
            .env_remove("FAIL_CACHE_FLUSH");
        Ok(command)
    }

    fn pending(&self) -> bool {
        self.path("state/restart-pending").exists()
    }

    fn clear_log(&self) {
        let _ = fs::remove_file(self.path("calls.log"));
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const NEW_HOST: &str = "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com";

#[test]
fn magento_is_repointed_files_rewritten_and_services_restarted_once() {
    let server = Server::new();
    let values = server.values("magento", NEW_HOST, "");
    let first = server.run(&values, "").unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));

    assert!(server
        .read("magento/app/etc/env.php")
        .contains(&format!("'host' => '{NEW_HOST}'")));
    let log = server.log();
    assert!(
        log.contains(&format!(
            "magento setup:config:set --db-host={NEW_HOST} --no-interaction"
        )),
        "{log}"
    );
    assert!(log.contains("magento cache:flush"));
    assert_eq!(
        server.read("etc/shop.env"),
        format!("# shop settings\nexport AWS_REGION=us-west-2\nAPP_NAME=shop\nDB_HOST={NEW_HOST}\n\nCACHE_TTL=300\nDYNAMODB_REGION=us-west-2\n")
    );
    assert_eq!(mode(&server.path("etc/shop.env")), 0o640, "file mode kept");
    assert_eq!(server.backups("etc/shop.env"), 1, "timestamped backup made");
    assert_eq!(server.read("etc/pool.d/www.conf"), format!("[www]\nuser = www-data\nenv[AWS_REGION] = us-west-2\nenv[PATH] = /usr/local/bin:/usr/bin\nenv[DB_HOST] = {NEW_HOST}\nenv[DYNAMODB_REGION] = us-west-2\n"));
    assert_eq!(mode(&server.path("etc/pool.d/www.conf")), 0o644);
    assert!(
        log.contains("systemctl restart -- php8.2-fpm") && log.contains("systemctl restart -- nginx"),
        "{log}"
    );
    assert!(stdout(&first).contains("restarted=php8.2-fpm nginx"));

    // Idempotent: the same values again change nothing and restart nothing.
    fs::remove_file(server.path("calls.log")).unwrap();
    let env_before = server.read("etc/shop.env");
    let second = server.run(&values, "").unwrap();
    assert!(second.status.success());
    let log = server.log();
    assert!(!log.contains("magento") && !log.contains("restart"), "{log}");
    assert!(
        log.contains("systemctl is-active --quiet -- nginx"),
        "services are still checked"
    );
    assert_eq!(server.read("etc/shop.env"), env_before);
    assert_eq!(server.backups("etc/shop.env"), 1);
    assert!(
        stdout(&second).contains("changed=none restarted=none"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn wordpress_gets_host_and_port_through_wp_cli() {
    let server = Server::new();
    let output = server.run(&server.values("wordpress", NEW_HOST, "3307"), "").unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(server
        .read("wordpress/wp-config.php")
        .contains(&format!("define( 'DB_HOST', '{NEW_HOST}:3307' );")));
    assert!(server.log().contains(&format!("wp config set DB_HOST {NEW_HOST}:3307")));
    assert!(server
        .read("etc/shop.env")
        .contains(&format!("DB_HOST={NEW_HOST}:3307\n")));
    let again = server.run(&server.values("wordpress", NEW_HOST, "3307"), "").unwrap();
    assert!(stdout(&again).contains("changed=none"));
}

#[test]
fn a_region_only_switch_leaves_the_database_alone() {
    let server = Server::new();
    let output = server.run(&server.values("magento", "", ""), "").unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!server.log().contains("magento"));
    let env = server.read("etc/shop.env");
    assert!(
        env.contains("export AWS_REGION=us-west-2\n") && env.contains("DB_HOST=old-db.us-east-1.rds.amazonaws.com\n")
    );
}

#[test]
fn a_service_that_does_not_come_back_fails_the_run_and_says_which() {
    let server = Server::new();
    let output = server.run(&server.values("envfile", NEW_HOST, ""), "nginx").unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("service nginx is not active"));
}

#[test]
fn a_missing_file_fails_clearly_and_changes_nothing() {
    let server = Server::new();
    let mut values = server.values("envfile", NEW_HOST, "");
    values[6].1 = server.p("etc/missing.env");
    let pool_before = server.read("etc/pool.d/www.conf");
    let output = server.run(&values, "").unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.env not found"));
    assert_eq!(server.read("etc/pool.d/www.conf"), pool_before);
    assert!(!server.log().contains("restart"));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_failed_restart_is_redone_by_the_retry_although_nothing_is_left_to_change() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    let first = server.run_with(&values, &[("FAILING_RESTARTS", "nginx")]).unwrap();
    assert!(!first.status.success());
    assert!(
        stderr(&first).contains("systemctl restart nginx failed"),
        "{}",
        stderr(&first)
    );
    assert!(server.read("etc/shop.env").contains(&format!("DB_HOST={NEW_HOST}\n")));
    assert!(server.pending(), "the restart is recorded as pending");

    server.clear_log();
    let retry = server.run(&values, "").unwrap();
    assert!(retry.status.success(), "{}", stderr(&retry));
    let log = server.log();
    assert!(
        log.contains("systemctl restart -- php8.2-fpm") && log.contains("systemctl restart -- nginx"),
        "{log}"
    );
    assert!(
        stdout(&retry).contains("changed=none restarted=php8.2-fpm nginx resumed=restart"),
        "{}",
        stdout(&retry)
    );
    assert!(!server.pending(), "cleared once restarts and checks passed");
    assert_eq!(server.backups("etc/shop.env"), 1, "the retry rewrote nothing");

    server.clear_log();
    let clean = server.run(&values, "").unwrap();
    assert!(clean.status.success());
    assert!(!server.log().contains("restart"), "{}", server.log());
    assert!(
        stdout(&clean).ends_with("changed=none restarted=none\n"),
        "{}",
        stdout(&clean)
    );
}

#[test]
fn a_service_still_inactive_after_its_restart_keeps_the_restart_pending() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    let first = server.run(&values, "nginx").unwrap();
    assert!(!first.status.success());
    assert!(server.pending());
    server.clear_log();
    let retry = server.run(&values, "").unwrap();
    assert!(retry.status.success(), "{}", stderr(&retry));
    assert!(server.log().contains("systemctl restart -- nginx"), "{}", server.log());
    assert!(!server.pending());
}

#[test]
fn a_failed_magento_cache_flush_is_redone_with_the_restarts_by_the_retry() {
    let server = Server::new();
    let values = server.values("magento", NEW_HOST, "");
    let first = server.run_with(&values, &[("FAIL_CACHE_FLUSH", "1")]).unwrap();
    assert!(!first.status.success());
    assert!(
        stderr(&first).contains("bin/magento cache:flush failed"),
        "{}",
        stderr(&first)
    );
    assert!(server
        .read("magento/app/etc/env.php")
        .contains(&format!("'host' => '{NEW_HOST}'")));
    assert!(!server.log().contains("systemctl restart"), "{}", server.log());
    assert!(server.pending());

    server.clear_log();
    let retry = server.run(&values, "").unwrap();
    assert!(retry.status.success(), "{}", stderr(&retry));
    let log = server.log();
    assert!(!log.contains("setup:config:set"), "the host is already set: {log}");
    assert!(log.contains("magento cache:flush"), "{log}");
    assert!(
        log.contains("systemctl restart -- php8.2-fpm") && log.contains("systemctl restart -- nginx"),
        "{log}"
    );
    assert!(
        stdout(&retry).contains("resumed=restart cache-flush"),
        "{}",
        stdout(&retry)
    );
    assert!(!server.pending());

    server.clear_log();
    let clean = server.run(&values, "").unwrap();
    assert!(clean.status.success());
    let log = server.log();
    assert!(!log.contains("magento") && !log.contains("restart"), "{log}");
}

/// Holds the script's lock from another process (as a concurrent run would) for `seconds`.
fn hold_lock(server: &Server, seconds: &str) -> std::process::Child {
    fs::create_dir_all(server.path("state")).unwrap();
    let held = server.path("held");
    let child = Command::new("flock")
        .arg(server.path("state/lock"))
        .arg("sh")
        .arg("-c")
        .arg(format!("touch '{}'; sleep {seconds}", held.display()))
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !held.exists() {
        assert!(started.elapsed().as_secs() < 10, "the lock holder did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

#[test]
fn a_concurrent_run_waits_for_the_lock_then_finds_nothing_left_to_do() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    assert!(server.run(&values, "").unwrap().status.success());
    server.clear_log();
    let mut holder = hold_lock(&server, "1");
    let started = std::time::Instant::now();
    let second = server.run(&values, "").unwrap();
    let waited = started.elapsed();
    holder.wait().unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        waited >= std::time::Duration::from_millis(800),
        "the run went ahead while the lock was held (took {waited:?})"
    );
    assert!(stdout(&second).contains("changed=none restarted=none"));
}

#[test]
fn a_run_that_cannot_get_the_lock_in_time_fails_clearly_and_changes_nothing() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    let env_before = server.read("etc/shop.env");
    let mut holder = hold_lock(&server, "3");
    let output = server.run_with(&values, &[("REPOINT_LOCK_WAIT_SECONDS", "1")]).unwrap();
    holder.wait().unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("another repoint run still holds") && stderr(&output).contains("after 1s"),
        "{}",
        stderr(&output)
    );
    assert_eq!(server.read("etc/shop.env"), env_before);
    assert!(server.log().is_empty(), "{}", server.log());
    assert!(!server.pending());
}

#[test]
fn without_pool_files_region_keys_or_services_the_script_still_runs() {
    // The empty lists are the arrays bash before 4.4 rejects under `set -u` unless guarded.
    let server = Server::new();
    let mut values = server.values("envfile", "", "");
    for (key, value) in values.iter_mut() {
        if matches!(key.as_str(), "fpmPoolFiles" | "regionKeys" | "services") {
            value.clear();
        }
    }
    let output = server.run(&values, "").unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("restarted=none"), "{}", stdout(&output));
    assert!(
        !server.log().contains("systemctl"),
        "no services, no calls: {}",
        server.log()
    );
    assert!(!server.pending());
}

#[test]
fn the_script_avoids_what_bash_before_4_4_rejects() {
    // Bash 4.2/4.3 (Amazon Linux 2, CentOS 7) abort on "${a[@]}" of an empty array under
    // `set -u`, and 4.2 has no `-v` for array elements; none is available here to run, so
    // the constructs are refused by text.
    let unguarded = regex::Regex::new(r#"(^|[^+])"\$\{[A-Za-z_][A-Za-z0-9_]*\[@\]\}""#).unwrap();
    let test_v = regex::Regex::new(r"(\[\[|&&|\|\||!)\s+-v\s").unwrap();
    for (n, line) in SCRIPT.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or_default();
        if code.trim_start().starts_with('#') {
            continue;
        }
        assert!(
            !unguarded.is_match(code),
            "line {}: expand possibly empty arrays as ${{a[@]+\"${{a[@]}}\"}}: {line}",
            n + 1
        );
        assert!(
            !test_v.is_match(code),
            "line {}: `[[ -v a[k] ]]` needs bash 4.3: {line}",
            n + 1
        );
    }
    assert!(SCRIPT.contains("bash 4.2 or later is required"));
}

fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "'",
        "\"",
        "$(touch PWNED)",
        "`touch PWNED`",
        ";touch PWNED",
        "\ntouch PWNED",
        "|| touch PWNED",
        "&",
        " ",
        "\\",
        "é",
        "中",
        "🚀",
        "$HOME",
        "${IFS}",
        ">PWNED",
        "*",
        "..",
        "-",
        ".",
        "db",
        "us-west-2",
        "3306",
        "\u{0}",
    ]);
    prop::collection::vec(pieces, 1..6).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any value for any parameter is refused by its allowedPattern (and by the Rust
    /// validators), or ends up literally in the files with nothing executed.
    #[test]
    fn hostile_values_are_refused_or_stay_literal(value in hostile(), parameter in 0usize..4) {
        let server = Server::new();
        let name = ["region", "dbHost", "dbPort", "services"][parameter];
        let mut values = server.values("envfile", NEW_HOST, "");
        values.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.clone();
        let rust_accepts = match name {
            "region" => Some(failover_core::Region::new(&value).is_ok()),
            "dbHost" => Some(value.is_empty() || env_rewriter::domain::DbHost::new(&value).is_ok()),
            _ => None,
        };
        match server.run(&values, "") {
            Err(refused) => {
                prop_assert!(refused.contains("does not match"), "{}", refused);
                prop_assert!(rust_accepts != Some(true), "the function would send {:?} for {} but SSM refuses it", value, name);
            }
            Ok(output) => {
                prop_assert!(!server.path("PWNED").exists(), "{:?} executed code", value);
                prop_assert!(rust_accepts != Some(false), "SSM accepts {:?} for {} but the function refuses it", value, name);
                if output.status.success() {
                    let env = server.read("etc/shop.env");
                    let expected = match name {
                        "region" => Some(format!("AWS_REGION={value}\n")),
                        "dbHost" if !value.is_empty() => Some(format!("DB_HOST={value}\n")),
                        _ => None,
                    };
                    if let Some(expected) = expected {
                        prop_assert!(env.contains(&expected), "{} not literally in {}", expected, env);
                    }
                }
            }
        }
    }
}

#[test]
fn the_region_pattern_admits_exactly_the_regions_the_function_sends() {
    let spec = parameter_specs(SCRIPT)
        .into_iter()
        .find(|s| s.name == "region")
        .unwrap();
    let pattern = regex::Regex::new(&spec.pattern).unwrap();
    for value in [
        "us-west-2",
        "us-gov-east-1",
        "ap-southeast-10",
        "dbus-west-2",
        "a-b-c-d-1",
        "a-b-c-d-e-1",
        "us-west",
        "us-west-123",
        "us--west-2",
        "US-west-2",
        "uswest2",
    ] {
        assert_eq!(
            pattern.is_match(value),
            failover_core::Region::new(value).is_ok(),
            "{value}: SSM and the function disagree"
        );
    }
    // Only length is beyond the pattern; the function's 32-character cap is the stricter.
    assert!(failover_core::Region::new(&format!("{}-west-2", "a".repeat(30))).is_err());
}

#[test]
fn every_document_pattern_refuses_shell_metacharacters() {
    for spec in parameter_specs(SCRIPT) {
        let pattern = regex::Regex::new(&spec.pattern).unwrap();
        for bad in [
            "'", "\"", "$(id)", "`id`", ";", "\n", "|", "&", ">", "<", "\\", " ", "*", "é",
        ] {
            assert!(!pattern.is_match(&format!("a{bad}b")), "{} admits {bad:?}", spec.name);
        }
    }
}

/// The script's own parsing, with SSM's allowedPattern check switched off (a pattern
/// mistake, a future parameter): a value is data whatever it contains, because it reaches
/// bash as an environment variable, never as script text. Each hostile value is refused by
/// the script's re-check or written literally, and the command it carries never runs.
#[test]
fn with_the_pattern_checks_off_hostile_values_are_still_never_run() {
    let accept_anything = |_: &str, _: &str| true;
    let payloads = [
        "x'; touch PWNED; echo '",
        "x\"; touch PWNED; echo \"",
        "$(touch PWNED)",
        "`touch PWNED`",
        "x; touch PWNED",
        "x\ntouch PWNED",
        "x' $(touch PWNED) '",
    ];
    // Every parameter of the document, as the script declares them.
    let specs = parameter_specs(SCRIPT);
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    for name in names {
        for payload in payloads {
            let server = Server::new();
            let mut values = server.values("envfile", NEW_HOST, "");
            values.iter_mut().find(|(k, _)| k == name).unwrap().1 = payload.to_owned();
            let output = server
                .command_checked(&values, accept_anything)
                .unwrap()
                .output()
                .unwrap();
            assert!(!server.path("PWNED").exists(), "{name}={payload:?} executed code");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && stderr.contains(&format!("invalid {name}")),
                "{name}={payload:?} was not refused by the script's own check: status {:?}, stderr {stderr}",
                output.status
            );
        }
    }
}

/// The check above can fail: the same payload, written into the script's text as the
/// document did before `interpolationType: ENV_VAR` (`VAR='{{ value }}'`), runs.
#[test]
fn textual_substitution_would_have_run_the_payload() {
    let server = Server::new();
    let script = format!("REGION='{}'\necho \"$REGION\"\n", "x'; touch PWNED; echo '");
    let path = server.path("textual.sh");
    fs::write(&path, script).unwrap();
    let status = Command::new("bash")
        .arg(&path)
        .current_dir(server.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        server.path("PWNED").exists(),
        "the textual substitution of the old document ran the payload"
    );
}

#[test]
fn an_agent_that_does_not_pass_the_parameters_changes_nothing() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    let before = server.read("etc/shop.env");
    let output = server
        .command(&values)
        .unwrap()
        .env_remove("SSM_region")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("SSM_region is not set"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.read("etc/shop.env"), before, "nothing was rewritten");
    assert!(server.log().is_empty(), "nothing was restarted: {}", server.log());
}
