"""Starts moto's server with one fidelity patch for a documented gap.

moto's PromoteReadReplica leaves ReadReplicaSourceDBInstanceIdentifier set, so a promoted
instance still looks like a replica forever and code that correctly waits for the source
to be cleared (as real AWS does) could never finish. This patch detaches the promoted
instance from its source, as RDS does. Every other gap is left as it is (a second promote
still succeeds silently; tests must not rely on AWS refusing it), and real AWS semantics
are pinned with aws-smithy-mocks in the Rust tests.

Usage: python fidelity_server.py -H 127.0.0.1 -p PORT   (same arguments as moto_server)
"""

import sys

from moto.rds.models import RDSBackend
from moto.server import main

_promote = RDSBackend.promote_read_replica


def _promote_and_detach(self, db_kwargs):
    database = self.databases[db_kwargs["db_instance_identifier"]]
    source_id = database.source_db_instance_identifier if database.is_replica else None
    result = _promote(self, db_kwargs)
    if source_id:
        database.source_db_instance_identifier = None
        try:
            source = self.find_db_from_id(source_id)
        except Exception:  # the source may be gone (deleted, or its region lost)
            source = None
        if source is not None:
            for name in (database.db_instance_arn, database.db_instance_identifier):
                if name in source.replicas:
                    source.replicas.remove(name)
    return result


RDSBackend.promote_read_replica = _promote_and_detach

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
