"""Starts moto's server with the fidelity layer (`tools/fidelity/`, see its docstring).

Usage: FIDELITY_STATE_DIR=DIR python tools/moto_fidelity_server.py -H 127.0.0.1 -p PORT
(the same arguments as moto_server; the test kit sets FIDELITY_STATE_DIR).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import fidelity  # noqa: E402
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    fidelity.install()
    sys.exit(main(sys.argv[1:]))
