"""DynamoDB refuses a write whose item has an index key attribute of the wrong type.

AWS: an item written to a table whose global (or local) secondary index has attribute A as
a key must carry A with the index's declared type, or not at all; otherwise PutItem fails
with ValidationException "One or more parameter values were invalid: Type mismatch for
Index Key A Expected: S Actual: N IndexName: ...", and a BatchWriteItem holding such an
item is refused as a whole, nothing written (the API reference: an invalid request is
rejected before any of it is applied).

moto checks only for a NULL index key, only in PutItem, and BatchWriteItem writes its items
one by one, so an invalid item in the middle leaves the ones before it written. Here both
operations check every put item's index keys first, as AWS does. The stream-replicator's
poison-record isolation depends on this.
"""

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler


def _check_index_keys(table, item):
    declared = {d["AttributeName"]: d["AttributeType"] for d in (table.attr or [])}
    for index in list(table.global_indexes) + list(table.indexes):
        for key in index.schema:
            name = key["AttributeName"]
            if name not in item or name not in declared:
                continue
            actual = next(iter(item[name].keys()))
            if actual != declared[name]:
                raise MockValidationException(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {declared[name]} Actual: {actual} IndexName: {index.name}"
                )


def install():
    original_put = DynamoDBBackend.put_item

    def put_item(self, table_name, item_attrs, *args, **kwargs):
        _check_index_keys(self.get_table(table_name), item_attrs)
        return original_put(self, table_name, item_attrs, *args, **kwargs)

    original_batch = DynamoHandler.batch_write_item

    def batch_write_item(self):
        for table_name, requests in self.body.get("RequestItems", {}).items():
            table = self.dynamodb_backend.get_table(table_name)
            for request in requests:
                put = request.get("PutRequest")
                if put is not None:
                    _check_index_keys(table, put.get("Item", {}))
        return original_batch(self)

    DynamoDBBackend.put_item = put_item
    DynamoHandler.batch_write_item = batch_write_item
