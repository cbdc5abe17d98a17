"""Child processes that die with the emulator.

Each child is started with PR_SET_PDEATHSIG = SIGKILL. Linux sends that signal when the
*thread* that forked the child exits, and moto's server answers every request on a thread
of its own that ends with the request; so every child is forked by one keeper thread that
lives as long as the process. When the emulator ends for any reason, its children end too.
"""

import ctypes
import queue
import signal
import subprocess
import threading

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_requests: "queue.Queue" = queue.Queue()
_started = threading.Lock()
_thread = None


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve():
    while True:
        args, kwargs, reply = _requests.get()
        try:
            reply.put((subprocess.Popen(*args, preexec_fn=_die_with_parent, **kwargs), None))
        except BaseException as error:  # handed to the caller's thread
            reply.put((None, error))


def popen(*args, **kwargs) -> subprocess.Popen:
    """`subprocess.Popen`, forked by the keeper thread with the parent-death signal set."""
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(target=_serve, name="fidelity-keeper", daemon=True)
            _thread.start()
    reply: "queue.Queue" = queue.Queue(maxsize=1)
    _requests.put((args, kwargs, reply))
    process, error = reply.get()
    if error is not None:
        raise error
    return process
