//! The local AWS emulator (moto server): one per test process, on a free loopback port.
//!
//! The server is a [`crate::kept_child`]: when the test process ends for any reason
//! (success, panic, abort, Ctrl-C, SIGKILL), the kernel kills the server too, so no
//! orphan moto is ever left behind. Tests share the server and isolate themselves by
//! giving every resource a unique name ([`crate::unique_name`]).
//!
//! Its fidelity layer (`tools/fidelity/`) keeps its files in a state directory of its own
//! (`FIDELITY_STATE_DIR`): the managed nodes' file trees and the MariaDB servers behind RDS.
//! The directory of an emulator whose process is gone is removed when the next one starts.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::clients::RegionClients;
use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;

use crate::http;
use crate::kept_child::{self, process_alive};
use crate::venv;

/// How long a fresh server may take to answer.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts with a new port if the chosen one was taken in the meantime.
const START_ATTEMPTS: usize = 3;

/// A running moto server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    pid: u32,
    log: PathBuf,
    state: PathBuf,
}

/// Prefix of every emulator's state directory in the temp dir: `<prefix><pid>-<port>`.
const STATE_PREFIX: &str = "failover-emulator-";

static SHARED: OnceLock<Emulator> = OnceLock::new();

impl Emulator {
    /// The process-wide emulator, started on first use. It also points the standard AWS
    /// environment variables (`AWS_ENDPOINT_URL`, dummy credentials) at itself, so the
    /// production client loader reaches it with no test-only code path.
    pub fn shared() -> &'static Emulator {
        SHARED.get_or_init(|| {
            let emulator = Self::start().unwrap_or_else(|e| panic!("cannot start the moto emulator: {e}"));
            for (key, value) in emulator.env() {
                // Set once, before any test builds an SDK client (every test calls `shared()` first).
                std::env::set_var(key, value);
            }
            emulator
        })
    }

    /// Starts a new server owned by the calling process (normally use [`Emulator::shared`]).
    pub fn start() -> io::Result<Emulator> {
        let python = venv::ensure_emulator_python()?;
        remove_stale_state();
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn_with_keeper(&python, port).and_then(|emulator| emulator.wait_ready().map(|()| emulator)) {
                Ok(emulator) => return Ok(emulator),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no start attempt made")))
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the server's log goes.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// The fidelity layer's state directory (`FIDELITY_STATE_DIR`).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The file tree of managed node `instance_id` (created empty if new): the emulator's
    /// SSM agent runs documents for that instance inside it (see `fixtures::node`), and an
    /// instance without one is not a managed node, as an EC2 instance without the agent.
    pub fn node_root(&self, instance_id: &str) -> PathBuf {
        let root = self.state.join("nodes").join(instance_id).join("root");
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        root
    }

    /// Disconnects (or reconnects) the node's agent: while offline, the node reports
    /// `ConnectionLost` and commands to it are `Undeliverable`.
    pub fn set_node_offline(&self, instance_id: &str, offline: bool) {
        let marker = self.state.join("nodes").join(instance_id).join("offline");
        if offline {
            std::fs::write(&marker, b"").unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
        } else {
            let _ = std::fs::remove_file(&marker);
        }
    }

    /// Routes invocations of the function registered as `function_name` to `binary` on the
    /// `cargo lambda watch` at `url` (deployed names carry a stack prefix; several watches,
    /// each with its own configuration, can serve one emulator).
    pub fn route_lambda(&self, function_name: &str, url: &str, binary: &str) {
        let routes = self.state.join("lambda-functions");
        std::fs::create_dir_all(&routes).unwrap_or_else(|e| panic!("cannot create {}: {e}", routes.display()));
        let file = routes.join(function_name);
        std::fs::write(&file, format!("{url} {binary}"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    }

    /// The environment a function needs to use this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Clears all state (`POST /moto-api/reset`). Only for callers that own the server
    /// exclusively: tests sharing it isolate by name instead.
    pub fn reset(&self) -> io::Result<()> {
        match http::request(self.addr, "POST", "/moto-api/reset", Duration::from_secs(10))? {
            (200, _) => Ok(()),
            (status, body) => Err(io::Error::other(format!("reset answered {status}: {body}"))),
        }
    }

    /// Production clients for `region`, reaching this emulator through `AWS_ENDPOINT_URL`.
    pub async fn clients(&self, region: &str) -> RegionClients {
        RegionClients::load(&region_of(region), ClientTimeouts::default()).await
    }

    /// A DynamoDB Streams client (not needed by the functions, only to read streams in tests).
    pub async fn streams(&self, region: &str) -> aws_sdk_dynamodbstreams::Client {
        aws_sdk_dynamodbstreams::Client::new(&sdk_config(&region_of(region), ClientTimeouts::default()).await)
    }

    fn wait_ready(&self) -> io::Result<()> {
        let started = Instant::now();
        while started.elapsed() < STARTUP_TIMEOUT {
            if !process_alive(self.pid) {
                return Err(io::Error::other(format!(
                    "moto exited during start-up; see {}",
                    self.log.display()
                )));
            }
            if http::request(self.addr, "GET", "/moto-api/data.json", Duration::from_secs(2)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other(format!(
            "moto did not answer within {STARTUP_TIMEOUT:?}; see {}",
            self.log.display()
        )))
    }
}

fn region_of(name: &str) -> Region {
    Region::new(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A port that was free a moment ago (moto binds it right after).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Spawns moto so that it never outlives this process (see [`crate::kept_child`]).
fn spawn_with_keeper(python: &std::path::Path, port: u16) -> io::Result<Emulator> {
    let log = std::env::temp_dir().join(format!("failover-moto-{}-{port}.log", std::process::id()));
    let state = std::env::temp_dir().join(format!("{STATE_PREFIX}{}-{port}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    let log_file = std::fs::File::create(&log)?;
    let mut command = Command::new(python);
    command
        .env("FIDELITY_STATE_DIR", &state)
        .arg(venv::fidelity_server_script())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let pid = kept_child::spawn_kept(command, &format!("moto-{port}"), false)?;
    Ok(Emulator {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        pid,
        log,
        state,
    })
}

/// Removes the state directories of emulators whose test process is gone (their servers
/// went with it, through the parent-death signal), so data directories never pile up.
fn remove_stale_state() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(STATE_PREFIX)) else {
            continue;
        };
        let owner = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !process_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Emulator {
    /// A privately started emulator is stopped with its owner; the shared one lives in a
    /// static (never dropped) and goes with the process through the parent-death signal.
    fn drop(&mut self) {
        if process_alive(self.pid) {
            kept_child::signal(self.pid, libc::SIGTERM);
            // Bounded wait, so the owner does not exit before moto (and, through their own
            // parent-death signal, its MariaDB servers) are gone.
            let started = Instant::now();
            while process_alive(self.pid) && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
