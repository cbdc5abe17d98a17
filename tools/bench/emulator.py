"""Starts the moto emulator with the fidelity layer on a free loopback port, for the
benchmarks (the tests start theirs through tests/testkit)."""

import os
import socket
import subprocess
import tempfile
import time

from bench.runtime_api import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Emulator:
    def __init__(self, moto_python):
        self.port = free_port()
        self.state = tempfile.TemporaryDirectory(prefix="failover-bench-emulator-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [moto_python, os.path.join(ROOT, "tools/moto_fidelity_server.py"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "FIDELITY_STATE_DIR": self.state.name},
        )
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.state.cleanup()
