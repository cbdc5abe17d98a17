"""Where the fidelity layer keeps its files: `FIDELITY_STATE_DIR`.

The test kit creates the directory for each emulator it starts and removes it when that
emulator's process is gone. Inside it:

- `nodes/<instance-id>/root/`: the file tree of a managed node (the fixture writes it); the
  node's agent runs documents inside it.
- `nodes/<instance-id>/offline`: present while the node's agent is not connected.
- `mariadb/<n>/`: the data directory, socket and log of each MariaDB server.
- `lambda-functions/<name>`: "URL BINARY", the `cargo lambda watch` and binary serving the
  function registered as `<name>` (written by the test kit).
"""

import os
import pathlib


def state_dir() -> pathlib.Path:
    value = os.environ.get("FIDELITY_STATE_DIR")
    if not value:
        raise RuntimeError(
            "FIDELITY_STATE_DIR is not set: start the emulator through the test kit "
            "(tests/testkit/src/emulator.rs), which creates it"
        )
    path = pathlib.Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def subdir(name: str) -> pathlib.Path:
    path = state_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
