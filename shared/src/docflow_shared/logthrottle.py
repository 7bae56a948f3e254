"""Bounded logs while the same failure repeats.

A message that fails comes back at once (``AckPolicy.NACK_ON_ERROR``), and
during an outage it keeps coming back until the outage ends: logging each
failure with its traceback wrote millions of lines a minute. ``Repeats`` lets
the first few records of a kind through in each interval and counts the rest;
the next record of that kind says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# Records of one kind let through per interval, and the interval: a repeating
# failure then costs a few lines every ten seconds, not one per redelivery.
BURST = 3
INTERVAL_S = 10.0
# Kinds remembered at most (a kind is a logger, a level, a message template and
# an exception type; there are few of them in a program).
_KINDS = 1000


class Repeats(logging.Filter):
    """A logging filter: at most ``burst`` records of a kind per ``interval_s``
    (WARNING and above; quieter records always pass)."""

    def __init__(
        self,
        *,
        burst: int = BURST,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._burst = burst
        self._interval_s = interval_s
        self._clock = clock
        # kind -> (interval start, records in it, records left out since the last one logged)
        self._kinds: dict[tuple[object, ...], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc_type = record.exc_info[0] if record.exc_info else None
        kind = (record.name, record.levelno, str(record.msg), exc_type)
        now = self._clock()
        start, seen, left_out = self._kinds.get(kind, (now, 0, 0))
        if now - start >= self._interval_s:
            start, seen = now, 0
        if seen >= self._burst:
            self._kinds[kind] = (start, seen, left_out + 1)
            return False
        if len(self._kinds) >= _KINDS and kind not in self._kinds:
            self._kinds.clear()
        self._kinds[kind] = (start, seen + 1, 0)
        if left_out:
            record.msg = f"{record.getMessage()} ({left_out} more like this were not logged)"
            record.args = ()
        return True


def throttled(logger: logging.Logger) -> logging.Logger:
    """``logger``, with a ``Repeats`` filter (once, however often it is asked)."""
    if not any(isinstance(f, Repeats) for f in logger.filters):
        logger.addFilter(Repeats())
    return logger
