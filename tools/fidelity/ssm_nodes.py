"""Managed nodes: which EC2 instances the emulator's SSM agent serves, and
DescribeInstanceInformation over them (moto has no such API).

A running instance is a managed node when the test kit gave it a file tree,
`FIDELITY_STATE_DIR/nodes/<id>/root`, and is ConnectionLost while `nodes/<id>/offline` exists.
"""

import datetime
import pathlib

from moto.ec2.models import ec2_backends
from moto.ssm.exceptions import InvalidFilterKey, ValidationException

from . import state
from .ssm_errors import InvalidNextToken

AGENT_VERSION = "3.3.1142.0"



def node_dir(instance_id: str) -> pathlib.Path:
    """Where the test kit keeps one node: `root/` (its file tree) and `offline`."""
    return state.state_dir() / "nodes" / instance_id


def is_online(instance_id: str) -> bool:
    return not (node_dir(instance_id) / "offline").exists()


def running_instances(account_id: str, region: str):
    backend = ec2_backends[account_id][region]
    # Snapshots: tests launch instances in other threads of the server meanwhile, and
    # iterating moto's live OrderedDict then fails ("mutated during iteration"), which the
    # caller would see as a 500 with an HTML body. list() copies in one step under the GIL.
    for reservation in list(backend.reservations.values()):
        for instance in list(reservation.instances):
            if instance.state == "running":
                yield instance


def managed_nodes(account_id: str, region: str) -> dict:
    """Running instances whose node root exists: the only ones SSM knows, as with a real agent."""
    return {
        instance.id: instance
        for instance in running_instances(account_id, region)
        if (node_dir(instance.id) / "root").is_dir()
    }


def instance_tags(instance) -> dict:
    return {t["key"]: t["value"] for t in instance.get_tags()}


def _node_information(instance) -> dict:
    online = is_online(instance.id)
    if online:
        last_ping = datetime.datetime.now(datetime.timezone.utc)
    else:
        marker = node_dir(instance.id) / "offline"
        try:
            last_ping = datetime.datetime.fromtimestamp(marker.stat().st_mtime, datetime.timezone.utc)
        except OSError:
            last_ping = datetime.datetime.now(datetime.timezone.utc)
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online" if online else "ConnectionLost",
        "LastPingDateTime": last_ping,
        "AgentVersion": AGENT_VERSION,
        "IsLatestVersion": False,
        "PlatformType": "Linux",
        "PlatformName": "Amazon Linux",
        "PlatformVersion": "2",
        "ResourceType": "EC2Instance",
        "IPAddress": instance.private_ip,
        "ComputerName": instance.id,
    }


_NODE_FILTER_FIELDS = {
    "InstanceIds": "InstanceId",
    "AgentVersion": "AgentVersion",
    "PingStatus": "PingStatus",
    "PlatformTypes": "PlatformType",
    "ResourceType": "ResourceType",
}


def describe_instance_information(backend, filters, filter_list, max_results, next_token):
    """DescribeInstanceInformation: the region's managed nodes, filtered and paginated as SSM does."""
    if max_results is not None and not 5 <= int(max_results) <= 50:
        raise ValidationException(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
            "constraint: Member must have value between 5 and 50"
        )
    checks = []
    for item in list(filters or []) + list(filter_list or []):
        key = item.get("Key") or item.get("key") or ""
        values = set(item.get("Values") or item.get("valueSet") or [])
        if key.startswith("tag:"):
            checks.append(lambda info, tags, k=key[4:], v=values: tags.get(k) in v)
        elif key == "tag-key":
            checks.append(lambda info, tags, v=values: bool(v & set(tags)))
        elif key in _NODE_FILTER_FIELDS:
            checks.append(lambda info, tags, f=_NODE_FILTER_FIELDS[key], v=values: info.get(f) in v)
        else:
            raise InvalidFilterKey(f"The specified filter key is not valid: {key}")
    nodes = []
    for instance in managed_nodes(backend.account_id, backend.region_name).values():
        info, tags = _node_information(instance), instance_tags(instance)
        if all(check(info, tags) for check in checks):
            nodes.append(info)
    nodes.sort(key=lambda n: n["InstanceId"])
    page, token = paginate(nodes, max_results or 50, next_token)
    result = {"InstanceInformationList": page}
    if token:
        result["NextToken"] = token
    return result


def paginate(items, size, next_token):
    start = 0
    if next_token:
        try:
            start = int(next_token)
        except ValueError:
            raise InvalidNextToken("The specified token is not valid.")
    size = int(size)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)

