"""The Lambda Runtime API, served on loopback, so a benchmark runs a function's process the
way Lambda does: the process asks for the next event and posts its answer."""

import json
import queue
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER_TIMEOUT_SECONDS = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    """VmHWM, the process's peak resident set, in MB (NaN once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


class RuntimeApi:
    """Hands out queued events, records answers with timestamps."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.first_next = None
        self.sent_at = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # see bench/target.py
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if api.first_next is None:
                    api.first_next = time.monotonic()
                try:
                    request_id, payload = api.events.get(timeout=ANSWER_TIMEOUT_SECONDS)
                except queue.Empty:
                    self.send_error(504)
                    return
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 120_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-west-2:123456789012:function:bench")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                api.sent_at = time.monotonic()
                self.wfile.write(payload)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                kind = "error" if self.path.endswith("/error") else "response"
                api.answers.put((kind, time.monotonic(), body.decode(errors="replace")))

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def wait_for_first_request(self, process, seconds=30):
        """Seconds from now until the process asked for its first event, or None."""
        started = time.monotonic()
        while self.first_next is None and process.poll() is None and time.monotonic() - started < seconds:
            time.sleep(0.0005)
        return self.first_next

    def invoke(self, event):
        """(kind, milliseconds from the event leaving to the answer, answer body). `event`
        is a dict or already serialized bytes (a large event is serialized once)."""
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        self.events.put((str(uuid.uuid4()), payload))
        kind, answered_at, body = self.answers.get(timeout=ANSWER_TIMEOUT_SECONDS)
        return kind, (answered_at - self.sent_at) * 1000, body

    def close(self):
        self.server.shutdown()
        self.server.server_close()
