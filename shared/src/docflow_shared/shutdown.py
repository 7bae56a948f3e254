"""Stopping within a bound, whatever Kafka is doing.

On SIGTERM (or Ctrl-C) a service stops taking messages, gives in-flight
handlers ``graceful_s`` to finish (their messages are then committed), and
closes its clients. Most of the time that takes well under a second. But a
broker that does not answer (paused, partitioned) makes a consumer's
LeaveGroup wait for its request timeout, and a handler waiting for an
acknowledgement or a producer flushing an idempotent batch waits for as long
as the broker is away. A process that must be gone before Kubernetes'
``terminationGracePeriodSeconds`` cannot wait for that.

``exit_within`` adds a deadline: once the signal came, the process has
``seconds`` to exit by itself; past that it exits at once (status 1), with a
log line saying so. Nothing is half-written by that: offsets of unfinished
messages were not committed, so Kafka hands those messages to the next
consumer (handlers are idempotent); SQLite and Qdrant writes are each atomic.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, TypeVar

from fastapi import FastAPI
from faststream.asgi import AsgiFastStream

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)

App = TypeVar("App", FastAPI, AsgiFastStream)


def bounded(app: App, seconds: float, service: str) -> App:
    """``app``, which once started under a server arms ``exit_within(seconds)``.

    For a service's own process (its ``__main__``), not for apps that tests
    start inside their own process.
    """
    if isinstance(app, AsgiFastStream):

        async def arm() -> None:  # async: FastStream runs a sync hook in a worker thread
            exit_within(seconds, service)

        app.on_startup(arm)
        return app
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[Any]:
        exit_within(seconds, service)
        async with inner(running) as state:
            yield state

    app.router.lifespan_context = lifespan
    return app


def exit_within(seconds: float, service: str) -> None:
    """From now on, SIGTERM or SIGINT leaves the process ``seconds`` to exit.

    Call it from the main thread once the server has installed its own signal
    handlers (in a lifespan's start-up): they still run, after the deadline
    is armed.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal handlers can only be set from the main thread")
    deadline = _Deadline(seconds, service)
    for sig in SIGNALS:
        previous = signal.getsignal(sig)

        def chained(signum: int, frame: FrameType | None, previous: object = previous) -> None:
            deadline.arm(signal.Signals(signum).name)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, chained)


class _Deadline:
    def __init__(self, seconds: float, service: str) -> None:
        self.seconds = seconds
        self.service = service
        self._timer: threading.Timer | None = None

    def arm(self, signal_name: str) -> None:
        if self._timer is not None:
            return
        logger.info(
            "%s: %s received; stopping (at most %g s)", self.service, signal_name, self.seconds
        )
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        logger.error(
            "%s: did not stop within %g s (Kafka not answering?); exiting now. Messages "
            "it had not finished were not committed and will be delivered again.",
            self.service,
            self.seconds,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)
