"""``shutdown.exit_within``: after SIGTERM a process exits within its bound, even when
what it does on SIGTERM never finishes (a consumer waiting on a paused broker).
Each case is a real process that signals itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.unit

PROGRAM = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    from docflow_shared.shutdown import exit_within

    logging.basicConfig(level=logging.INFO)
    stopping = []
    # The server's own handler, installed first: it only asks the loop to stop.
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    exit_within(1.0, "test-service")
    os.kill(os.getpid(), signal.SIGTERM)
    assert stopping == [True], "the server's handler still runs"
    if sys.argv[1] == "hangs":
        time.sleep(60)  # a stop that never ends
    print("stopped by itself")
    """
)


def _run(mode: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=30
    )
    return done, time.monotonic() - started


def test_a_stop_that_hangs_is_cut_at_the_bound() -> None:
    done, took = _run("hangs")
    assert done.returncode == 1, done.stderr
    assert "did not stop within 1 s" in done.stderr
    assert "stopped by itself" not in done.stdout
    assert took < 20  # the program would sleep 60 s without the deadline


def test_a_stop_that_finishes_is_left_alone() -> None:
    done, _ = _run("finishes")
    assert done.returncode == 0, done.stderr
    assert "stopped by itself" in done.stdout
    assert "SIGTERM received; stopping (at most 1 s)" in done.stderr
