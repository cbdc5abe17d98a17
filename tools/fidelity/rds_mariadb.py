"""RDS MySQL and MariaDB instances backed by real MariaDB servers with real GTID replication.

What RDS does, and what moto does instead (an instance is a record with no database; a
replica is a copy of the record; promotion is instant and keeps the replica's source):

- CreateDBInstance: the instance is `creating` while its server is made and started,
  `backing-up` for FIDELITY_RDS_BACKUP_SECONDS (default 1), then `available`. Its Endpoint
  is the server's real loopback address and port; the master user has RDS's grants (no
  SUPER), and `rdsrepladmin` is the replication user.
- CreateDBInstanceReadReplica (also cross-region, by source ARN): the source must be
  `available` with automated backups enabled (BackupRetentionPeriod > 0), as RDS requires.
  The new server is seeded from the source at one GTID position and replicates from it
  (read_only ON); `creating` → `backing-up` → `available`.
- DescribeDBInstances: StatusInfos `read replication` (replicating / error / stopped, with
  the server's own error text) read from the replica's SHOW SLAVE STATUS at each call.
- PromoteReadReplica: refused with InvalidDBInstanceState for an instance that is not a
  read replica, or that is not `available` (e.g. `backing-up`), DBInstanceNotFound for an
  unknown id; otherwise `modifying`, then `rebooting` (FIDELITY_RDS_PROMOTION_SECONDS in
  all, default 3, split in halves; an instance's tag `fidelity:promotion-seconds` overrides
  it), and only then the replica is detached (replication
  stopped and reset, read_only OFF) and becomes `available` without a source.
- StopDBInstance / StartDBInstance: the server is shut down / started (`stopping` →
  `stopped`, `starting` → `available`); an instance with read replicas cannot be stopped.
- ModifyDBInstance with NewDBInstanceIdentifier: `renaming`; the server restarts on a new
  port, so the old endpoint no longer reaches it (RDS: the old DNS name stops resolving);
  its replicas follow it, as RDS repoints them.
- DeleteDBInstance: the server is stopped and its files removed.
- CloudWatch: every FIDELITY_RDS_METRIC_SECONDS (default 2; RDS publishes each minute)
  each replica's `AWS/RDS` `ReplicaLag` (DBInstanceIdentifier) is put: Seconds_Behind_Master,
  or -1 when replication is not running, as RDS reports it.

Other engines are left to moto.
"""

import logging
import os
import secrets
import threading
import time

from moto.cloudwatch.models import cloudwatch_backends
from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
from moto.rds.models import DBInstance, DBInstanceClustered, RDSBackend

from .mariadb_server import MariaDbServer

ENGINES = ("mysql", "mariadb")
PROMOTION_SECONDS_TAG = "fidelity:promotion-seconds"
_log = logging.getLogger("fidelity.rds")
_REPLICATION_PASSWORD = secrets.token_hex(16)
# Every instance with a server: (account, region, instance), for the metric publisher.
_backed: list = []
_backed_lock = threading.Lock()


def _seconds(name: str, default: str) -> float:
    return float(os.environ.get(name, default))


def _invalid_state(message: str) -> RDSClientError:
    return RDSClientError("InvalidDBInstanceState", message)


def _server(instance):
    return getattr(instance, "fidelity_server", None)


def _is_backed(instance) -> bool:
    return _server(instance) is not None


def _in_background(name: str, instance, work):
    """Runs a status transition off the request thread; a failure leaves the instance `failed`."""

    def run():
        try:
            work()
        except Exception:
            _log.exception("%s of %s failed", name, instance.db_instance_identifier)
            instance.status = "failed"

    threading.Thread(target=run, name=f"rds-{name}-{instance.db_instance_identifier}", daemon=True).start()


def _becomes_available(instance):
    instance.status = "backing-up"
    time.sleep(_seconds("FIDELITY_RDS_BACKUP_SECONDS", "1"))
    instance.status = "available"


def _register(backend, instance, server):
    instance.fidelity_server = server
    with _backed_lock:
        _backed.append((backend.account_id, backend.region_name, instance))


_create = RDSBackend.create_db_instance


def _create_db_instance(self, db_kwargs):
    instance = _create(self, db_kwargs)
    if instance.engine not in ENGINES or isinstance(instance, DBInstanceClustered):
        return instance
    server = MariaDbServer(instance.db_instance_identifier)
    _register(self, instance, server)
    instance.status = "creating"

    def provision():
        server.create()
        # moto hides the password behind a property that raises; RDS keeps it write-only too.
        password = getattr(instance, "_master_user_password", None) or ""
        server.create_rds_users(instance.master_username, password, _REPLICATION_PASSWORD)
        instance.port = server.port
        _becomes_available(instance)

    _in_background("create", instance, provision)
    return instance


_create_replica = RDSBackend.create_db_instance_read_replica


def _create_db_instance_read_replica(self, db_kwargs):
    source = self.find_db_from_id(db_kwargs["source_db_instance_identifier"])
    if not _is_backed(source):
        return _create_replica(self, db_kwargs)
    if source.status != "available":
        raise _invalid_state(f"DB Instance {source.db_instance_identifier} is not in available state.")
    if not source.backup_retention_period:
        raise _invalid_state(
            "Automated backups are not enabled for this database instance. To enable automated backups, "
            "use ModifyDBInstance to set the backup retention period to a non-zero value."
        )
    replica = _create_replica(self, db_kwargs)
    server = MariaDbServer(replica.db_instance_identifier)
    _register(self, replica, server)
    replica.status = "creating"

    def provision():
        server.create()
        server.seed_from(_server(source), _REPLICATION_PASSWORD)
        replica.port = server.port
        _becomes_available(replica)

    _in_background("create-replica", replica, provision)
    return replica


_promote = RDSBackend.promote_read_replica


def _promote_read_replica(self, db_kwargs):
    instance_id = db_kwargs["db_instance_identifier"]
    instance = self.databases.get(instance_id)
    if instance is None:
        raise DBInstanceNotFoundError(instance_id)
    if not _is_backed(instance):
        return _promote(self, db_kwargs)
    if not instance.is_replica:
        raise _invalid_state("DB Instance is not a read replica.")
    if instance.status != "available":
        raise _invalid_state(f"DB Instance {instance_id} is not in available state (it is {instance.status}).")
    if db_kwargs.get("backup_retention_period") is not None:
        instance.backup_retention_period = db_kwargs["backup_retention_period"]
    instance.status = "modifying"
    half = _promotion_seconds(instance) / 2

    def promote():
        time.sleep(half)
        instance.status = "rebooting"
        time.sleep(half)
        _server(instance).detach()
        _forget_source(self, instance)
        instance.status = "available"

    _in_background("promote", instance, promote)
    return instance


def _promotion_seconds(instance) -> float:
    """FIDELITY_RDS_PROMOTION_SECONDS, or the instance's tag `fidelity:promotion-seconds` (so
    one test can have a slow promotion without slowing every other test's)."""
    for tag in getattr(instance, "tags", None) or []:
        if tag.get("Key") == PROMOTION_SECONDS_TAG:
            return float(tag.get("Value", "0"))
    return _seconds("FIDELITY_RDS_PROMOTION_SECONDS", "3")


def _forget_source(backend, instance):
    """A promoted instance has no source, and its source no longer lists it."""
    source_id = instance.source_db_instance_identifier
    instance.is_replica = False
    instance.source_db_instance_identifier = None
    try:
        source = backend.find_db_from_id(source_id) if source_id else None
    except Exception:  # the source may be gone (deleted, or its region lost)
        source = None
    if source is not None:
        for name in (instance.db_instance_arn, instance.db_instance_identifier):
            if name in source.replicas:
                source.replicas.remove(name)


_stop = RDSBackend.stop_db_instance


def _stop_db_instance(self, db_instance_identifier, db_snapshot_identifier=None):
    instance = self.describe_db_instances(db_instance_identifier)[0]
    if _is_backed(instance) and instance.replicas:
        raise _invalid_state(f"DB Instance {db_instance_identifier} has read replicas and cannot be stopped.")
    instance = _stop(self, db_instance_identifier, db_snapshot_identifier)
    if _is_backed(instance):
        instance.status = "stopping"

        def stop():
            _server(instance).stop()
            instance.status = "stopped"

        _in_background("stop", instance, stop)
    return instance


_start = RDSBackend.start_db_instance


def _start_db_instance(self, db_instance_identifier):
    instance = _start(self, db_instance_identifier)
    if _is_backed(instance):
        instance.status = "starting"

        def start():
            server = _server(instance)
            server.start(server.port)
            instance.status = "available"

        _in_background("start", instance, start)
    return instance


_modify = RDSBackend.modify_db_instance


def _modify_db_instance(self, db_instance_identifier, db_kwargs):
    renaming = "new_db_instance_identifier" in db_kwargs
    instance = _modify(self, db_instance_identifier, db_kwargs)
    if renaming and _is_backed(instance):
        instance.status = "renaming"

        def rename():
            server = _server(instance)
            server.stop()
            server.start()
            instance.port = server.port
            for replica in _replicas_of(instance):
                _server(replica).execute_all(
                    ["STOP SLAVE", f"CHANGE MASTER TO MASTER_PORT={server.port}", "START SLAVE"]
                )
            instance.status = "available"

        _in_background("rename", instance, rename)
    return instance


def _replicas_of(instance):
    with _backed_lock:
        candidates = [entry[2] for entry in _backed]
    return [
        other
        for other in candidates
        if other.is_replica
        and other.source_db_instance_identifier in (instance.db_instance_arn, instance.db_instance_identifier)
        and _server(other).running()
    ]


_delete = RDSBackend.delete_db_instance


def _delete_db_instance(self, db_instance_identifier, *args, **kwargs):
    instance = _delete(self, db_instance_identifier, *args, **kwargs)
    if _is_backed(instance):
        with _backed_lock:
            _backed[:] = [entry for entry in _backed if entry[2] is not instance]
        server = _server(instance)
        threading.Thread(target=server.remove, name=f"rds-delete-{db_instance_identifier}", daemon=True).start()
    return instance


_address = DBInstance.address


def _loopback_address(self):
    """The server's real address; moto makes up an RDS-style DNS name that resolves nowhere."""
    return "127.0.0.1" if _is_backed(self) else _address.fget(self)


def _status_infos(self):
    """RDS's `read replication` status, derived from the replica's own SHOW SLAVE STATUS."""
    server = _server(self)
    if not self.is_replica or server is None or self.status == "creating" or not server.running():
        return []
    try:
        status = server.replica_status()
    except Exception as error:  # the server is going down or restarting
        return [{"StatusType": "read replication", "Normal": False, "Status": "error", "Message": str(error)}]
    return [_replication_status(status)]


def _replication_status(status) -> dict:
    if status is None:
        return {"StatusType": "read replication", "Normal": False, "Status": "stopped"}
    error = status.get("Last_SQL_Error") or status.get("Last_IO_Error")
    if status.get("Last_SQL_Errno") or status.get("Last_IO_Errno"):
        return {"StatusType": "read replication", "Normal": False, "Status": "error", "Message": error}
    if status.get("Slave_SQL_Running") == "Yes" and status.get("Slave_IO_Running") in ("Yes", "Connecting"):
        return {"StatusType": "read replication", "Normal": True, "Status": "replicating"}
    return {"StatusType": "read replication", "Normal": False, "Status": "stopped"}


def replica_lag(server) -> float:
    """Seconds_Behind_Master, or -1 when replication is not running (as RDS reports it)."""
    status = server.replica_status()
    if status is None or status.get("Slave_SQL_Running") != "Yes" or status.get("Slave_IO_Running") != "Yes":
        return -1.0
    lag = status.get("Seconds_Behind_Master")
    return -1.0 if lag is None else float(lag)


def _publish_replica_lag():
    while True:
        time.sleep(_seconds("FIDELITY_RDS_METRIC_SECONDS", "2"))
        with _backed_lock:
            entries = list(_backed)
        for account, region, instance in entries:
            server = _server(instance)
            if not instance.is_replica or instance.status in ("creating", "stopped") or not server.running():
                continue
            try:
                lag = replica_lag(server)
            except Exception:  # restarting or going away: nothing to report this round
                continue
            cloudwatch_backends[account][region].put_metric_data(
                "AWS/RDS",
                [
                    {
                        "MetricName": "ReplicaLag",
                        "Value": lag,
                        "Unit": "Seconds",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance.db_instance_identifier}],
                    }
                ],
            )


def install():
    RDSBackend.create_db_instance = _create_db_instance
    RDSBackend.create_db_instance_read_replica = _create_db_instance_read_replica
    RDSBackend.promote_read_replica = _promote_read_replica
    RDSBackend.stop_db_instance = _stop_db_instance
    RDSBackend.start_db_instance = _start_db_instance
    RDSBackend.modify_db_instance = _modify_db_instance
    RDSBackend.delete_db_instance = _delete_db_instance
    DBInstance.status_infos = property(_status_infos)
    DBInstance.address = property(_loopback_address)
    threading.Thread(target=_publish_replica_lag, name="rds-replica-lag", daemon=True).start()
