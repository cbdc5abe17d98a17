"""Starts moto's server with four fidelity patches.

1. moto's PromoteReadReplica leaves ReadReplicaSourceDBInstanceIdentifier set, so a promoted
instance still looks like a replica forever and code that correctly waits for the source
to be cleared (as real AWS does) could never finish. This patch detaches the promoted
instance from its source, as RDS does. Every other gap is left as it is (a second promote
still succeeds silently; tests must not rely on AWS refusing it), and real AWS semantics
are pinned with aws-smithy-mocks in the Rust tests.

2. moto does not implement SSM DescribeInstanceInformation (HTTP 500). Here it answers
for the region's running EC2 instances, which moto's SSM treats as managed (SendCommand
runs on them), as Online EC2Instance nodes, honouring `tag:<key>` filters and
pagination, as SSM does.

3. moto keeps the Content of an AWS::SSM::Document created by CloudFormation as the parsed
object, so GetDocument returns its Python repr and DescribeDocument fails (HTTP 500). Here
such content is stored as JSON (or YAML) text, as SSM stores every document.

4. DynamoDB evaluates a write's condition and applies the write atomically. moto serves
requests on threads and checks the condition, then writes, with no lock: under load two
conditional writes of one key (a lock taken with attribute_not_exists) can both succeed.
Here every DynamoDB write runs under one lock, so conditions hold as they do in AWS.

Usage: python tools/moto_fidelity_server.py -H 127.0.0.1 -p PORT   (same arguments as moto_server)
"""

import functools
import json
import sys
import threading

import yaml

from moto.dynamodb.models import DynamoDBBackend
from moto.ec2.models import ec2_backends
from moto.rds.models import RDSBackend
from moto.server import main
from moto.ssm.models import Document
from moto.ssm.responses import SimpleSystemManagerResponse

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


def _describe_instance_information(self):
    filters = self._get_param("Filters") or []
    wanted = {f["Key"][4:]: set(f.get("Values", [])) for f in filters if f.get("Key", "").startswith("tag:")}
    backend = ec2_backends[self.current_account][self.region]
    nodes = []
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if instance.state != "running":
                continue
            tags = {t["key"]: t["value"] for t in instance.get_tags()}
            if all(tags.get(key) in values for key, values in wanted.items()):
                nodes.append(
                    {
                        "InstanceId": instance.id,
                        "PingStatus": "Online",
                        "ResourceType": "EC2Instance",
                        "PlatformType": "Linux",
                        "PlatformName": "Amazon Linux",
                        "AgentVersion": "3.3.1142.0",
                        "IPAddress": instance.private_ip,
                        "ComputerName": instance.id,
                    }
                )
    nodes.sort(key=lambda n: n["InstanceId"])
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or 50)
    page = {"InstanceInformationList": nodes[start : start + size]}
    if start + size < len(nodes):
        page["NextToken"] = str(start + size)
    return json.dumps(page)


SimpleSystemManagerResponse.describe_instance_information = _describe_instance_information

_document_init = Document.__init__


def _document_init_with_text(self, account_id, name, version_name, content, document_type, document_format, *args, **kwargs):
    if isinstance(content, dict):
        content = yaml.safe_dump(content) if document_format == "YAML" else json.dumps(content)
    _document_init(self, account_id, name, version_name, content, document_type, document_format, *args, **kwargs)


Document.__init__ = _document_init_with_text

_dynamodb_writes = threading.RLock()


def _atomic(write):
    @functools.wraps(write)
    def locked(*args, **kwargs):
        with _dynamodb_writes:
            return write(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
