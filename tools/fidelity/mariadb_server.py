"""One real MariaDB server on a free loopback port, as the database behind an RDS instance.

Each server has its own folder under `FIDELITY_STATE_DIR/mariadb/` (data, binary logs,
socket, error log), binds 127.0.0.1 only, and is a `keeper` child, so it dies with the
emulator. The layer itself talks to it as root over the Unix socket (root has no TCP
access); clients reach it over TCP with the users RDS would have: the master user, and
`rdsrepladmin` for replication.

Data directories are copied from one template made by `mariadb-install-db` on first use
(1.5 s once instead of once per instance).
"""

import itertools
import shutil
import socket
import subprocess
import threading
import time

import pymysql

from . import keeper, state

START_TIMEOUT_SECONDS = 30
BIND_ATTEMPTS = 5
STOP_TIMEOUT_SECONDS = 30
# What RDS grants the master user: everything an application needs, and neither SUPER nor
# READ_ONLY ADMIN, so a read replica's read_only holds for it as it does on RDS.
MASTER_USER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, "
    "SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, "
    "BINLOG MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, "
    "EVENT, TRIGGER"
)
REPLICATION_USER = "rdsrepladmin"

_template_lock = threading.Lock()
_server_ids = itertools.count(1)
_server_ids_lock = threading.Lock()
# Keeps small servers small: the tests start a dozen at once on two cores.
_SIZE_OPTIONS = [
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=4M",
    "--innodb-data-file-path=ibdata1:10M:autoextend",
    "--performance-schema=OFF",
    "--max-connections=100",
]


class _PortTaken(Exception):
    """The chosen port was taken before the server bound it."""


def require_binaries():
    """Names the missing package instead of failing later with a bare FileNotFoundError."""
    for binary in ("mariadbd", "mariadb-install-db", "mariadb-dump", "mariadb"):
        if shutil.which(binary) is None:
            raise RuntimeError(
                f"{binary} is not installed: RDS instances in the emulator are real MariaDB servers; "
                "install the Debian packages with `bash scripts/install-packages.sh` (as .ci/run does)"
            )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _template() -> str:
    """A freshly installed data directory, made once per emulator and copied for each server."""
    path = state.subdir("mariadb") / "template"
    with _template_lock:
        if not (path / "mysql").is_dir():
            shutil.rmtree(path, ignore_errors=True)
            require_binaries()
            subprocess.run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={path}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--user=root",
                    *_SIZE_OPTIONS,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
    return str(path)


class MariaDbServer:
    """A MariaDB server process and its folder; `name` is only for the folder and the logs."""

    def __init__(self, name: str):
        with _server_ids_lock:
            self.server_id = next(_server_ids) + 100
        self.folder = state.subdir("mariadb") / f"{self.server_id}-{name}"
        self.datadir = self.folder / "data"
        self.socket = str(self.folder / "mysqld.sock")
        self.error_log = self.folder / "error.log"
        self.port = 0
        self.process = None

    def create(self):
        """Makes the data directory and starts the server on a free port."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(_template(), self.datadir)
        self.start()
        self._install_rds_procedures()

    def _install_rds_procedures(self):
        """RDS's replication procedures: the master user has no SUPER, so it stops and starts
        a replica's replication with `CALL mysql.rds_stop_replication` / `rds_start_replication`
        (its EXECUTE grant on *.* covers them)."""
        statements = ["SET SESSION sql_log_bin=0"]
        for name, action in (("rds_stop_replication", "STOP SLAVE"), ("rds_start_replication", "START SLAVE")):
            statements.append(
                f"CREATE DEFINER='root'@'localhost' PROCEDURE mysql.{name}() SQL SECURITY DEFINER {action}"
            )
        self.execute_all(statements)

    def start(self, port: int = 0):
        """Starts (or restarts) the server, on `port` or a new free one, and waits until it answers.

        A free port can be taken by another process between the probe and the server's bind;
        then the server exits at once and is started again on another port (a few times)."""
        for _ in range(BIND_ATTEMPTS - 1):
            try:
                return self._start_once(port or free_port())
            except _PortTaken:
                if port:
                    raise
        return self._start_once(port or free_port())

    def _start_once(self, port: int):
        self.port = port
        bind_errors_before = self._bind_errors()
        self.process = keeper.popen(
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.folder / 'mysqld.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--log-error={self.error_log}",
                f"--server-id={self.server_id}",
                f"--log-bin={self.datadir / 'binlog'}",
                "--binlog-format=ROW",
                "--log-slave-updates=ON",
                "--gtid-strict-mode=ON",
                "--skip-name-resolve",
                "--skip-slave-start",
                *_SIZE_OPTIONS,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self._bind_errors() > bind_errors_before:
                    raise _PortTaken()
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}; see {self.error_log}")
            try:
                self.query("SELECT 1")
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not answer within {START_TIMEOUT_SECONDS}s; see {self.error_log}")

    def _bind_errors(self) -> int:
        try:
            return self.error_log.read_text(errors="replace").count("Address already in use")
        except FileNotFoundError:
            return 0

    def stop(self):
        """Shuts the server down cleanly (SIGTERM), as RDS stops an instance."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def remove(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def connect(self):
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True, connect_timeout=5)

    def query(self, sql: str, args=None) -> list:
        """Runs one statement as root; returns its rows as dicts."""
        with self.connect() as connection, connection.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def execute_all(self, statements):
        """Runs statements in order on one connection (session settings carry over)."""
        with self.connect() as connection, connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    def create_rds_users(self, master_user: str, master_password: str, replication_password: str):
        """The master user with RDS's grants, and the replication user replicas connect as."""
        self.execute_all(
            [
                "CREATE USER %s@'%%' IDENTIFIED BY %s" % (_literal(master_user), _literal(master_password)),
                "GRANT %s ON *.* TO %s@'%%' WITH GRANT OPTION" % (MASTER_USER_PRIVILEGES, _literal(master_user)),
                "CREATE USER %s@'%%' IDENTIFIED BY %s" % (_literal(REPLICATION_USER), _literal(replication_password)),
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.* TO %s@'%%'"
                % _literal(REPLICATION_USER),
            ]
        )

    def seed_from(self, source: "MariaDbServer", replication_password: str):
        """Copies `source`'s databases and users at one GTID position, then replicates from there.

        The source is held read-locked while its user databases are dumped, so the copy and
        the position agree; nothing of the copy goes to this server's binary log, so its
        GTID history is the source's (as a replica made from a snapshot has).
        """
        with source.connect() as lock:
            with lock.cursor() as cursor:
                cursor.execute("FLUSH TABLES WITH READ LOCK")
                cursor.execute("SELECT @@GLOBAL.gtid_binlog_pos")
                position = cursor.fetchone()[0] or ""
                cursor.execute(
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN "
                    "('mysql', 'information_schema', 'performance_schema', 'sys')"
                )
                databases = [row[0] for row in cursor.fetchall()]
                users = source._user_statements(cursor)
                dump = b""
                if databases:
                    dump = subprocess.run(
                        [
                            "mariadb-dump",
                            f"--socket={source.socket}",
                            "--user=root",
                            "--single-transaction",
                            "--skip-lock-tables",
                            "--routines",
                            "--events",
                            "--triggers",
                            "--databases",
                            *databases,
                        ],
                        check=True,
                        capture_output=True,
                        timeout=300,
                    ).stdout
                cursor.execute("UNLOCK TABLES")
        if dump:
            subprocess.run(
                ["mariadb", f"--socket={self.socket}", "--user=root", "--init-command=SET SESSION sql_log_bin=0"],
                input=dump,
                check=True,
                capture_output=True,
                timeout=300,
            )
        self.execute_all(["SET SESSION sql_log_bin=0", *users])
        self.execute_all(
            [
                "RESET MASTER",
                "SET GLOBAL gtid_slave_pos = %s" % _literal(position),
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
                % (source.port, _literal(REPLICATION_USER), _literal(replication_password)),
                "SET GLOBAL read_only = ON",
                "START SLAVE",
            ]
        )

    def _user_statements(self, cursor) -> list:
        """CREATE USER and GRANT statements that recreate every account but the built-in ones."""
        cursor.execute("SELECT user, host FROM mysql.user WHERE user NOT IN ('root', 'mariadb.sys', '')")
        statements = []
        for user, host in cursor.fetchall():
            cursor.execute("SHOW CREATE USER %s@%s", (user, host))
            statements.append(cursor.fetchone()[0])
            cursor.execute("SHOW GRANTS FOR %s@%s", (user, host))
            statements.extend(row[0] for row in cursor.fetchall())
        return statements

    def replica_status(self):
        """SHOW SLAVE STATUS as a dict, or None when this server replicates from nothing."""
        rows = self.query("SHOW SLAVE STATUS")
        return rows[0] if rows else None

    def detach(self):
        """What promotion does to the database: replication stopped and forgotten, writable."""
        self.execute_all(["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"])


def _literal(value: str) -> str:
    """A quoted SQL string literal (values come from API callers)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

