//! The load generator: customers placing orders at a steady rate from before the failure
//! until after the failover, routed as DNS would route them (to the region the
//! `active-region` parameter names, looked up about once a second), round-robin over that
//! region's WordPress servers. Every attempt is kept with its time and each store's answer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use failover_core::clients::{sdk_config, ClientTimeouts};
use failover_core::Region;
use failover_testkit::{PRIMARY, SECONDARY};
use serde::Serialize;

use crate::checkout::{place_order, ServerConfig};

/// One app server customers can reach.
#[derive(Debug, Clone)]
pub struct AppServer {
    /// Its instance id.
    pub instance_id: String,
    /// Its region.
    pub region: String,
    /// Where its nginx answers.
    pub http: SocketAddr,
    /// Its file tree.
    pub root: PathBuf,
    /// Its PHP-FPM pool file inside the tree (where it writes, for a checkout that does not say).
    pub pool_file: String,
}

/// What the generator does.
#[derive(Debug, Clone)]
pub struct TrafficSettings {
    /// Every server, in both regions.
    pub servers: Vec<AppServer>,
    /// Orders attempted per second.
    pub orders_per_second: u32,
    /// Where the customers' resolver reaches Parameter Store (the customers' link).
    pub endpoint: String,
    /// The parameter routing follows (in the secondary region, where it survives).
    pub active_region_parameter: String,
    /// The drill's start, the zero of every timestamp.
    pub started: Instant,
}

/// One order attempt and what each store answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The order id (increasing in the order attempts were made).
    pub order_id: u64,
    /// When it was placed, seconds since the drill started.
    pub at_seconds: f64,
    /// How long the checkout took.
    pub took_seconds: f64,
    /// The server that took it.
    pub server: String,
    /// The database the server wrote to (`host:port`).
    pub db_host: String,
    /// The DynamoDB region it wrote to.
    pub dynamodb_region: String,
    /// MySQL's error, if it did not take the order.
    pub mysql_error: Option<String>,
    /// DynamoDB's error, if it did not take the cart item.
    pub dynamodb_error: Option<String>,
}

impl Attempt {
    /// Whether the customer was told the order went through (both stores took it).
    pub fn acknowledged(&self) -> bool {
        self.mysql_error.is_none() && self.dynamodb_error.is_none()
    }
}

/// A running load generator; [`Traffic::stop`] ends it and returns every attempt.
#[derive(Debug)]
pub struct Traffic {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<Vec<Attempt>, String>>>,
}

impl Traffic {
    /// Starts placing orders on a thread of its own.
    pub fn start(settings: TrafficSettings) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (acknowledged, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counters = (stop.clone(), acknowledged.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("drill-traffic".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("the load generator's runtime: {e}"))?;
                runtime.block_on(generate(settings, counters))
            })
            .expect("the load generator's thread starts");
        Self {
            stop,
            acknowledged,
            failed,
            thread: Some(thread),
        }
    }

    /// Orders acknowledged and failed so far.
    pub fn progress(&self) -> (u64, u64) {
        (
            self.acknowledged.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Stops placing orders and returns every attempt made.
    pub fn stop(mut self) -> Result<Vec<Attempt>, String> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("stopped once");
        thread.join().map_err(|_| "the load generator panicked".to_owned())?
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Counters = (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>);

async fn generate(settings: TrafficSettings, (stop, acknowledged, failed): Counters) -> Result<Vec<Attempt>, String> {
    let timeouts = ClientTimeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
    };
    let secondary = sdk_config(&Region::new(SECONDARY).map_err(|e| e.to_string())?, timeouts).await;
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&secondary)
            .endpoint_url(&settings.endpoint)
            .build(),
    );
    let interval = Duration::from_secs_f64(1.0 / f64::from(settings.orders_per_second.max(1)));
    let mut active = PRIMARY.to_owned();
    let mut looked_up: Option<Instant> = None;
    let mut attempts = Vec::new();
    let mut next = Instant::now();
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if looked_up.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            // A failed lookup keeps the last answer, as a resolver serves its cache.
            if let Ok(answer) = ssm.get_parameter().name(&settings.active_region_parameter).send().await {
                if let Some(value) = answer.parameter.and_then(|p| p.value) {
                    active = value;
                }
            }
            looked_up = Some(Instant::now());
        }
        let order_id = attempts.len() as u64 + 1;
        let region = active.as_str();
        let candidates: Vec<&AppServer> = settings.servers.iter().filter(|s| s.region == region).collect();
        let Some(server) = candidates.get(turn % candidates.len().max(1)).copied() else {
            return Err(format!("no app server in {region}, the active region"));
        };
        turn += 1;
        let placed = Instant::now();
        let configured = ServerConfig::of(&server.root, &server.pool_file)?;
        // Blocking: the load generator's runtime is its own thread's, with nothing else on it.
        let result = place_order(server.http, order_id, configured);
        let attempt = Attempt {
            order_id,
            at_seconds: placed.duration_since(settings.started).as_secs_f64(),
            took_seconds: placed.elapsed().as_secs_f64(),
            server: server.instance_id.clone(),
            db_host: result.config.db_host,
            dynamodb_region: result.config.dynamodb_region,
            mysql_error: result.mysql.err(),
            dynamodb_error: result.dynamodb.err(),
        };
        let counter = if attempt.acknowledged() { &acknowledged } else { &failed };
        counter.fetch_add(1, Ordering::Relaxed);
        attempts.push(attempt);
        next += interval;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        } else {
            next = now;
        }
    }
    Ok(attempts)
}
