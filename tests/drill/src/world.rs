//! The two-region shop the drill fails over: primary us-east-1, secondary us-west-2.

use aws_sdk_dynamodb::types::StreamViewType;
use failover_testkit::clients::RegionClients;

use failover_testkit::fixtures::node;
use failover_testkit::fixtures::{dynamodb, ec2, rds, s3, ssm};
use failover_testkit::{Emulator, PRIMARY, SECONDARY};

use crate::shop::{self, PhpFpm, PoolSettings, ServerSpec, Shops};

/// The shop's data table (the same name in both regions).
pub const DATA_TABLE: &str = "shop-data";
/// The stream-replicator's dead-letter bucket, in the primary region.
pub const DEAD_LETTER_BUCKET: &str = "shop-failover-dead-letter";
/// Heartbeat table (both regions).
pub const HEARTBEAT_TABLE: &str = "shop-heartbeats";
/// Failover lock and health state (secondary region).
pub const STATE_TABLE: &str = "shop-failover-state";
/// Parameter Store prefix.
pub const PREFIX: &str = "/shop/failover";
/// The app servers' Environment tag.
pub const ENVIRONMENT: &str = "drill";
/// The repoint document.
pub const DOCUMENT: &str = "shop-failover-repoint-app";
/// The alarm that detects the primary region's failure.
pub const ALARM: &str = "shop-failover-primary-region-unhealthy";
/// The third region health-monitor's witness watches from (as the template deploys it).
pub const WITNESS: &str = "eu-west-1";
/// The shop's orders table in MySQL (`database.table`), created on the primary by the
/// WordPress install (`fixtures/wordpress/install.php`).
pub const ORDERS_TABLE: &str = "shop.wp_shop_orders";
/// The App tag of the servers that run a real WordPress (the others run Magento's fixture tree).
pub const WORDPRESS_APP: &str = "WooCommerce";

/// Everything provisioned.
pub struct World {
    /// Clients of the primary region (straight to the emulator).
    pub a: RegionClients,
    /// Clients of the secondary region.
    pub b: RegionClients,
    /// The primary table's stream.
    pub stream_arn: String,
    /// The MySQL pair.
    pub database: rds::ReplicaPair,
    /// App servers in the secondary region, with their App tag.
    pub app_servers: Vec<(String, String)>,
    /// Each app server's file tree, where the emulator's SSM agent runs the document.
    pub node_roots: Vec<std::path::PathBuf>,
    /// App servers in the primary region (serving until the failure), with their App tag.
    pub primary_servers: Vec<(String, String)>,
    /// Their file trees.
    pub primary_node_roots: Vec<std::path::PathBuf>,
    /// The primary database's endpoint, `host:port` as the env files name it.
    pub primary_endpoint: String,
    /// This machine's PHP-FPM (the pool file's path and the unit follow its version).
    pub php: PhpFpm,
}

impl World {
    /// Creates tables, the database pair, app servers, the document and the parameters;
    /// with `document_does_nothing` (an injected defect) the document's script only exits 0.
    pub async fn provision(emulator: &Emulator, document_does_nothing: bool) -> World {
        let (a, b) = (emulator.clients(PRIMARY).await, emulator.clients(SECONDARY).await);
        let pair = dynamodb::create_table_pair(&a, &b, DATA_TABLE, StreamViewType::NewAndOldImages).await;
        s3::create_bucket(&a, DEAD_LETTER_BUCKET).await;
        for clients in [&a, &b] {
            dynamodb::create_state_table(clients, HEARTBEAT_TABLE).await;
        }
        dynamodb::create_state_table(&b, STATE_TABLE).await;
        let database = rds::create_mysql_with_cross_region_replica(&a, &b, "shop-db").await;
        let (mut app_servers, mut node_roots) = (Vec::new(), Vec::new());
        let (mut primary_servers, mut primary_node_roots) = (Vec::new(), Vec::new());
        // Two servers per region run the real WordPress shop; the failover region also has
        // two Magento servers (fixture trees with a stub bin/magento: Magento cannot be
        // installed here), repointed with the rest.
        for (app, secondary, primary) in [("Magento", 2, 0), (WORDPRESS_APP, 2, 2)] {
            let ids = ec2::launch_app_servers(&b, app, ENVIRONMENT, secondary).await;
            node_roots.extend(ec2::manage(emulator, app, &ids));
            app_servers.extend(ids.into_iter().map(|id| (id, app.to_owned())));
            if primary > 0 {
                let ids = ec2::launch_app_servers(&a, app, ENVIRONMENT, primary).await;
                primary_node_roots.extend(ec2::manage(emulator, app, &ids));
                primary_servers.extend(ids.into_iter().map(|id| (id, app.to_owned())));
            }
        }
        let php = PhpFpm::find().unwrap_or_else(|e| panic!("{e}"));
        let mut document = ssm::repoint_document();
        if document_does_nothing {
            let mut parsed: serde_json::Value = serde_json::from_str(&document).expect("the document is JSON");
            parsed["mainSteps"][0]["inputs"]["runCommand"] =
                serde_json::json!(["echo 'repoint: (injected) nothing done'"]);
            document = parsed.to_string();
        }
        for clients in [&a, &b] {
            ssm::create_command_document(clients, DOCUMENT, &document).await;
        }
        let primary = rds::describe(&a, &database.primary_id).await;
        let endpoint = primary.endpoint().expect("an available instance has an endpoint");
        let host = endpoint.address().unwrap_or("primary").to_owned();
        let port = endpoint.port().unwrap_or(3306).to_string();
        // Every server starts where the shop runs: the primary database and table region.
        let primary_endpoint = format!("{host}:{port}");
        for root in node_roots.iter().chain(&primary_node_roots) {
            write_env_file(root, &primary_endpoint, PRIMARY);
        }
        // The Magento servers' PHP-FPM pool (no process behind it): env-rewriter rewrites every
        // server's pool file; the WordPress servers get theirs with their shop.
        for ((id, app), root) in app_servers.iter().zip(&node_roots) {
            if app != WORDPRESS_APP {
                let settings = PoolSettings {
                    server_id: id,
                    fpm_port: 0,
                    db_host: &primary_endpoint,
                    region: PRIMARY,
                    aws_endpoint: "",
                };
                shop::write_pool_file(&php, root, &settings).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        rds::database(&a, &database.primary_id)
            .await
            .exec("CREATE DATABASE IF NOT EXISTS shop");
        ssm::put_parameter(&b, &format!("{PREFIX}/db-host"), &host).await;
        ssm::put_parameter(&b, &format!("{PREFIX}/db-port"), &port).await;
        ssm::put_parameter(&b, &format!("{PREFIX}/active-region"), PRIMARY).await;
        World {
            a,
            b,
            stream_arn: pair.stream_arn,
            database,
            app_servers,
            node_roots,
            primary_servers,
            primary_node_roots,
            primary_endpoint,
            php,
        }
    }

    /// Starts the real WordPress shop on every WooCommerce server of both regions (installed
    /// into the primary database, reaching AWS at `aws_endpoint`); returns the shops and what
    /// the install said.
    pub fn start_shops(&self, aws_endpoint: &str) -> Result<(Shops, String), String> {
        let secondary = (self.app_servers.iter().zip(&self.node_roots)).map(|(s, r)| (s, r, SECONDARY));
        let primary = (self.primary_servers.iter().zip(&self.primary_node_roots)).map(|(s, r)| (s, r, PRIMARY));
        let specs: Vec<ServerSpec<'_>> = secondary
            .chain(primary)
            .filter(|((_, app), _, _)| app == WORDPRESS_APP)
            .map(|((id, _), root, region)| (id.as_str(), region, root.as_path()))
            .collect();
        Shops::start(&self.php, &specs, &self.primary_endpoint, PRIMARY, aws_endpoint)
    }

    /// The witness's configuration: health-monitor observing from [`WITNESS`] (its
    /// observations go to the state table, where the decider reads them).
    pub fn witness_env(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .function_env(endpoint)
            .into_iter()
            .filter(|(key, _)| key != "WITNESS_REGION")
            .collect();
        env.push(("OBSERVER_REGION".into(), WITNESS.into()));
        env
    }

    /// The active region as published (`None` when it cannot be read).
    pub async fn active_region(&self) -> Option<String> {
        ssm::get_parameter(&self.b, &format!("{PREFIX}/active-region")).await
    }

    /// The configuration every function gets from `cargo lambda watch`, reaching AWS
    /// through `endpoint` (the fault proxy).
    pub fn function_env(&self, endpoint: &str) -> Vec<(String, String)> {
        let pool_file = self.php.pool_file();
        let pairs = [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("PRIMARY_REGION", PRIMARY),
            ("SECONDARY_REGION", SECONDARY),
            ("REPLICA_IDENTIFIER", self.database.replica_id.as_str()),
            ("REPLICA_REGION", SECONDARY),
            ("ALLOWED_ALARM_PREFIXES", "shop-failover-"),
            ("FAILOVER_REGION", SECONDARY),
            ("WITNESS_REGION", WITNESS),
            ("PARAMETER_PREFIX", PREFIX),
            ("STATE_TABLE", STATE_TABLE),
            ("HEARTBEAT_TABLE", HEARTBEAT_TABLE),
            ("FAILURE_THRESHOLD", "3"),
            ("FAILBACK_THRESHOLD", "3"),
            ("CHECK_TIMEOUT_MS", "1500"),
            // One check round per invocation: the drill drives health-monitor run by run.
            ("RUN_SECONDS", "0"),
            ("SOURCE_PROBE_TIMEOUT_SECONDS", "2"),
            ("POLL_INITIAL_MS", "200"),
            ("POLL_MAX_MS", "1000"),
            ("APP_REGION", SECONDARY),
            // The region-switch plan's FenceFleet step: the primary region's servers.
            ("FENCE_REGION", PRIMARY),
            ("ENVIRONMENT", ENVIRONMENT),
            ("DOCUMENT_NAME", DOCUMENT),
            ("ENV_FILE", "/etc/shop/failover.env"),
            // WordPress reads its settings from the pool's environment: the envfile profile.
            ("APP_PROFILES", "Magento=magento,WooCommerce=envfile"),
            ("FPM_POOL_FILES", pool_file.as_str()),
            ("SOURCE_TABLE_NAME", DATA_TABLE),
            ("SOURCE_REGION", PRIMARY),
            ("TARGET_TABLE_NAME", DATA_TABLE),
            ("TARGET_REGION", SECONDARY),
            ("REPLICATION_MODE", "overwrite"),
            ("DEAD_LETTER_BUCKET", DEAD_LETTER_BUCKET),
            ("AWS_LAMBDA_LOG_LEVEL", "info"),
        ];
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// Writes the server's env file as the shop's configuration management would: its database
/// (`host:port`) and its DynamoDB region.
fn write_env_file(root: &std::path::Path, db_host: &str, region: &str) {
    let path = node::inside(root, node::ENV_FILE);
    let text = format!("AWS_REGION={region}\nDYNAMODB_REGION={region}\nDB_HOST={db_host}\n");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The folder of the instance's MariaDB server in the emulator's state dir (socket, pid file).
fn mariadb_folder(emulator: &Emulator, instance_id: &str) -> Result<std::path::PathBuf, String> {
    let servers = emulator.state_dir().join("mariadb");
    std::fs::read_dir(&servers)
        .map_err(|e| format!("{}: {e}", servers.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&format!("-{instance_id}")))
        })
        .ok_or_else(|| format!("no MariaDB server of {instance_id} under {}", servers.display()))
}

/// An injected defect: sets `read_only` on the instance's MariaDB server as its root, through
/// the server's socket in the emulator's state dir (no AWS API can, as on RDS).
pub fn make_read_only(emulator: &Emulator, instance_id: &str) -> Result<(), String> {
    let folder = mariadb_folder(emulator, instance_id)?;
    let status = std::process::Command::new("mariadb")
        .arg(format!("--socket={}", folder.join("mysqld.sock").display()))
        .args(["--user=root", "--execute", "SET GLOBAL read_only = ON"])
        .status()
        .map_err(|e| format!("mariadb: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("SET GLOBAL read_only failed: {status}"))
}

/// A database server frozen as a failing host freezes it (SIGSTOP: connections are accepted by
/// the kernel and never answered); it runs again when this is dropped.
#[derive(Debug)]
pub struct FrozenServer {
    pid: String,
}

impl FrozenServer {
    /// Stops the instance's `mysqld` (the emulator's child, started by this drill).
    pub fn freeze(emulator: &Emulator, instance_id: &str) -> Result<Self, String> {
        let pid_file = mariadb_folder(emulator, instance_id)?.join("mysqld.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?
            .trim()
            .to_owned();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{}: not a process id: {pid:?}", pid_file.display()));
        }
        signal(&pid, "-STOP")?;
        Ok(Self { pid })
    }
}

impl Drop for FrozenServer {
    fn drop(&mut self) {
        if let Err(e) = signal(&self.pid, "-CONT") {
            eprintln!("drill: cannot resume mysqld {}: {e}", self.pid);
        }
    }
}

fn signal(pid: &str, which: &str) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .args([which, pid])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("kill {which} {pid}: {status}"))
}
