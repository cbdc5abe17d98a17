//! A real WordPress shop on each WooCommerce app server: WordPress from the Debian package,
//! copied into the server's own tree, served by the server's own nginx and PHP-FPM master on
//! loopback ports. WordPress reads its database, region and AWS endpoint from the PHP-FPM
//! pool's environment (`fixtures/wordpress/pool.conf`): the file env-rewriter rewrites,
//! before the node's `systemctl` reloads the real PHP-FPM master (SIGUSR2) and nginx (SIGHUP).
//! The checkout is the drill's plugin (`fixtures/wordpress/mu-plugins/shop-orders.php`).
//!
//! The processes are the drill's children (they die with it) and lead their own process
//! groups, so a region's servers can be frozen (SIGSTOP) with their workers and stopped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use failover_testkit::fixtures::node;
use failover_testkit::http;
use failover_testkit::kept_child::{kill_group, process_alive, spawn_kept};
use failover_testkit::mysql::{MASTER_PASSWORD, MASTER_USER};

use crate::world::DATA_TABLE;

/// Where the Debian package installs WordPress.
pub const WORDPRESS: &str = "/usr/share/wordpress";
/// The document root inside a node.
pub const DOCROOT: &str = node::WORDPRESS_ROOT;
/// How long a server may take to answer its first request.
const READY_WITHIN: Duration = Duration::from_secs(20);

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/wordpress");

/// The PHP-FPM of this machine: its version (`8.2`) and binary.
#[derive(Debug, Clone)]
pub struct PhpFpm {
    /// `8.2`: the unit is `php8.2-fpm`, the pools are under `/etc/php/8.2/fpm/pool.d/`.
    pub version: String,
    /// `/usr/sbin/php-fpm8.2`.
    pub binary: PathBuf,
}

impl PhpFpm {
    /// Finds Debian's `php-fpmX.Y` (scripts/install-packages.sh installs it).
    pub fn find() -> Result<Self, String> {
        let entries = std::fs::read_dir("/usr/sbin").map_err(|e| format!("/usr/sbin: {e}"))?;
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let version = name.strip_prefix("php-fpm")?.to_owned();
                (!version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.')).then(|| Self {
                    version,
                    binary: entry.path(),
                })
            })
            .max_by(|a, b| a.version.cmp(&b.version))
            .ok_or_else(|| "no /usr/sbin/php-fpmX.Y: run scripts/install-packages.sh (php-fpm)".to_owned())
    }

    /// The systemd unit (`php8.2-fpm`).
    pub fn unit(&self) -> String {
        format!("php{}-fpm", self.version)
    }

    /// The shop's pool file inside a node, as env-rewriter's `FPM_POOL_FILES` names it.
    pub fn pool_file(&self) -> String {
        format!("/etc/php/{}/fpm/pool.d/shop.conf", self.version)
    }
}

/// What a pool's environment starts with (before any failover).
#[derive(Debug, Clone)]
pub struct PoolSettings<'a> {
    /// The instance id (the plugin writes it into each order).
    pub server_id: &'a str,
    /// The PHP-FPM listen port (0 on a server without a running PHP-FPM).
    pub fpm_port: u16,
    /// `host:port` of the database.
    pub db_host: &'a str,
    /// The region of the DynamoDB table.
    pub region: &'a str,
    /// Where the shop reaches AWS.
    pub aws_endpoint: &'a str,
}

/// The pool file's text for a server inside `root`.
fn pool_text(root: &Path, settings: &PoolSettings<'_>) -> Result<String, String> {
    Ok(fixture("pool.conf")?
        .replace("@ROOT@", &root.display().to_string())
        .replace("@FPM_PORT@", &settings.fpm_port.to_string())
        .replace("@SERVER_ID@", settings.server_id)
        .replace("@DB_USER@", MASTER_USER)
        .replace("@DB_PASSWORD@", MASTER_PASSWORD)
        .replace("@DB_HOST@", settings.db_host)
        .replace("@REGION@", settings.region)
        .replace("@DATA_TABLE@", DATA_TABLE)
        .replace("@AWS_ENDPOINT_URL@", settings.aws_endpoint))
}

/// Writes the server's pool file (at [`PhpFpm::pool_file`] inside `root`).
pub fn write_pool_file(php: &PhpFpm, root: &Path, settings: &PoolSettings<'_>) -> Result<(), String> {
    write(&node::inside(root, &php.pool_file()), &pool_text(root, settings)?)
}

fn fixture(name: &str) -> Result<String, String> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// One running WordPress server.
#[derive(Debug)]
pub struct ShopServer {
    /// Its instance id.
    pub instance_id: String,
    /// Its region.
    pub region: String,
    /// Its file tree (the emulator's managed node root).
    pub root: PathBuf,
    /// Where nginx answers.
    pub http: SocketAddr,
    php_fpm: u32,
    nginx: u32,
}

impl ShopServer {
    /// The process groups of its PHP-FPM (master and workers) and nginx.
    fn groups(&self) -> [u32; 2] {
        [self.php_fpm, self.nginx]
    }
}

/// The WordPress servers of both regions; dropping it stops them.
#[derive(Debug)]
pub struct Shops {
    /// Every server, in the order given.
    pub servers: Vec<ShopServer>,
}

/// A server to build: instance id, region, node root.
pub type ServerSpec<'a> = (&'a str, &'a str, &'a Path);

impl Shops {
    /// Builds WordPress into each server's tree, installs it into the database at `db_host`
    /// (once: the tables replicate), starts each server's PHP-FPM and nginx, and waits until
    /// each answers WordPress's REST index (the database reached through its pool's settings).
    pub fn start(
        php: &PhpFpm,
        specs: &[ServerSpec<'_>],
        db_host: &str,
        start_region: &str,
        aws_endpoint: &str,
    ) -> Result<(Shops, String), String> {
        let mut shops = Shops { servers: Vec::new() };
        let mut installed = String::new();
        for (index, (instance_id, region, root)) in specs.iter().enumerate() {
            let (fpm_port, http_port) = (free_port()?, free_port()?);
            build_tree(
                php,
                root,
                instance_id,
                fpm_port,
                http_port,
                db_host,
                start_region,
                aws_endpoint,
            )?;
            if index == 0 {
                installed = install(root, db_host)?;
            }
            let mut php_fpm = Command::new(&php.binary);
            php_fpm
                .args(["--nodaemonize", "--allow-to-run-as-root", "--fpm-config"])
                .arg(node::inside(
                    root,
                    &format!("/etc/php/{}/fpm/php-fpm.conf", php.version),
                ));
            let php_fpm = spawn(php_fpm, "php-fpm", root)?;
            let mut nginx = Command::new("nginx");
            nginx
                .arg("-c")
                .arg(node::inside(root, "/etc/nginx/nginx.conf"))
                .arg("-p")
                .arg(format!("{}/", root.display()));
            let nginx = spawn(nginx, "nginx", root)?;
            shops.servers.push(ShopServer {
                instance_id: instance_id.to_string(),
                region: region.to_string(),
                root: root.to_path_buf(),
                http: SocketAddr::from((Ipv4Addr::LOCALHOST, http_port)),
                php_fpm,
                nginx,
            });
        }
        for server in &shops.servers {
            wait_ready(server)?;
        }
        Ok((shops, installed))
    }

    /// The servers of `region`.
    pub fn of_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a ShopServer> + 'a {
        self.servers.iter().filter(move |s| s.region == region)
    }

    /// Freezes every server of `region` (nginx and PHP-FPM with their workers: connections
    /// are accepted and never answered), until the returned guard is dropped.
    pub fn freeze(&self, region: &str) -> FrozenServers {
        let groups: Vec<u32> = self.of_region(region).flat_map(ShopServer::groups).collect();
        for group in &groups {
            kill_group(*group, libc::SIGSTOP);
        }
        FrozenServers { groups }
    }
}

impl Drop for Shops {
    fn drop(&mut self) {
        for group in self.servers.iter().flat_map(ShopServer::groups) {
            kill_group(group, libc::SIGCONT);
            kill_group(group, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for server in &self.servers {
            for group in server.groups() {
                while process_alive(group) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                kill_group(group, libc::SIGKILL);
            }
        }
    }
}

/// A region's frozen web servers; they run again when this is dropped.
#[derive(Debug)]
pub struct FrozenServers {
    groups: Vec<u32>,
}

impl Drop for FrozenServers {
    fn drop(&mut self) {
        for group in &self.groups {
            kill_group(*group, libc::SIGCONT);
        }
    }
}

/// Starts a server process as the drill's child, leading its own process group; what it
/// prints goes to `/var/log/<name>.out` in the node (PHP-FPM notes each reload there).
fn spawn(mut command: Command, name: &str, root: &Path) -> Result<u32, String> {
    let out = node::inside(root, &format!("/var/log/{name}.out"));
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let copy = file.try_clone().map_err(|e| format!("{}: {e}", out.display()))?;
    command.stdout(file).stderr(copy);
    spawn_kept(command, name, true).map_err(|e| format!("starting {name}: {e}"))
}

/// Writes WordPress, our configuration and plugin, the PHP-FPM and nginx configuration and
/// the units' bindings into the node's tree.
#[allow(clippy::too_many_arguments)]
fn build_tree(
    php: &PhpFpm,
    root: &Path,
    instance_id: &str,
    fpm_port: u16,
    http_port: u16,
    db_host: &str,
    region: &str,
    aws_endpoint: &str,
) -> Result<(), String> {
    let docroot = node::inside(root, DOCROOT);
    // The node fixture's stand-in wp-config.php makes way for the real WordPress tree:
    // hard links of the package's files (one copy on disk), a real copy across file systems.
    if docroot.exists() {
        std::fs::remove_dir_all(&docroot).map_err(|e| format!("{}: {e}", docroot.display()))?;
    }
    std::fs::create_dir_all(&docroot).map_err(|e| format!("{}: {e}", docroot.display()))?;
    let source = format!("{WORDPRESS}/.");
    let linked = Command::new("cp").args(["-al", &source]).arg(&docroot).status();
    if !linked.is_ok_and(|s| s.success()) {
        let copied = Command::new("cp")
            .args(["-a", &source])
            .arg(&docroot)
            .status()
            .map_err(|e| format!("cp: {e}"))?;
        if !copied.success() {
            return Err(format!(
                "cannot copy {WORDPRESS} into {} (is the wordpress package installed?)",
                docroot.display()
            ));
        }
    }
    // Debian's wp-config.php is a hard link to the package's file: unlink it, never write through it.
    let config = docroot.join("wp-config.php");
    std::fs::remove_file(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    write(&config, &fixture("wp-config.php")?)?;
    write(
        &docroot.join("wp-content/mu-plugins/shop-orders.php"),
        &fixture("mu-plugins/shop-orders.php")?,
    )?;
    let root_text = root.display().to_string();
    let settings = PoolSettings {
        server_id: instance_id,
        fpm_port,
        db_host,
        region,
        aws_endpoint,
    };
    write_pool_file(php, root, &settings)?;
    write(
        &node::inside(root, &format!("/etc/php/{}/fpm/php-fpm.conf", php.version)),
        &fixture("php-fpm.conf")?
            .replace("@ROOT@", &root_text)
            .replace("@POOL_DIR@", &format!("/etc/php/{}/fpm/pool.d", php.version)),
    )?;
    write(
        &node::inside(root, "/etc/nginx/nginx.conf"),
        &fixture("nginx.conf")?
            .replace("@ROOT@", &root_text)
            .replace("@FPM_PORT@", &fpm_port.to_string())
            .replace("@HTTP_PORT@", &http_port.to_string()),
    )?;
    for dir in ["/run", "/var/log", "/var/lib/nginx"] {
        let path = node::inside(root, dir);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // The node's systemctl reloads the real processes (tests/app-server-stubs/README.md).
    let units = format!("{}.service enabled\nnginx.service enabled\n", php.unit());
    write(&node::inside(root, &format!("{}/units", node::STUB_DIR)), &units)?;
    write(
        &node::inside(root, &format!("{}/processes/{}", node::STUB_DIR, php.unit())),
        "/run/php-fpm.pid USR2\n",
    )?;
    write(
        &node::inside(root, &format!("{}/processes/nginx", node::STUB_DIR)),
        "/run/nginx.pid HUP\n",
    )
}

/// Installs WordPress and the orders table into the database at `db_host`, with the PHP CLI.
fn install(root: &Path, db_host: &str) -> Result<String, String> {
    let output = Command::new("php")
        .arg(Path::new(FIXTURES).join("install.php"))
        .arg(node::inside(root, DOCROOT))
        .env("DB_NAME", "shop")
        .env("DB_USER", MASTER_USER)
        .env("DB_PASSWORD", MASTER_PASSWORD)
        .env("DB_HOST", db_host)
        .output()
        .map_err(|e| format!("php install.php: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !stdout.starts_with("installed:") {
        return Err(format!(
            "installing WordPress into {db_host} failed ({}): {} {}",
            output.status,
            stdout.chars().take(400).collect::<String>(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(stdout)
}

/// Waits (bounded) until the server answers WordPress's REST index with 200.
fn wait_ready(server: &ShopServer) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < READY_WITHIN {
        match http::request(server.http, "GET", "/index.php?rest_route=/", Duration::from_secs(5)) {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => last = format!("HTTP {status}: {}", body.chars().take(200).collect::<String>()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "WordPress on {} ({}) did not answer within {READY_WITHIN:?}: {last}; see {}/var/log",
        server.instance_id,
        server.http,
        server.root.display()
    ))
}
