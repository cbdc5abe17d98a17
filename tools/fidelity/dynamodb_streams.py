"""A DynamoDB stream keeps its records, whoever reads it.

AWS: a stream record stays in its shard for 24 hours, with a sequence number that only
grows; Lambda's event source mappings poll the stream asynchronously, each from its own
position, and a disabled mapping reads nothing and keeps its place (DynamoDB developer
guide, "Change data capture for DynamoDB Streams"; Lambda developer guide, "Using AWS
Lambda with Amazon DynamoDB").

moto: every write invokes the function of every mapping on the table synchronously,
enabled or not, and once an invocation answers it empties the shard, so later readers
(a second consumer, a drain check, a replay after a failover) see nothing, and the next
records reuse the sequence numbers of the dropped ones. Here a write only appends its
record, with the next sequence number; delivering to functions is the poller's job (the
tests' `StreamPump`, which honours the mapping's state). The failback drain check and the
reverse replicator depend on this.
"""

from moto.dynamodb.models.table import StreamRecord, StreamShard


def _add(self, old, new):
    view = self.table.stream_specification["StreamViewType"]
    if old is None:
        event_name = "INSERT"
    elif new is None:
        event_name = "REMOVE"
    else:
        event_name = "MODIFY"
    sequence = self.starting_sequence_number + len(self.items)
    self.items.append(StreamRecord(self.table, view, event_name, old, new, sequence))


def install():
    StreamShard.add = _add
