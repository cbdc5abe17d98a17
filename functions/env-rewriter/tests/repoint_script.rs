//! The repoint script, run for real with bash against fixture trees (Magento root with the
//! `bin/magento` stub, WordPress root read and written through the `wp` stub, env and PHP-FPM
//! pool files) and the shared app-server stubs of `tests/app-server-stubs/` on `PATH` (a
//! `systemctl` that lists unit files and records calls, `runuser`, `crontab`). Values go
//! through the document's allowedPattern and reach the script as SSM passes them
//! (`interpolationType: ENV_VAR`: environment variables `SSM_<parameter>`, never script text).
//! The script's state (lock, restart-pending marker) lives in the fixture's `state/`, the
//! stubs' in `stub/`, the WordPress cron entry in `cron.d/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use env_rewriter::document::{parameter_specs, ssm_environment, SCRIPT};
use proptest::prelude::*;

/// The shared stubs (tests/app-server-stubs/), installed on the fixture's PATH.
const STUBS: [(&str, &str); 4] = [
    ("systemctl", include_str!("../../../tests/app-server-stubs/systemctl")),
    ("runuser", include_str!("../../../tests/app-server-stubs/runuser")),
    ("crontab", include_str!("../../../tests/app-server-stubs/crontab")),
    ("wp", include_str!("../../../tests/app-server-stubs/wp")),
];
const MAGENTO: &str = include_str!("../../../tests/app-server-stubs/magento");

const ENV_FILE: &str = "# shop settings\nexport AWS_REGION=us-east-1\nAPP_NAME=shop\nDB_HOST=old-db.us-east-1.rds.amazonaws.com\n\nCACHE_TTL=300";
const POOL_FILE: &str = "[www]\nuser = www-data\nenv[AWS_REGION] = us-east-1\nenv[PATH] = /usr/local/bin:/usr/bin\n";
/// Magento's env.php as `setup:install` writes it: the database, Redis sessions, the Redis
/// default cache; the page cache on the file system (so it is not Redis's to repoint).
const ENV_PHP: &str = r#"<?php
return [
    'db' => [
        'table_prefix' => '',
        'connection' => [
            'default' => [
                'host' => 'old-db.us-east-1.rds.amazonaws.com',
                'dbname' => 'magento',
                'username' => 'magento',
                'password' => 'secret',
            ],
        ],
    ],
    'session' => [
        'save' => 'redis',
        'redis' => [
            'host' => 'shop-cache.use1.cache.amazonaws.com',
            'port' => '6379',
            'database' => '2',
        ],
    ],
    'cache' => [
        'frontend' => [
            'default' => [
                'backend' => 'Magento\\Framework\\Cache\\Backend\\Redis',
                'backend_options' => [
                    'server' => 'shop-cache.use1.cache.amazonaws.com',
                    'database' => '0',
                    'port' => '6379',
                ],
            ],
        ],
    ],
];
"#;
const WP_CONFIG: &str =
    "<?php\ndefine( 'DB_NAME', 'shop' );\ndefine( 'DB_HOST', 'old-db.us-east-1.rds.amazonaws.com' );\ndefine( 'WP_REDIS_HOST', 'shop-cache.use1.cache.amazonaws.com' );\n";
/// Debian and Ubuntu: PHP-FPM's unit carries the PHP version; nginx serves.
const DEBIAN_UNITS: &str = "php8.2-fpm.service enabled\nnginx.service enabled\napache2.service disabled\n";
/// Amazon Linux and RHEL: `php-fpm` and Apache's `httpd`.
const AMAZON_LINUX_UNITS: &str = "php-fpm.service enabled\nhttpd.service enabled\nnginx.service disabled\n";

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
    /// A Debian server ([`DEBIAN_UNITS`]).
    fn new() -> Self {
        let server = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, text) in STUBS {
            write(&server.path(&format!("bin/{name}")), text, 0o755);
        }
        write(&server.path("magento/bin/magento"), MAGENTO, 0o755);
        write(&server.path("magento/app/etc/env.php"), ENV_PHP, 0o640);
        write(&server.path("wordpress/wp-config.php"), WP_CONFIG, 0o640);
        write(&server.path("etc/shop.env"), ENV_FILE, 0o640);
        write(&server.path("etc/pool.d/www.conf"), POOL_FILE, 0o644);
        write(&server.path("stub/units"), DEBIAN_UNITS, 0o644);
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

    /// Makes a stub fail (README of the stubs): `nginx` down, `restart-nginx`, `magento-cache:flush`.
    fn fail(&self, what: &str) {
        write(&self.path(&format!("stub/fail/{what}")), "", 0o644);
    }

    /// Lifts every [`Self::fail`].
    fn heal(&self) {
        let _ = fs::remove_dir_all(self.path("stub/fail"));
    }

    fn backups(&self, relative: &str) -> usize {
        let file = self.path(relative);
        let name = format!("{}.bak.", file.file_name().unwrap().to_string_lossy());
        fs::read_dir(file.parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(&name))
            .count()
    }

    /// Every parameter, as the function sends them for `profile` (services detected, the
    /// web user too; this server's region us-west-2, the region pointed at).
    fn values(&self, profile: &str, db_host: &str, db_port: &str) -> Vec<(String, String)> {
        let root = match profile {
            "magento" => self.p("magento"),
            "wordpress" => self.p("wordpress"),
            _ => "/".to_owned(),
        };
        vec![
            ("appProfile".into(), profile.into()),
            ("region".into(), "us-west-2".into()),
            ("serverRegion".into(), "".into()),
            ("dbHost".into(), db_host.into()),
            ("dbPort".into(), db_port.into()),
            ("cacheHost".into(), "".into()),
            ("cacheHosts".into(), "".into()),
            ("appRoot".into(), root),
            ("webUser".into(), "www-data".into()),
            ("envFile".into(), self.p("etc/shop.env")),
            ("regionKeys".into(), "AWS_REGION,DYNAMODB_REGION".into()),
            ("dbHostKey".into(), "DB_HOST".into()),
            ("cacheHostKey".into(), "REDIS_HOST".into()),
            ("fpmPoolFiles".into(), self.p("etc/pool.d/www.conf")),
            ("services".into(), "".into()),
            ("cronTimers".into(), "".into()),
            ("maintenance".into(), "".into()),
            ("maintenanceKey".into(), "".into()),
            ("executionTimeout".into(), "600".into()),
        ]
    }

    /// Passes the values as SSM does (after the allowedPattern check) and runs the script.
    fn run(&self, values: &[(String, String)]) -> Result<Output, String> {
        self.run_with(values, &[])
    }

    /// [`Self::run`] with extra environment for the script (`REPOINT_LOCK_WAIT_SECONDS`).
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
            .env("STUB_DIR", self.path("stub"))
            .env("REPOINT_STATE_DIR", self.path("state"))
            .env("REPOINT_CRON_DIR", self.path("cron.d"))
            .envs(environment)
            .env_remove("REPOINT_LOCK_WAIT_SECONDS");
        Ok(command)
    }

    fn pending(&self) -> bool {
        self.path("state/restart-pending").exists()
    }

    fn clear_log(&self) {
        let _ = fs::remove_file(self.path("calls.log"));
    }
}

/// `values` with `name` set to `value`.
fn with(mut values: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    values
        .iter_mut()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .1 = value.to_owned();
    values
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const NEW_HOST: &str = "shop-db-replica.c9akciq32.us-west-2.rds.amazonaws.com";

#[test]
fn magento_is_repointed_files_rewritten_and_services_reloaded_once() {
    let server = Server::new();
    let values = server.values("magento", NEW_HOST, "");
    let first = server.run(&values).unwrap();
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
        log.contains("systemctl reload-or-restart -- php8.2-fpm")
            && log.contains("systemctl reload-or-restart -- nginx")
            && !log.contains("systemctl restart"),
        "the detected Debian units are reloaded: {log}"
    );
    assert!(
        stdout(&first).contains("restarted=none reloaded=php8.2-fpm nginx"),
        "{}",
        stdout(&first)
    );

    // Idempotent: the same values again change nothing and restart nothing.
    fs::remove_file(server.path("calls.log")).unwrap();
    let env_before = server.read("etc/shop.env");
    let second = server.run(&values).unwrap();
    assert!(second.status.success());
    let log = server.log();
    assert!(!log.contains("magento ") && !log.contains("restart"), "{log}");
    assert!(
        log.contains("systemctl is-active --quiet -- nginx"),
        "services are still checked"
    );
    assert_eq!(server.read("etc/shop.env"), env_before);
    assert_eq!(server.backups("etc/shop.env"), 1);
    assert!(
        stdout(&second).contains("changed=none restarted=none reloaded=none"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn wordpress_gets_host_and_port_through_wp_cli() {
    let server = Server::new();
    let output = server.run(&server.values("wordpress", NEW_HOST, "3307")).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(server
        .read("wordpress/wp-config.php")
        .contains(&format!("define( 'DB_HOST', '{NEW_HOST}:3307' );")));
    assert!(server.log().contains(&format!("wp config set DB_HOST {NEW_HOST}:3307")));
    assert!(server
        .read("etc/shop.env")
        .contains(&format!("DB_HOST={NEW_HOST}:3307\n")));
    let again = server.run(&server.values("wordpress", NEW_HOST, "3307")).unwrap();
    assert!(stdout(&again).contains("changed=none"));
}

#[test]
fn a_region_only_switch_leaves_the_database_alone() {
    let server = Server::new();
    let output = server.run(&server.values("magento", "", "")).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!server.log().contains("magento "));
    let env = server.read("etc/shop.env");
    assert!(
        env.contains("export AWS_REGION=us-west-2\n") && env.contains("DB_HOST=old-db.us-east-1.rds.amazonaws.com\n")
    );
}

#[test]
fn a_service_that_does_not_come_back_fails_the_run_and_says_which() {
    let server = Server::new();
    server.fail("nginx");
    let output = server.run(&server.values("envfile", NEW_HOST, "")).unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("systemctl reload-or-restart nginx failed"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_file_fails_clearly_and_changes_nothing() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    let values = with(values, "envFile", &server.p("etc/missing.env"));
    let pool_before = server.read("etc/pool.d/www.conf");
    let output = server.run(&values).unwrap();
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
    server.fail("restart-nginx");
    let first = server.run(&values).unwrap();
    server.heal();
    assert!(!first.status.success());
    assert!(
        stderr(&first).contains("systemctl reload-or-restart nginx failed"),
        "{}",
        stderr(&first)
    );
    assert!(server.read("etc/shop.env").contains(&format!("DB_HOST={NEW_HOST}\n")));
    assert!(server.pending(), "the restart is recorded as pending");

    server.clear_log();
    let retry = server.run(&values).unwrap();
    assert!(retry.status.success(), "{}", stderr(&retry));
    let log = server.log();
    assert!(
        log.contains("systemctl restart -- php8.2-fpm") && log.contains("systemctl restart -- nginx"),
        "{log}"
    );
    assert!(
        stdout(&retry).contains("changed=none restarted=php8.2-fpm nginx reloaded=none")
            && stdout(&retry).ends_with("resumed=restart\n"),
        "{}",
        stdout(&retry)
    );
    assert!(!server.pending(), "cleared once restarts and checks passed");
    assert_eq!(server.backups("etc/shop.env"), 1, "the retry rewrote nothing");

    server.clear_log();
    let clean = server.run(&values).unwrap();
    assert!(clean.status.success());
    assert!(!server.log().contains("restart"), "{}", server.log());
    assert!(
        stdout(&clean).contains("changed=none restarted=none reloaded=none") && !stdout(&clean).contains("resumed"),
        "{}",
        stdout(&clean)
    );
}

#[test]
fn a_service_still_inactive_after_its_restart_keeps_the_restart_pending() {
    let server = Server::new();
    let values = server.values("envfile", NEW_HOST, "");
    server.fail("nginx");
    let first = server.run(&values).unwrap();
    server.heal();
    assert!(!first.status.success());
    assert!(server.pending());
    server.clear_log();
    let retry = server.run(&values).unwrap();
    assert!(retry.status.success(), "{}", stderr(&retry));
    assert!(server.log().contains("systemctl restart -- nginx"), "{}", server.log());
    assert!(!server.pending());
}

#[test]
fn a_failed_magento_cache_flush_is_redone_with_the_restarts_by_the_retry() {
    let server = Server::new();
    let values = server.values("magento", NEW_HOST, "");
    server.fail("magento-cache:flush");
    let first = server.run(&values).unwrap();
    server.heal();
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
    let retry = server.run(&values).unwrap();
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
    let clean = server.run(&values).unwrap();
    assert!(clean.status.success());
    let log = server.log();
    assert!(!log.contains("magento ") && !log.contains("restart"), "{log}");
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
    assert!(server.run(&values).unwrap().status.success());
    server.clear_log();
    let mut holder = hold_lock(&server, "1");
    let started = std::time::Instant::now();
    let second = server.run(&values).unwrap();
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
    let mut values = server.values("magento", "", "");
    for (key, value) in values.iter_mut() {
        if matches!(key.as_str(), "fpmPoolFiles" | "regionKeys" | "services" | "envFile") {
            value.clear();
        }
    }
    fs::remove_file(server.path("stub/units")).unwrap();
    let output = server.run(&values).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("restarted=none reloaded=none") && stdout(&output).contains("services=none"),
        "{}",
        stdout(&output)
    );
    assert!(
        !server.log().contains("restart") && !server.log().contains("is-active"),
        "no services, nothing restarted or checked: {}",
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

/// The parameters the property test puts hostile values in: every value the function
/// computes or takes from configuration (the paths are covered by the test below).
const HOSTILE_TARGETS: [&str; 13] = [
    "region",
    "serverRegion",
    "dbHost",
    "dbPort",
    "cacheHost",
    "cacheHosts",
    "webUser",
    "cacheHostKey",
    "services",
    "cronTimers",
    "maintenance",
    "maintenanceKey",
    "executionTimeout",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any value for any parameter is refused by its allowedPattern (and by the Rust
    /// validators), or ends up literally in the files with nothing executed.
    #[test]
    fn hostile_values_are_refused_or_stay_literal(value in hostile(), parameter in 0usize..HOSTILE_TARGETS.len()) {
        let server = Server::new();
        let name = HOSTILE_TARGETS[parameter];
        let mut values = server.values("envfile", NEW_HOST, "");
        values.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.clone();
        let rust_accepts = match name {
            "region" => Some(failover_core::Region::new(&value).is_ok()),
            "serverRegion" => Some(value.is_empty() || failover_core::Region::new(&value).is_ok()),
            "dbHost" | "cacheHost" => Some(value.is_empty() || env_rewriter::domain::DbHost::new(&value).is_ok()),
            _ => None,
        };
        match server.run(&values) {
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
                        "cacheHost" if !value.is_empty() => Some(format!("REDIS_HOST={value}\n")),
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

// ---------------------------------------------------------------- distributions, caches, cron, maintenance

const NEW_CACHE: &str = "shop-cache.usw2.cache.amazonaws.com";

#[test]
fn the_php_fpm_unit_and_web_server_are_detected_per_distribution() {
    for (units, expected) in [
        (DEBIAN_UNITS, ["php8.2-fpm", "nginx"]),
        (AMAZON_LINUX_UNITS, ["php-fpm", "httpd"]),
    ] {
        let server = Server::new();
        write(&server.path("stub/units"), units, 0o644);
        let output = server.run(&server.values("envfile", NEW_HOST, "")).unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let log = server.log();
        for unit in expected {
            assert!(
                log.contains(&format!("systemctl reload-or-restart -- {unit}\n")),
                "{unit} reloaded: {log}"
            );
        }
        assert!(
            stdout(&output).contains(&format!("services={}", expected.join(","))),
            "only the enabled units: {}",
            stdout(&output)
        );
    }
}

#[test]
fn a_unit_reading_a_changed_environment_file_is_restarted_the_others_reloaded() {
    let server = Server::new();
    write(
        &server.path("stub/envfiles/php8.2-fpm"),
        &format!("{}\n", server.p("etc/shop.env")),
        0o644,
    );
    let output = server.run(&server.values("envfile", NEW_HOST, "")).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("restarted=php8.2-fpm reloaded=nginx"),
        "systemd re-reads EnvironmentFile= only on a restart: {}",
        stdout(&output)
    );
    // Configured services that are not a web server or PHP-FPM are always restarted.
    let server = Server::new();
    let values = with(server.values("envfile", NEW_HOST, ""), "services", "shop-worker,nginx");
    let output = server.run(&values).unwrap();
    assert!(
        stdout(&output).contains("restarted=shop-worker reloaded=nginx"),
        "{}",
        stdout(&output)
    );
}

/// A process that notes each SIGUSR1 in `reloads` (as PHP-FPM re-reads its pool on SIGUSR2).
fn reloadable_process(server: &Server) -> std::process::Child {
    let script = format!(
        "trap 'echo reloaded >> {}' USR1; echo $$ > {}; while sleep 0.05; do :; done",
        server.p("reloads"),
        server.p("service.pid")
    );
    let child = Command::new("bash").args(["-c", &script]).spawn().unwrap();
    for _ in 0..100 {
        if server.path("service.pid").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn a_service_bound_to_a_real_process_is_signalled_and_must_stay_alive() {
    // The drill's app servers run real PHP-FPM and nginx; the stub systemctl signals them.
    let server = Server::new();
    let mut process = reloadable_process(&server);
    write(
        &server.path("stub/processes/php8.2-fpm"),
        &format!("{} USR1\n", server.p("service.pid")),
        0o644,
    );
    let output = server.run(&server.values("envfile", NEW_HOST, "")).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("reloaded=php8.2-fpm nginx"),
        "{}",
        stdout(&output)
    );
    let mut reloads = String::new();
    for _ in 0..50 {
        reloads = fs::read_to_string(server.path("reloads")).unwrap_or_default();
        if !reloads.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(reloads, "reloaded\n", "the reload reached the process once");
    // Once the process is gone, the unit is not active and the run says so.
    process.kill().unwrap();
    process.wait().unwrap();
    let output = server
        .run(&server.values("envfile", "other-host.example.internal", ""))
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("php8.2-fpm failed"), "{}", stderr(&output));
}

#[test]
fn magentos_cli_runs_as_the_owner_of_env_php_when_no_user_is_configured() {
    let server = Server::new();
    std::os::unix::fs::chown(server.path("magento/app/etc/env.php"), Some(33), Some(33)).unwrap();
    let values = with(server.values("magento", NEW_HOST, ""), "webUser", "");
    let output = server.run(&values).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let owner = nix_user_name(33);
    assert!(
        server
            .log()
            .contains(&format!("runuser -u {owner} -- ./bin/magento setup:config:set")),
        "{}",
        server.log()
    );
}

/// The name of `uid` in this machine's passwd (www-data on Debian).
fn nix_user_name(uid: u32) -> String {
    fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
        })
        .expect("uid 33 has a name")
}

#[test]
fn magentos_database_host_is_compared_exactly_not_found_anywhere_in_env_php() {
    // The new database host already appears in env.php, as the Redis host: a text search for
    // `'host' => '<new host>'` (the old check) would skip the repoint.
    let server = Server::new();
    let env_php = ENV_PHP.replace("shop-cache.use1.cache.amazonaws.com", NEW_HOST);
    write(&server.path("magento/app/etc/env.php"), &env_php, 0o640);
    let output = server.run(&server.values("magento", NEW_HOST, "")).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        server
            .log()
            .contains(&format!("setup:config:set --db-host={NEW_HOST} --no-interaction")),
        "{}",
        server.log()
    );
    let database = php_value(&server, "['db']['connection']['default']['host']");
    assert_eq!(database, NEW_HOST);
}

/// One value of the fixture's env.php, read by PHP.
fn php_value(server: &Server, path: &str) -> String {
    let output = Command::new("php")
        .arg("-r")
        .arg(format!("$c = include getenv('F'); echo $c{path} ?? '(absent)';"))
        .env("F", server.path("magento/app/etc/env.php"))
        .output()
        .expect("php (the PHP CLI) runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn magentos_redis_hosts_follow_the_region_where_redis_is_configured() {
    let server = Server::new();
    let values = with(server.values("magento", NEW_HOST, ""), "cacheHost", NEW_CACHE);
    let output = server.run(&values).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let log = server.log();
    assert!(
        log.contains(&format!(
            "setup:config:set --db-host={NEW_HOST} --session-save=redis --session-save-redis-host={NEW_CACHE} --cache-backend=redis --cache-backend-redis-server={NEW_CACHE} --no-interaction"
        )),
        "one setup:config:set, the page cache (not on Redis) left alone: {log}"
    );
    assert_eq!(php_value(&server, "['session']['redis']['host']"), NEW_CACHE);
    assert_eq!(
        php_value(&server, "['cache']['frontend']['default']['backend_options']['server']"),
        NEW_CACHE
    );
    assert_eq!(
        php_value(&server, "['cache']['frontend']['page_cache']['backend'] ?? null"),
        "(absent)"
    );
    assert_eq!(
        php_value(&server, "['session']['redis']['port']"),
        "6379",
        "other keys kept"
    );
    assert!(server
        .read("etc/shop.env")
        .contains(&format!("REDIS_HOST={NEW_CACHE}\n")));
    assert!(stdout(&output).contains(&format!("cache={NEW_CACHE}")));

    server.clear_log();
    let again = server.run(&values).unwrap();
    assert!(again.status.success());
    assert!(!server.log().contains("magento "), "{}", server.log());
    assert!(stdout(&again).contains("changed=none restarted=none reloaded=none"));
}

#[test]
fn wordpress_and_env_files_get_the_regions_redis_host() {
    let server = Server::new();
    let values = with(server.values("wordpress", "", ""), "cacheHost", NEW_CACHE);
    let output = server.run(&values).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let config = server.read("wordpress/wp-config.php");
    assert!(
        config.contains(&format!("define( 'WP_REDIS_HOST', '{NEW_CACHE}' );")),
        "{config}"
    );
    assert!(config.contains("define( 'DB_HOST', 'old-db.us-east-1.rds.amazonaws.com' );"));
    assert!(server
        .read("etc/pool.d/www.conf")
        .contains(&format!("env[REDIS_HOST] = {NEW_CACHE}\n")));
    assert!(
        stdout(&output).contains("changed=wordpress:WP_REDIS_HOST"),
        "{}",
        stdout(&output)
    );
    server.clear_log();
    let again = server.run(&values).unwrap();
    assert!(stdout(&again).contains("changed=none"), "{}", stdout(&again));
    assert!(!server.log().contains("config set"), "{}", server.log());
}

/// State Manager passes every region's host (it cannot look the active one up); the script
/// picks the active region's, and refuses a list that names none for it.
#[test]
fn the_cache_host_of_the_active_region_is_picked_from_cache_hosts() {
    let server = Server::new();
    let pairs = format!("us-east-1=old-cache.example.internal,us-west-2={NEW_CACHE}");
    let output = server
        .run(&with(server.values("envfile", "", ""), "cacheHosts", &pairs))
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server
        .read("etc/shop.env")
        .contains(&format!("REDIS_HOST={NEW_CACHE}\n")));
    assert!(
        stdout(&output).contains(&format!("cache={NEW_CACHE}")),
        "{}",
        stdout(&output)
    );

    let other = Server::new();
    let missing = with(
        other.values("envfile", "", ""),
        "cacheHosts",
        "eu-west-1=cache.example.internal",
    );
    let refused = other.run(&missing).unwrap();
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("names no cache host for the active region us-west-2"),
        "{}",
        stderr(&refused)
    );
    assert!(!other.read("etc/shop.env").contains("REDIS_HOST"), "nothing half-done");
    let bad = with(other.values("envfile", "", ""), "cacheHosts", "us-west-2=a..b");
    assert!(stderr(&other.run(&bad).unwrap()).contains("invalid cacheHosts"));
}

#[test]
fn magentos_cron_runs_only_on_servers_of_the_active_region() {
    let server = Server::new();
    let here = with(server.values("magento", NEW_HOST, ""), "serverRegion", "us-west-2");
    let output = server.run(&here).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server.read("stub/crontab").contains("#~ MAGENTO START"));
    assert!(stdout(&output).contains("cron=on"), "{}", stdout(&output));
    server.clear_log();
    let again = server.run(&here).unwrap();
    assert!(!server.log().contains("cron:install"), "idempotent: {}", server.log());
    assert!(stdout(&again).contains("changed=none"), "{}", stdout(&again));

    // The active region is another: this server's cron is removed, and stays removed.
    let elsewhere = with(here, "region", "us-east-1");
    let output = server.run(&elsewhere).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!server.read("stub/crontab").contains("MAGENTO"));
    assert!(stdout(&output).contains("cron=off"));
    server.clear_log();
    server.run(&elsewhere).unwrap();
    assert!(!server.log().contains("cron:remove"), "{}", server.log());
}

#[test]
fn wordpress_cron_is_a_system_entry_in_the_active_region_with_wp_cron_disabled() {
    let server = Server::new();
    let here = with(server.values("wordpress", NEW_HOST, ""), "serverRegion", "us-west-2");
    let output = server.run(&here).unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server
        .read("wordpress/wp-config.php")
        .contains("define( 'DISABLE_WP_CRON', true );"));
    let entry = server.read("cron.d/shop-failover-wp-cron");
    assert!(
        entry.contains(&format!(
            "* * * * * www-data {} cron event run --due-now --path={} --quiet",
            server.p("bin/wp"),
            server.p("wordpress")
        )),
        "{entry}"
    );
    assert_eq!(mode(&server.path("cron.d/shop-failover-wp-cron")), 0o644);
    server.clear_log();
    let again = server.run(&here).unwrap();
    assert!(stdout(&again).contains("changed=none"), "{}", stdout(&again));

    let elsewhere = with(here, "region", "us-east-1");
    assert!(server.run(&elsewhere).unwrap().status.success());
    assert!(!server.path("cron.d/shop-failover-wp-cron").exists());
    assert!(server
        .read("wordpress/wp-config.php")
        .contains("define( 'DISABLE_WP_CRON', true );"));
    let again = server.run(&elsewhere).unwrap();
    assert!(stdout(&again).contains("changed=none cron") || stdout(&again).contains("changed=none "));
}

#[test]
fn configured_cron_timers_are_enabled_in_the_active_region_and_disabled_elsewhere() {
    let server = Server::new();
    let here = with(
        with(server.values("magento", NEW_HOST, ""), "serverRegion", "us-west-2"),
        "cronTimers",
        "magento-cron.timer",
    );
    assert!(server.run(&here).unwrap().status.success());
    assert!(server.path("stub/timers/magento-cron.timer").exists());
    assert!(!server.path("stub/crontab").exists(), "the timer, not the crontab");
    server.clear_log();
    server.run(&here).unwrap();
    assert!(!server.log().contains("enable --now"), "{}", server.log());
    let elsewhere = with(here, "region", "us-east-1");
    assert!(server.run(&elsewhere).unwrap().status.success());
    assert!(server.log().contains("systemctl disable --now -- magento-cron.timer"));
    assert!(!server.path("stub/timers/magento-cron.timer").exists());
}

#[test]
fn maintenance_mode_goes_on_and_off_for_each_profile() {
    let server = Server::new();
    let magento = with(server.values("magento", "", ""), "maintenance", "on");
    assert!(server.run(&magento).unwrap().status.success());
    assert!(server.path("magento/var/.maintenance.flag").exists());
    server.clear_log();
    let again = server.run(&magento).unwrap();
    assert!(!server.log().contains("maintenance:enable"), "{}", server.log());
    assert!(stdout(&again).contains("maintenance=on"));
    assert!(server
        .run(&with(magento, "maintenance", "off"))
        .unwrap()
        .status
        .success());
    assert!(!server.path("magento/var/.maintenance.flag").exists());

    let wordpress = with(server.values("wordpress", "", ""), "maintenance", "on");
    assert!(server.run(&wordpress).unwrap().status.success());
    let flag = server.read("wordpress/.maintenance");
    assert!(flag.starts_with("<?php $upgrading = 4102444800;"), "{flag}");
    assert!(server
        .run(&with(wordpress, "maintenance", "off"))
        .unwrap()
        .status
        .success());
    assert!(!server.path("wordpress/.maintenance").exists());

    let envfile = with(
        with(server.values("envfile", "", ""), "maintenance", "on"),
        "maintenanceKey",
        "MAINTENANCE_MODE",
    );
    assert!(server.run(&envfile).unwrap().status.success());
    assert!(server.read("etc/shop.env").contains("MAINTENANCE_MODE=1\n"));
    assert!(server
        .run(&with(envfile, "maintenance", "off"))
        .unwrap()
        .status
        .success());
    assert!(server.read("etc/shop.env").contains("MAINTENANCE_MODE=0\n"));
}

#[test]
fn maintenance_goes_on_before_the_repoint_and_off_only_after_the_services_came_back() {
    let server = Server::new();
    server.fail("nginx");
    let off = with(server.values("magento", NEW_HOST, ""), "maintenance", "off");
    server
        .run(&with(server.values("magento", "", ""), "maintenance", "on"))
        .unwrap();
    assert!(server.path("magento/var/.maintenance.flag").exists());
    let failed = server.run(&off).unwrap();
    assert!(!failed.status.success());
    assert!(
        server.path("magento/var/.maintenance.flag").exists(),
        "a server whose services did not come back stays in maintenance"
    );
    server.heal();
    assert!(server.run(&off).unwrap().status.success());
    assert!(!server.path("magento/var/.maintenance.flag").exists());
}

#[test]
fn a_full_repoint_run_twice_changes_and_restarts_nothing_the_second_time() {
    let server = Server::new();
    for profile in ["magento", "wordpress", "envfile"] {
        let values = [
            ("serverRegion", "us-west-2"),
            ("cacheHost", NEW_CACHE),
            ("maintenance", "off"),
            ("maintenanceKey", "MAINTENANCE_MODE"),
        ]
        .iter()
        .fold(server.values(profile, NEW_HOST, "3307"), |v, (k, x)| with(v, k, x));
        let first = server.run(&values).unwrap();
        assert!(first.status.success(), "{profile}: {}", stderr(&first));
        server.clear_log();
        let second = server.run(&values).unwrap();
        assert!(second.status.success(), "{profile}: {}", stderr(&second));
        let log = server.log();
        assert!(
            !log.contains("restart --")
                && !log.contains("reload")
                && !log.contains(" set")
                && !log.contains("crontab -\n"),
            "{profile}: {log}"
        );
        assert!(
            stdout(&second).contains("changed=none restarted=none reloaded=none"),
            "{profile}: {}",
            stdout(&second)
        );
    }
}

#[test]
fn the_lock_wait_is_half_the_execution_timeout() {
    let server = Server::new();
    let values = with(server.values("envfile", NEW_HOST, ""), "executionTimeout", "20");
    let mut holder = hold_lock(&server, "12");
    let output = server.run(&values).unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        stderr(&output).contains("after 10s"),
        "waited half of 20 s: {}",
        stderr(&output)
    );
}
