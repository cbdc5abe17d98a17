"""DynamoDB evaluates a write's condition and applies the write atomically.

moto serves requests on threads and checks the condition, then writes, with no lock: under
load two conditional writes of one key (a lock taken with attribute_not_exists) can both
succeed. Here every DynamoDB write runs under one lock, so conditions hold as they do in AWS.
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend

_writes = threading.RLock()


def _atomic(write):
    @functools.wraps(write)
    def locked(*args, **kwargs):
        with _writes:
            return write(*args, **kwargs)

    return locked


def install():
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
