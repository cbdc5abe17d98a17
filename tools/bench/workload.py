"""The replicator benchmark's workloads: DynamoDB Streams events as Lambda delivers them
(NEW_AND_OLD_IMAGES, ~1 KB shop items, an INSERT/MODIFY/REMOVE mix with correct old
images), with the target's state before the batch and the state it must hold after.

A workload is sized by records (1,000) or by bytes (Lambda's 6 MB payload limit); a
`repeat` share of the records changes a key an earlier record of the same batch changed
(an order edited twice within a second), which is what coalescing is for.
"""

import json
import random
from dataclasses import dataclass, field

TABLE = "shop-data"
KEY_ATTRIBUTES = ("pk", "sk")
SOURCE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/shop-data/stream/2026-11-01T00:00:00.000"
# Lambda's limit for a synchronous payload, which is also the most an event source mapping
# delivers in one batch.
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
# A share of the keys a batch touches first that already existed before it (MODIFY/REMOVE).
PRE_EXISTING = 0.4
REMOVE_SHARE = 0.2
WORDS = ("cotton", "tote", "linen", "blue", "large", "gift", "wrap", "express", "returns", "fragile", "organic", "pack")


@dataclass
class Workload:
    name: str
    event_bytes: bytes
    records: int
    before: dict = field(repr=False)  # key -> item (DynamoDB JSON) in the target before the batch
    after: dict = field(repr=False)  # key -> item the target must hold afterwards
    keys_changed: int = 0  # distinct keys the batch changes: the writes after coalescing
    shares: dict = field(default_factory=dict)  # eventName -> records


def key_of(item):
    return tuple(item[name]["S"] for name in KEY_ATTRIBUTES)


def _item(rng, key_index, version):
    order, line = divmod(key_index, 4)
    note = " ".join(rng.choice(WORDS) for _ in range(95))  # ~650 bytes of free text
    return {
        "pk": {"S": f"ORDER#{10_000_000 + order:08d}"},
        "sk": {"S": f"ITEM#{line:02d}"},
        "sku": {"S": f"24-MB{key_index % 97:02d}"},
        "qty": {"N": str(1 + version % 5)},
        "price": {"N": f"{10 + key_index % 90}.{key_index % 100:02d}"},
        "status": {"S": ("pending", "paid", "shipped")[version % 3]},
        "updated_at": {"N": str(1_763_694_000_000 + version)},
        "gift": {"BOOL": version % 7 == 0},
        "tags": {"SS": sorted({rng.choice(WORDS) for _ in range(3)})},
        "shipping": {"M": {
            "street": {"S": f"{key_index % 300} Harbour Road"},
            "city": {"S": ("Leeds", "Porto", "Austin", "Osaka")[key_index % 4]},
            "zip": {"S": f"{key_index % 100_000:05d}"},
        }},
        "lines": {"L": [{"M": {"sku": {"S": f"24-MB{(key_index + i) % 97:02d}"}, "qty": {"N": str(i + 1)}}} for i in range(3)]},
        "note": {"S": note},
    }


def _record(seq, name, keys, new, old):
    image = {"ApproximateCreationDateTime": 1_763_694_000 + seq // 1000, "Keys": keys,
             "SequenceNumber": f"{100_000_000_000_000_000_000 + seq}", "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if new is not None:
        image["NewImage"] = new
    if old is not None:
        image["OldImage"] = old
    image["SizeBytes"] = len(json.dumps(new or {})) + len(json.dumps(old or {}))
    return {"eventID": f"{seq:032x}", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": image, "eventSourceARN": SOURCE_ARN}


def build(name, *, records=None, max_bytes=None, repeat=0.0, seed=23):
    """A workload of `records` records, or of as many as fit in `max_bytes` of event JSON."""
    rng = random.Random(seed)
    before, current, touched, chunks, shares = {}, {}, [], [], {}
    size = len(b'{"Records":[]}')
    next_key = 0
    while records is None or len(chunks) < records:
        seq = len(chunks)
        fresh = not touched or rng.random() >= repeat
        key_index = next_key if fresh else rng.choice(touched)
        old = current.get(key_index)
        pre_image = _item(rng, key_index, 0) if fresh and rng.random() < PRE_EXISTING else None
        old = pre_image or old
        if old is None:
            name_, new = "INSERT", _item(rng, key_index, seq + 1)
        elif rng.random() < REMOVE_SHARE:
            name_, new = "REMOVE", None
        else:
            name_, new = "MODIFY", _item(rng, key_index, seq + 1)
        keys = {n: (new or old)[n] for n in KEY_ATTRIBUTES}
        encoded = json.dumps(_record(seq, name_, keys, new, old), separators=(",", ":")).encode()
        if max_bytes is not None and size + len(encoded) + 1 > max_bytes:
            break
        size += len(encoded) + (1 if chunks else 0)
        chunks.append(encoded)
        shares[name_] = shares.get(name_, 0) + 1
        if fresh:
            next_key += 1
            touched.append(key_index)
        if pre_image is not None:
            before[key_of(pre_image)] = pre_image
        if new is None:
            current.pop(key_index, None)
        else:
            current[key_index] = new
    event = b'{"Records":[' + b",".join(chunks) + b"]}"
    after = {key_of(item): item for item in current.values()}
    return Workload(name, event, len(chunks), before, after, len(touched), shares)


def standard():
    """The benchmark's four workloads."""
    return [
        build("1000", records=1000),
        build("1000-repeated", records=1000, repeat=0.5),
        build("6mb", max_bytes=LAMBDA_PAYLOAD_LIMIT),
        build("6mb-repeated", max_bytes=LAMBDA_PAYLOAD_LIMIT, repeat=0.5),
    ]
