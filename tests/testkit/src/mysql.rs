//! A MySQL client for the databases behind the emulator's RDS: the `mariadb` command-line
//! client (installed with the server), over TCP to the instance's endpoint, as the master
//! user, like an application. No client crate: nothing more to compile.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The master user every fixture database is created with.
pub const MASTER_USER: &str = "shopadmin";
/// Its password.
pub const MASTER_PASSWORD: &str = "not-a-real-password-1";

/// Connection settings of one database endpoint.
#[derive(Debug, Clone)]
pub struct Mysql {
    host: String,
    port: u16,
}

/// A statement the server refused: the client's exit status and message.
#[derive(Debug, Clone)]
pub struct SqlError {
    /// What the client printed, e.g. `ERROR 1290 (HY000) ... --read-only option ...`.
    pub message: String,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Mysql {
    /// The endpoint as DescribeDBInstances reports it.
    pub fn new(host: &str, port: u16) -> Self {
        Self {
            host: host.to_owned(),
            port,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("mariadb");
        command
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={MASTER_USER}"))
            .arg("--protocol=TCP")
            .arg("--connect-timeout=5")
            .arg("--batch")
            .arg("--skip-column-names")
            .env("MYSQL_PWD", MASTER_PASSWORD);
        command
    }

    /// Runs `sql` (one or more statements); returns the rows of the last result, tab-split.
    pub fn run(&self, sql: &str) -> Result<Vec<Vec<String>>, SqlError> {
        let output = self
            .command()
            .arg("--execute")
            .arg(sql)
            .output()
            .map_err(|e| SqlError {
                message: format!("cannot run the mariadb client (is MariaDB installed?): {e}"),
            })?;
        if !output.status.success() {
            return Err(SqlError {
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(rows(&output.stdout))
    }

    /// [`Mysql::run`] given at most `limit` (the client is killed after it, as an app's
    /// request timeout would end it): a frozen server answers with an error, not a hang.
    pub fn run_within(&self, sql: &str, limit: Duration) -> Result<Vec<Vec<String>>, SqlError> {
        let client = self.command();
        let mut bounded = Command::new("timeout");
        bounded
            .arg("--kill-after=1")
            .arg(format!("{:.3}", limit.as_secs_f64()))
            .arg(client.get_program())
            .args(client.get_args())
            .envs(client.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .arg("--execute")
            .arg(sql);
        let output = bounded.output().map_err(|e| SqlError {
            message: format!("cannot run timeout/mariadb: {e}"),
        })?;
        match output.status.code() {
            Some(0) => Ok(rows(&output.stdout)),
            Some(124 | 137) | None => Err(SqlError {
                message: format!("no answer within {limit:?}"),
            }),
            Some(_) => Err(SqlError {
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            }),
        }
    }

    /// [`Mysql::run`] that must succeed.
    pub fn exec(&self, sql: &str) -> Vec<Vec<String>> {
        self.run(sql)
            .unwrap_or_else(|e| panic!("{sql} on {}:{}: {e}", self.host, self.port))
    }

    /// The first column of every row of `sql`.
    pub fn column(&self, sql: &str) -> Vec<String> {
        self.exec(sql)
            .into_iter()
            .filter_map(|row| row.into_iter().next())
            .collect()
    }

    /// A session kept open (the client reading statements from its stdin), e.g. to hold a
    /// transaction's locks while something else happens; ended by [`Session::end`] or drop.
    pub fn session(&self) -> Session {
        let child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the mariadb client: {e}"));
        Session { child }
    }
}

/// The client's `--batch` output: one row per line, tab-split.
fn rows(stdout: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// An open client session (see [`Mysql::session`]).
#[derive(Debug)]
pub struct Session {
    child: Child,
}

impl Session {
    /// Sends statements to the session (they run in order, asynchronously).
    pub fn send(&mut self, sql: &str) {
        let stdin = self.child.stdin.as_mut().expect("the session's stdin is piped");
        writeln!(stdin, "{sql}")
            .and_then(|()| stdin.flush())
            .expect("the session is open");
    }

    /// Closes the session (its locks and open transaction go) and waits for the client.
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
