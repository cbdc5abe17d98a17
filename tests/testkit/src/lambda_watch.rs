//! `cargo lambda watch` on a loopback port, and invocations through `cargo lambda invoke`.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kept_child::{self, process_alive};

/// A running `cargo lambda watch`, serving every function of the workspace; stopped
/// (with the function processes it started) when dropped.
#[derive(Debug)]
pub struct LambdaWatch {
    pid: u32,
    port: u16,
}

/// A function error, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType` (`Retryable`, `NonRetryable`, …).
    pub error_type: String,
    /// `errorMessage`.
    pub message: String,
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl LambdaWatch {
    /// Starts the server in `workspace` with `env` for every function, logging to `log`,
    /// and waits (bounded) until its port accepts connections.
    pub fn start(workspace: &Path, env: &[(String, String)], log: &Path) -> io::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let log_file = std::fs::File::create(log)?;
        let mut command = Command::new("cargo");
        command
            .args([
                "lambda",
                "watch",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(workspace)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let pid = kept_child::spawn_kept(command, "cargo-lambda-watch", true)?;
        let watch = Self { pid, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if !process_alive(pid) {
                return Err(io::Error::other(format!(
                    "cargo lambda watch exited; see {}",
                    log.display()
                )));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(watch);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::other(format!(
            "cargo lambda watch did not listen within 120 s; see {}",
            log.display()
        )))
    }

    /// The invoke port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Invokes `function` with `payload` through `cargo lambda invoke`; a function error
    /// comes back as `Ok(Err(..))`, a failure to invoke at all as `Err(..)`.
    pub fn invoke(&self, function: &str, payload: &Value) -> io::Result<Result<Value, FunctionError>> {
        let output = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-ascii")
            .arg(payload.to_string())
            .args(["--output-format", "json"])
            .stdin(Stdio::null())
            .output()?;
        parse_invoke_output(function, &output.stdout, &output.stderr, output.status.success())
    }

    /// Invokes with a file's content (`cargo lambda invoke --data-file`).
    pub fn invoke_file(&self, function: &str, file: &Path) -> io::Result<Result<Value, FunctionError>> {
        let output = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(file)
            .args(["--output-format", "json"])
            .stdin(Stdio::null())
            .output()?;
        parse_invoke_output(function, &output.stdout, &output.stderr, output.status.success())
    }
}

/// `cargo lambda invoke` prints the response on success; on a function error it exits
/// non-zero and prints `Error: <errorType>` followed by the message.
fn parse_invoke_output(
    function: &str,
    stdout: &[u8],
    stderr: &[u8],
    success: bool,
) -> io::Result<Result<Value, FunctionError>> {
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = String::from_utf8_lossy(stderr);
    if success {
        return serde_json::from_str(stdout.trim())
            .map(Ok)
            .map_err(|e| io::Error::other(format!("{function} answered with non-JSON {stdout:?}: {e}")));
    }
    let text = format!("{stdout}\n{stderr}");
    let error_type = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .map(str::trim);
    match error_type {
        Some(error_type) if !error_type.contains(' ') => {
            let message = text
                .lines()
                .skip_while(|l| !l.trim().starts_with("Error: "))
                .skip(1)
                .take_while(|l| !l.contains("Was this behavior unexpected?"))
                .map(|l| l.trim().trim_start_matches(['×', '│']).trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Ok(Err(FunctionError {
                error_type: error_type.to_owned(),
                message,
            }))
        }
        _ => Err(io::Error::other(format!(
            "cargo lambda invoke {function} failed: {}",
            text.trim()
        ))),
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        kept_child::kill_group(self.pid, libc::SIGTERM);
        let started = Instant::now();
        while process_alive(self.pid) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        kept_child::kill_group(self.pid, libc::SIGKILL);
    }
}
