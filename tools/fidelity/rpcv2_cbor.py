"""The Smithy RPC v2 CBOR protocol, which current AWS SDKs use for CloudWatch.

AWS: CloudWatch answers `POST /service/GraniteServiceVersion20100801/operation/<Operation>`
with a CBOR body (header `smithy-protocol: rpc-v2-cbor`); the AWS SDK for Rust and botocore
use it by default. moto: only the query and JSON protocols, so the Rust SDK's GetMetricData
gets HTTP 404.

This module translates: the CBOR request becomes the same operation in the JSON protocol
(`X-Amz-Target`), moto answers it, and the answer (or error) goes back as CBOR, typed by the
operation's output shape from botocore's service model, so timestamps carry CBOR tag 1 and
numbers their declared types, as the protocol requires.
"""

import base64
import datetime
import io
import json
import re

import botocore.session
from botocore.parsers import BaseCBORParser
from botocore.serialize import CBORSerializer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

# Services whose SDKs speak RPC v2 CBOR, by the protocol's path prefix: (botocore name, target prefix).
SERVICES = {"GraniteServiceVersion20100801": ("cloudwatch", "GraniteServiceVersion20100801")}
_PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9]+)/operation/(?P<operation>[A-Za-z0-9]+)$")
_models = {}


def _model(service):
    if service not in _models:
        _models[service] = botocore.session.get_session().get_service_model(service)
    return _models[service]


class _Decoder(BaseCBORParser):
    def __init__(self):
        super().__init__(timestamp_parser=lambda value: datetime.datetime.fromtimestamp(value, datetime.timezone.utc))

    def decode(self, body: bytes):
        if not body:
            return {}
        return self.parse_data_item(self.get_peekable_stream_from_bytes(body))


class _Encoder(CBORSerializer):
    TIMESTAMP_FORMAT = "unixtimestamp"  # epoch seconds under CBOR tag 1, as RPC v2 requires

    def encode(self, value, shape) -> bytes:
        serialized = bytearray()
        self._serialize_data_item(serialized, value, shape)
        return bytes(serialized)


def _to_json(value):
    """CBOR's decoded values as the JSON protocol writes them (timestamps as epoch seconds)."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def _from_json(value, shape):
    """A JSON protocol answer as the CBOR encoder needs it, guided by the shape."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            name: _from_json(value[name], member) for name, member in shape.members.items() if value.get(name) is not None
        }
    if kind == "list":
        return [_from_json(item, shape.member) for item in value]
    if kind == "map":
        return {k: _from_json(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _translate(app, environ, start_response, service_name, target_prefix, operation):
    model = _model(service_name)
    try:
        operation_model = model.operation_model(operation)
    except Exception:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [f"unknown operation {operation}".encode()]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    request = json.dumps(_to_json(_Decoder().decode(body))).encode()
    inner = dict(environ)
    inner.update(
        {
            "PATH_INFO": "/",
            "CONTENT_TYPE": "application/x-amz-json-1.0",
            "CONTENT_LENGTH": str(len(request)),
            "HTTP_X_AMZ_TARGET": f"{target_prefix}.{operation}",
            "wsgi.input": io.BytesIO(request),
        }
    )
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    answer = b"".join(app(inner, capture))
    status = captured["status"]
    text = answer.decode() or "{}"
    payload = json.loads(text) if text.strip().startswith("{") else {"message": text}
    if status.startswith("2"):
        shape = operation_model.output_shape
        encoded = _Encoder().encode(_from_json(payload, shape), shape) if shape else b""
    else:
        code = str(payload.get("__type", "InternalFailure")).split("#")[-1]
        error = {"__type": code, "message": payload.get("message") or payload.get("Message") or ""}
        encoded = _encode_plain(error)
    start_response(
        status,
        [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(encoded))),
        ],
    )
    return [encoded]


def _encode_plain(error: dict) -> bytes:
    """An error document {__type, message}: a map of two strings."""
    encoder = _Encoder()
    serialized = bytearray(encoder._get_initial_byte(encoder.MAP_MAJOR_TYPE, len(error)))
    string = type("S", (), {"type_name": "string"})()
    for key, value in error.items():
        encoder._serialize_type_string(serialized, key, string, None)
        encoder._serialize_type_string(serialized, value, string, None)
    return bytes(serialized)


_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    match = _PATH.match(environ.get("PATH_INFO", ""))
    if match and match.group("service") in SERVICES and environ.get("REQUEST_METHOD") == "POST":
        service_name, target_prefix = SERVICES[match.group("service")]
        return _translate(
            lambda env, respond: _dispatch(self, env, respond),
            environ,
            start_response,
            service_name,
            target_prefix,
            match.group("operation"),
        )
    return _dispatch(self, environ, start_response)


def install():
    DomainDispatcherApplication.__call__ = _call
