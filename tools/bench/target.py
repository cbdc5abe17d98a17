"""A loopback DynamoDB target for the replicator benchmark: it answers BatchWriteItem (and
DescribeTable, for a replicator not told its key schema) after a configurable delay, the
latency a real table in another region adds, and counts every request.

It enforces what DynamoDB enforces for the calls made (at most 25 requests per call, no
key twice in one call: ValidationException), so a client that breaks those rules fails
here as it would in AWS. Every call is answered with the CRC32 header DynamoDB sends.
`drop_every` (test-only) acknowledges every Nth put without storing it, so the benchmark's
equality check can be shown to fail.
"""

import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.runtime_api import free_port
from bench.workload import KEY_ATTRIBUTES, TABLE, key_of

MAX_REQUESTS_PER_CALL = 25


class LoopbackTable:
    def __init__(self, delay_ms=0, drop_every=0):
        self.delay = delay_ms / 1000
        self.drop_every = drop_every
        self.lock = threading.Lock()
        self.items = {}
        self.counts = {}
        self.puts_seen = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as DynamoDB's endpoints
            # Headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK hold each answer ~40 ms, a latency no real endpoint adds.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                with target.lock:
                    target.counts[operation] = target.counts.get(operation, 0) + 1
                time.sleep(target.delay)
                try:
                    request = json.loads(body or b"{}")
                    if operation == "BatchWriteItem":
                        status, answer = target._batch_write(request)
                    elif operation == "DescribeTable":
                        status, answer = target._describe(request)
                    else:
                        status, answer = 400, _error("UnknownOperationException", f"{operation} is not served here")
                except (ValueError, KeyError, TypeError) as e:
                    status, answer = 400, _error("ValidationException", f"malformed request: {e}")
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amz-crc32", str(zlib.crc32(payload)))
                self.send_header("x-amzn-RequestId", f"bench-{time.monotonic_ns()}")
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, items):
        """The table holds exactly `items` (key -> item); the counters start at zero."""
        with self.lock:
            self.items = dict(items)
            self.counts = {}

    def snapshot(self):
        with self.lock:
            return dict(self.items), dict(self.counts)

    def _batch_write(self, request):
        writes = request["RequestItems"].get(TABLE)
        if not writes or len(request["RequestItems"]) != 1:
            return 400, _error("ValidationException", f"RequestItems must name only {TABLE}")
        if len(writes) > MAX_REQUESTS_PER_CALL:
            return 400, _error("ValidationException", "Too many items requested for the BatchWriteItem call")
        keys = [key_of(w["PutRequest"]["Item"]) if "PutRequest" in w else key_of(w["DeleteRequest"]["Key"]) for w in writes]
        if len(set(keys)) != len(keys):
            return 400, _error("ValidationException", "Provided list of item keys contains duplicates")
        with self.lock:
            for key, write in zip(keys, writes):
                if "PutRequest" in write:
                    self.puts_seen += 1
                    if self.drop_every and self.puts_seen % self.drop_every == 0:
                        continue
                    self.items[key] = write["PutRequest"]["Item"]
                else:
                    self.items.pop(key, None)
        return 200, {"UnprocessedItems": {}}

    def _describe(self, request):
        if request.get("TableName") != TABLE:
            return 400, _error("ResourceNotFoundException", f"Requested resource not found: Table: {request.get('TableName')} not found")
        return 200, {"Table": {
            "TableName": TABLE, "TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": KEY_ATTRIBUTES[0], "KeyType": "HASH"}, {"AttributeName": KEY_ATTRIBUTES[1], "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in KEY_ATTRIBUTES],
            "TableArn": f"arn:aws:dynamodb:us-west-2:123456789012:table/{TABLE}",
        }}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _error(code, message):
    return {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
