"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: the kernel sends SIGTERM to the child when its parent dies, even
    # if the parent is killed with SIGKILL, so no broker or service lingers.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own session (a terminal's Ctrl-C reaches only us).

    Output goes to ``log`` when given, else to our own stdout/stderr; ``user``
    runs it as another user (we must be root then).
    """
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            list(args),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            user=user,
        )
    finally:
        if out:
            out.close()


def stop(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM every process, wait up to ``timeout_s`` in all, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# Ports handed out by free_port in this process: a port is free until its
# service binds it, so the kernel may offer it again meanwhile (a fault run
# once gave the extractor and the embedder the same port).
_handed_out: collections.deque[int] = collections.deque(maxlen=256)


def free_port() -> int:
    """A TCP port nothing listens on right now and not handed out by an earlier
    call of this process (for tests and parallel runs)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.append(port)
            return port


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As servers bind (Kafka's included): connections of a previous run
        # still in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
