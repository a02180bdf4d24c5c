"""Processes that tests and benchmarks start: waited for by a deadline, always stopped.

Each process gets a session (process group) of its own, so stopping it stops its children
too (gunicorn's workers). Every process started here is remembered until it is stopped;
`stop_all()` (run by conftest at the end of the session, and at exit) stops whatever a
failed fixture or an interrupted test left behind.
"""
import atexit
import os
import signal
import socket
import subprocess
import time

import requests

_LIVE = set()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, seconds, what, process=None, pause=0.1):
    """Call check() until it returns a true value, for at most `seconds` in all.

    Any exception from check() counts as "not yet" (a refused connection, a read timeout on
    a busy machine); if `process` exits meanwhile, waiting stops at once.
    """
    deadline = time.monotonic() + seconds
    last = None
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}"
                               f"{_tail(process)}")
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not up yet; remember why for the final message
            last = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not ready after {seconds} s (last error: {last!r})")
        time.sleep(pause)


def http_ok(url, status_below=300):
    """A check for wait_for: url answers with a status under status_below."""
    def check():
        remaining = 5  # one request's own timeout; the deadline is wait_for's
        return requests.get(url, timeout=remaining).status_code < status_below
    return check


def _tail(process):
    stderr = getattr(process, "stderr", None)
    if stderr is None or stderr.closed:
        return ""
    try:
        os.set_blocking(stderr.fileno(), False)
        text = (stderr.read() or b"").decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return f"; stderr:\n{text[-4000:]}" if text else ""


def start(command, env=None, cwd=None, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE):
    """Start a command in a process group of its own; it is stopped by stop() or stop_all()."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=stderr,
                               start_new_session=True)
    _LIVE.add(process)
    return process


def stop(process, seconds=15, sig=signal.SIGTERM):
    """Stop a process and its group: `sig`, then SIGKILL after `seconds`. Never raises."""
    try:
        _signal_group(process, sig)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=seconds)
        # Workers that outlived their master (kill -9 of the master) still hold the group.
        _signal_group(process, signal.SIGKILL)
    finally:
        _LIVE.discard(process)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def kill(process):
    """kill -9 the process and every process of its group at once, as a crash would."""
    stop(process, sig=signal.SIGKILL)


def _signal_group(process, sig):
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all():
    """Stop every process started here that is still running."""
    for process in list(_LIVE):
        stop(process, seconds=5)


atexit.register(stop_all)
