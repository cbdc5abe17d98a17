//! A fault-injecting HTTP proxy between an SDK client and the emulator.
//!
//! It listens on `127.0.0.1:0`, forwards each request to the upstream (normally the moto
//! server) and, at configurable rates, answers instead with the service's throttling error
//! (in its own protocol, [`crate::fault_answers`]: DynamoDB's HTTP 400 `ThrottlingException`,
//! RDS's `Throttling`, Lambda's 429…), an HTTP 500, or drops the connection: half of the
//! drops before forwarding (the request never arrives) and half after (the request took
//! effect but the answer is lost, the nastiest case for a client). It can also fail
//! everything, or every request signed for one region (the region is read from the SigV4
//! credential scope in the `Authorization` header), to simulate a regional outage.
//!
//! Decisions come from one RNG seeded at start, drawn in the order requests arrive: a
//! sequential client sees the same faults on every run. Each connection carries one request
//! (the proxy answers with `Connection: close`), so every request is decided on its own.
//! Point only a test's client at it, with `.endpoint_url(proxy.endpoint())`. Dropping the
//! proxy stops the accept loop and joins every connection thread; all I/O has timeouts, so
//! that takes a bounded time.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Upper bound of a request or response head.
const MAX_HEAD: usize = 64 * 1024;
/// Upper bound of a request body (DynamoDB's own limit is 16 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Upper bound of an upstream response.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Timeout of every read, write and connect.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause of the accept loop when no connection is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(2);

/// The DynamoDB throttling answer's body (other services answer in their own protocol,
/// see [`crate::fault_answers`]).
pub const THROTTLING_BODY: &str = crate::fault_answers::DYNAMODB_THROTTLING_BODY;
/// The DynamoDB server error answer's body.
pub const SERVER_ERROR_BODY: &str = crate::fault_answers::DYNAMODB_SERVER_ERROR_BODY;

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling error (DynamoDB: HTTP 400 `ThrottlingException`).
    Throttle,
    /// HTTP 500 `InternalServerError`.
    ServerError,
    /// The connection is closed without an answer (before or after forwarding).
    Drop,
}

/// Fault rates, each a fraction of all requests (their sum at most 1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultPlan {
    /// Fraction answered with a throttling error.
    pub throttle: f64,
    /// Fraction answered with HTTP 500.
    pub server_error: f64,
    /// Fraction whose connection is dropped.
    pub drop: f64,
}

impl FaultPlan {
    /// No faults: a transparent proxy.
    pub fn none() -> Self {
        Self::default()
    }

    /// `rate` of all requests fail, split evenly between the three kinds of fault.
    pub fn even(rate: f64) -> Self {
        let third = rate.clamp(0.0, 1.0) / 3.0;
        Self {
            throttle: third,
            server_error: third,
            drop: third,
        }
    }
}

/// Counts of what the proxy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Requests received.
    pub requests: u64,
    /// Requests forwarded upstream (including those whose answer was then dropped).
    pub forwarded: u64,
    /// Throttling answers.
    pub throttled: u64,
    /// HTTP 500 answers.
    pub server_errors: u64,
    /// Connections dropped.
    pub dropped: u64,
}

impl ProxyStats {
    /// Requests that did not get their real answer.
    pub fn faults(&self) -> u64 {
        self.throttled + self.server_errors + self.dropped
    }
}

#[derive(Debug)]
struct Control {
    plan: FaultPlan,
    rng: fastrand::Rng,
    everything: Option<Fault>,
    regions: BTreeMap<String, Fault>,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    control: Mutex<Control>,
    counters: Counters,
    /// Per operation (`PromoteReadReplica`, `PutItem`…): requests upstream answered with
    /// 2xx, whether or not the answer then reached the client.
    accepted: Mutex<BTreeMap<String, u64>>,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Forward,
    Throttle,
    ServerError,
    DropBefore,
    DropAfter,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`), injecting `plan` with RNG `seed`.
    pub fn start(upstream: &str, plan: FaultPlan, seed: u64) -> io::Result<Self> {
        let authority = upstream
            .strip_prefix("http://")
            .ok_or_else(|| io::Error::other(format!("upstream {upstream:?} is not an http:// URL")))?
            .trim_end_matches('/');
        let upstream = authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other(format!("upstream {authority:?} does not resolve")))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            control: Mutex::new(Control {
                plan,
                rng: fastrand::Rng::with_seed(seed),
                everything: None,
                regions: BTreeMap::new(),
            }),
            counters: Counters::default(),
            accepted: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("fault-proxy-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The URL to give a client as its endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault rates.
    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut control) = self.shared.control.lock() {
            control.plan = plan;
        }
    }

    /// Fails every request with `fault` (a total outage), or back to the plan with `None`.
    pub fn fail_everything(&self, fault: Option<Fault>) {
        if let Ok(mut control) = self.shared.control.lock() {
            control.everything = fault;
        }
    }

    /// Fails every request signed for `region` with `fault`, or back to the plan with `None`.
    pub fn fail_region(&self, region: &str, fault: Option<Fault>) {
        if let Ok(mut control) = self.shared.control.lock() {
            match fault {
                Some(fault) => control.regions.insert(region.to_owned(), fault),
                None => control.regions.remove(region),
            };
        }
    }

    /// How many `operation` requests (e.g. `PromoteReadReplica`) upstream accepted (2xx),
    /// including those whose answer was then dropped: what AWS did, not what clients saw.
    pub fn accepted(&self, operation: &str) -> u64 {
        self.shared
            .accepted
            .lock()
            .map(|accepted| accepted.get(operation).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Fails every request signed for `service` (the SigV4 name: `rds`, `lambda`, `ssm`…)
    /// in `region` with `fault`, or back to the plan with `None`: a partial outage.
    pub fn fail_service(&self, region: &str, service: &str, fault: Option<Fault>) {
        self.fail_region(&format!("{region}/{service}"), fault);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            requests: c.requests.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = self
            .shared
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let worker_shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || {
                        // A failed exchange only affects that client, which sees a broken connection.
                        let _ = serve(client, &worker_shared);
                    });
                if let (Ok(handle), Ok(mut workers)) = (spawned, shared.workers.lock()) {
                    workers.retain(|w| !w.is_finished());
                    workers.push(handle);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// A parsed request: the head's lines and the body.
struct Request {
    head_lines: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head_lines.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let request = read_request(&mut client)?;
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let scope = request.header("authorization").and_then(signing_scope);
    let service = scope.as_ref().map(|(_, service)| service.as_str());
    match decide(shared, scope.as_ref().map(|(r, s)| (r.as_str(), s.as_str()))) {
        Decision::Forward => {
            let response = forward(shared, &request)?;
            shared.counters.forwarded.fetch_add(1, Ordering::Relaxed);
            count_accepted(shared, &request, &response);
            client.write_all(&response)?;
        }
        Decision::Throttle => {
            shared.counters.throttled.fetch_add(1, Ordering::Relaxed);
            client.write_all(&crate::fault_answers::throttling(service).to_http())?;
        }
        Decision::ServerError => {
            shared.counters.server_errors.fetch_add(1, Ordering::Relaxed);
            client.write_all(&crate::fault_answers::server_error(service).to_http())?;
        }
        Decision::DropBefore => {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Decision::DropAfter => {
            let forwarded = forward(shared, &request);
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if let Ok(response) = forwarded {
                shared.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                count_accepted(shared, &request, &response);
            }
        }
    }
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// The operation a request calls: the `X-Amz-Target` suffix (JSON protocols), the
/// `Action` form field (query protocol: RDS, CloudWatch…), or the path's last segment
/// (`/service/<S>/operation/<Op>`, rpcv2-cbor).
fn operation(request: &Request) -> Option<String> {
    if let Some(target) = request.header("x-amz-target") {
        return target.rsplit('.').next().map(str::to_owned);
    }
    let body = String::from_utf8_lossy(&request.body);
    if let Some(action) = body.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
        return Some(action.to_owned());
    }
    let path = request.head_lines.first()?.split(' ').nth(1)?;
    path.contains("/operation/")
        .then(|| path.rsplit('/').next().map(str::to_owned))
        .flatten()
}

fn count_accepted(shared: &Shared, request: &Request, response: &[u8]) {
    let status = response
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok());
    if let (Some(200..=299), Some(name)) = (status, operation(request)) {
        if let Ok(mut accepted) = shared.accepted.lock() {
            *accepted.entry(name).or_default() += 1;
        }
    }
}

fn decide(shared: &Shared, scope: Option<(&str, &str)>) -> Decision {
    let Ok(mut control) = shared.control.lock() else {
        return Decision::ServerError;
    };
    let outage = control.everything.or_else(|| {
        scope.and_then(|(region, service)| {
            control
                .regions
                .get(&format!("{region}/{service}"))
                .or_else(|| control.regions.get(region))
                .copied()
        })
    });
    // Draw even during an outage, so the sequence after it does not depend on its length.
    let draw = control.rng.f64();
    let drop_after = control.rng.bool();
    let fault = outage.or_else(|| {
        let plan = control.plan;
        if draw < plan.throttle {
            Some(Fault::Throttle)
        } else if draw < plan.throttle + plan.server_error {
            Some(Fault::ServerError)
        } else if draw < plan.throttle + plan.server_error + plan.drop {
            Some(Fault::Drop)
        } else {
            None
        }
    });
    match fault {
        None => Decision::Forward,
        Some(Fault::Throttle) => Decision::Throttle,
        Some(Fault::ServerError) => Decision::ServerError,
        // An outage never lets a request through.
        Some(Fault::Drop) if drop_after && outage.is_none() => Decision::DropAfter,
        Some(Fault::Drop) => Decision::DropBefore,
    }
}

/// The region of a SigV4 `Authorization` header: `Credential=<key>/<date>/<region>/<service>/aws4_request`.
pub fn signing_region(authorization: &str) -> Option<String> {
    signing_scope(authorization).map(|(region, _)| region)
}

/// The region and service of a SigV4 `Authorization` header's credential scope.
pub fn signing_scope(authorization: &str) -> Option<(String, String)> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [_, _, region, service, "aws4_request"] if !region.is_empty() => {
            Some(((*region).to_owned(), (*service).to_owned()))
        }
        _ => None,
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn read_request(client: &mut TcpStream) -> io::Result<Request> {
    let mut buffer = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(end) = find_head_end(&buffer) {
            break end;
        }
        if buffer.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let read = client.read(&mut chunk)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed before a request",
            ));
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let head_lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut request = Request {
        head_lines,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        return Err(io::Error::other("chunked request bodies are not supported"));
    }
    let length: usize = match request.header("content-length") {
        Some(value) => value.parse().map_err(|_| io::Error::other("bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(io::Error::other("request body too large"));
    }
    let mut body = buffer.split_off(head_end);
    while body.len() < length {
        let read = client.read(&mut chunk)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client closed mid-body"));
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// Sends the request upstream on a fresh connection and returns the whole answer, with
/// `Connection: close` so the client does not reuse its connection to the proxy.
fn forward(shared: &Shared, request: &Request) -> io::Result<Vec<u8>> {
    let mut upstream = TcpStream::connect_timeout(&shared.upstream, IO_TIMEOUT)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = String::new();
    for line in &request.head_lines {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&request.body)?;
    upstream.flush()?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let read = upstream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
        if response.len() > MAX_RESPONSE {
            return Err(io::Error::other("upstream response too large"));
        }
    }
    let head_end = find_head_end(&response).ok_or_else(|| io::Error::other("upstream sent no HTTP head"))?;
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut rewritten = String::with_capacity(head.len() + 20);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut answer = rewritten.into_bytes();
    answer.extend_from_slice(&response[head_end..]);
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A minimal upstream answering every request with 200 and the request count.
    struct Upstream {
        addr: SocketAddr,
        hits: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Upstream {
        fn start() -> Self {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (h, s) = (Arc::clone(&hits), Arc::clone(&stop));
            let thread = thread::spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                            if read_request(&mut conn).is_ok() {
                                let n = h.fetch_add(1, Ordering::SeqCst) + 1;
                                let body = format!("{{\"hit\":{n}}}");
                                let _ = write!(
                                    conn,
                                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
                                    body.len()
                                );
                            }
                        }
                        Err(_) => thread::sleep(Duration::from_millis(1)),
                    }
                }
            });
            Self {
                addr,
                hits,
                stop,
                thread: Some(thread),
            }
        }
        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }
    }

    impl Drop for Upstream {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn auth(region: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261121/{region}/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }

    /// Sends one POST through `proxy`; the status and body, or `None` if the connection dropped.
    fn post(proxy: &FaultProxy, region: &str) -> Option<(u16, String)> {
        let mut conn = TcpStream::connect(proxy.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = r#"{"TableName":"t"}"#;
        write!(
            conn,
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
            auth(region),
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).ok()?;
        if answer.is_empty() {
            return None;
        }
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        Some((status, answer.split("\r\n\r\n").nth(1)?.to_owned()))
    }

    #[test]
    fn forwards_transparently_without_faults() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(&upstream.url(), FaultPlan::none(), 1).unwrap();
        for n in 1..=3 {
            assert_eq!(post(&proxy, "us-east-1"), Some((200, format!("{{\"hit\":{n}}}"))));
        }
        assert_eq!(
            proxy.stats(),
            ProxyStats {
                requests: 3,
                forwarded: 3,
                ..ProxyStats::default()
            }
        );
    }

    #[test]
    fn injects_each_kind_of_fault() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(&upstream.url(), FaultPlan::none(), 1).unwrap();
        proxy.set_plan(FaultPlan {
            throttle: 1.0,
            ..FaultPlan::none()
        });
        assert_eq!(post(&proxy, "us-east-1"), Some((400, THROTTLING_BODY.to_owned())));
        proxy.set_plan(FaultPlan {
            server_error: 1.0,
            ..FaultPlan::none()
        });
        assert_eq!(post(&proxy, "us-east-1"), Some((500, SERVER_ERROR_BODY.to_owned())));
        proxy.set_plan(FaultPlan {
            drop: 1.0,
            ..FaultPlan::none()
        });
        for _ in 0..20 {
            assert_eq!(post(&proxy, "us-east-1"), None);
        }
        let stats = proxy.stats();
        assert_eq!((stats.throttled, stats.server_errors, stats.dropped), (1, 1, 20));
        // Some drops happened after forwarding: the upstream saw them.
        assert!(stats.forwarded > 0 && stats.forwarded < 20, "{stats:?}");
        assert_eq!(upstream.hits.load(Ordering::SeqCst), stats.forwarded);
    }

    #[test]
    fn the_rate_is_respected_and_the_seed_makes_it_repeatable() {
        let upstream = Upstream::start();
        let outcomes = |seed| {
            let proxy = FaultProxy::start(&upstream.url(), FaultPlan::even(0.2), seed).unwrap();
            let seen: Vec<Option<u16>> = (0..300).map(|_| post(&proxy, "us-east-1").map(|(s, _)| s)).collect();
            (seen, proxy.stats())
        };
        let (first, stats) = outcomes(42);
        let (again, _) = outcomes(42);
        let (other, _) = outcomes(43);
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_eq!(stats.requests, 300);
        assert!((30..=90).contains(&stats.faults()), "{stats:?}");
        assert!(
            stats.throttled > 0 && stats.server_errors > 0 && stats.dropped > 0,
            "{stats:?}"
        );
    }

    #[test]
    fn an_outage_fails_everything_or_one_region() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(&upstream.url(), FaultPlan::none(), 1).unwrap();
        proxy.fail_region("us-east-1", Some(Fault::ServerError));
        assert_eq!(post(&proxy, "us-east-1").map(|r| r.0), Some(500));
        assert_eq!(post(&proxy, "us-west-2").map(|r| r.0), Some(200));
        proxy.fail_everything(Some(Fault::Drop));
        assert_eq!(post(&proxy, "us-west-2"), None);
        assert_eq!(post(&proxy, "us-east-1"), None);
        proxy.fail_everything(None);
        proxy.fail_region("us-east-1", None);
        assert_eq!(post(&proxy, "us-east-1").map(|r| r.0), Some(200));
        // During an outage nothing reaches the upstream, not even dropped requests.
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_signing_region_is_read_from_the_credential_scope() {
        assert_eq!(signing_region(&auth("eu-west-1")).as_deref(), Some("eu-west-1"));
        assert_eq!(
            signing_scope(&auth("eu-west-1")),
            Some(("eu-west-1".to_owned(), "dynamodb".to_owned()))
        );
        assert_eq!(signing_region("Bearer x"), None);
        assert_eq!(signing_region("AWS4-HMAC-SHA256 Credential=a/b/c"), None);
    }

    /// Sends one raw request (extra head lines and body) through `proxy`; whether an answer came.
    fn send(proxy: &FaultProxy, extra_head: &str, body: &str) -> bool {
        let mut conn = TcpStream::connect(proxy.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            conn,
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n{extra_head}Content-Length: {}\r\n\r\n{body}",
            auth("us-east-1"),
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).is_ok() && !answer.is_empty()
    }

    #[test]
    fn operations_upstream_accepted_are_counted_by_name_even_when_the_answer_is_dropped() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(&upstream.url(), FaultPlan::none(), 1).unwrap();
        assert!(send(&proxy, "", "Action=PromoteReadReplica&Version=2014-10-31"));
        assert!(send(&proxy, "X-Amz-Target: DynamoDB_20120810.PutItem\r\n", "{}"));
        proxy.set_plan(FaultPlan {
            throttle: 1.0,
            ..FaultPlan::none()
        });
        assert!(send(&proxy, "", "Action=PromoteReadReplica&Version=2014-10-31"));
        proxy.set_plan(FaultPlan {
            drop: 1.0,
            ..FaultPlan::none()
        });
        for _ in 0..20 {
            send(&proxy, "", "Action=PromoteReadReplica&Version=2014-10-31");
        }
        let reached = proxy.stats().forwarded - 2;
        assert!(reached > 0, "some drops came after forwarding");
        // The throttled one never reached upstream; the ones dropped after it did.
        assert_eq!(proxy.accepted("PromoteReadReplica"), 1 + reached);
        assert_eq!(proxy.accepted("PutItem"), 1);
        assert_eq!(proxy.accepted("DeleteItem"), 0);
    }

    #[test]
    fn dropping_the_proxy_stops_it() {
        let upstream = Upstream::start();
        let proxy = FaultProxy::start(&upstream.url(), FaultPlan::none(), 1).unwrap();
        let addr = proxy.addr;
        assert!(post(&proxy, "us-east-1").is_some());
        drop(proxy);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    }
}
