"""Consuming a batch (what one poll returned) one message at a time where it matters.

A batch subscriber gets many messages at once, and is committed (or rewound)
as a whole. Two things must not stop the others in the batch, and are decided
here, once, not in each consumer:

* a message that cannot be read (not JSON, not the event the topic carries):
  it goes to ``on_invalid`` (dead-lettered, or its document failed), and the
  consumer never sees it. Redelivering it would bring it back forever.
* with ``on_failed``: one document that cannot be handled. When handling the
  whole batch raises, each item is handled again alone, and only those that
  fail alone go to ``on_failed``; the others go on. Without ``on_failed`` the
  error propagates: nothing of the batch is committed and it comes back (for a
  consumer whose failure is mostly not one message's, like a database outage).
* with ``poison`` (and no ``on_failed``): a message that fails on its own and
  for a reason that is not an outage (a value the database refuses). The
  batch still comes back, but is then handled one message at a time, and a
  message that failed alone more than ``DOCFLOW_MAX_REDELIVERIES`` times in a
  row goes to ``poison.on_poison`` (the dead-letter topic); the others go on.

The consumer's ``handle`` gets the readable items; it may return some of them
with the exception each failed with on its own (a chunk batch whose earlier
chunks are missing), which go to ``on_failed`` too once the batch is done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from docflow_shared import decoding
from docflow_shared.logthrottle import throttled
from docflow_shared.redeliveries import Redeliveries
from docflow_shared.retries import Origin, Parking, is_transient

if TYPE_CHECKING:
    from faststream.message import StreamMessage

# A failure that repeats (redeliveries, an outage) is logged a few times, then counted.
logger = throttled(logging.getLogger(__name__))

E = TypeVar("E")


@dataclass(frozen=True)
class Item(Generic[E]):
    """One readable message of a batch: its body, its event, where it was read."""

    body: bytes
    event: E
    # None where the records are not known (a test double of a message).
    origin: Origin | None


Failures = Sequence[tuple[Item[E], Exception]]
"""Items that failed on their own, each with why."""

Handle = Callable[[list[Item[E]]], Awaitable[Failures[E] | None]]
"""The consumer's work on readable items; returns those that failed on their own."""

OnFailed = Callable[[Item[E], Exception], Awaitable[object]]
"""What becomes of an item that failed on its own."""

OnInvalid = Callable[[bytes, ValueError, Origin | None], Awaitable[object]]
"""What becomes of a message that cannot be read: its body, the error (a pydantic
``ValidationError`` or ``decoding.Unreadable``), its origin."""


@dataclass(frozen=True)
class Poison(Generic[E]):
    """For a consumer without ``on_failed``: when one message of a batch keeps failing
    on its own, after how many redeliveries it is given up and what becomes of it."""

    redeliveries: Redeliveries
    on_poison: OnFailed[E]
    # Errors that say a dependency is unavailable: waited out, never counted.
    outage: Callable[[BaseException], bool] = is_transient


def messages(message: StreamMessage[Any]) -> list[tuple[bytes, Origin | None]]:
    """Each body of a batch message with where it was read (None for every body
    when the records do not match the bodies)."""
    bodies: list[bytes] = list(message.body)  # type: ignore[arg-type]  # a batch: a list
    records = message.raw_message if isinstance(message.raw_message, tuple) else ()
    if len(records) != len(bodies):
        return [(body, None) for body in bodies]
    return [(body, Origin.of_record(record)) for body, record in zip(bodies, records, strict=True)]


async def read_batch(
    message: StreamMessage[Any], parse: Callable[[bytes], E], *, on_invalid: OnInvalid
) -> list[Item[E]]:
    """The readable messages of a batch, in order; each unreadable one is handed
    to ``on_invalid`` (in order too) and left out."""
    items: list[Item[E]] = []
    for body, origin in messages(message):
        try:
            items.append(Item(body, decoding.read(parse, body), origin))
        except ValueError as exc:
            await on_invalid(body, exc, origin)
    return items


async def handle_batch(
    message: StreamMessage[Any],
    parse: Callable[[bytes], E],
    handle: Handle[E],
    *,
    on_invalid: OnInvalid,
    on_failed: OnFailed[E] | None = None,
    poison: Poison[E] | None = None,
) -> None:
    """Read a batch (``read_batch``) and hand its readable items to ``handle``.

    With ``on_failed``, an error of ``handle`` on several items makes it handle
    each alone; an item that fails alone (or the only item) goes to
    ``on_failed``, as do the failures ``handle`` returns. Without it, an error
    of ``handle`` propagates (the batch comes back), and ``handle`` must
    return no failures; with ``poison``, an error that is not an outage makes
    it handle each item alone (``handle_alone``). An error of ``on_invalid``,
    ``on_failed`` or ``on_poison`` (the failure could not be recorded) always
    propagates.
    """
    items = await read_batch(message, parse, on_invalid=on_invalid)
    if on_failed is None:
        try:
            returned = await handle(items)
        except Exception as exc:
            if poison is None or poison.outage(exc):
                raise
            await handle_alone(items, handle, poison, exc)
            return
        if returned:
            raise TypeError("handle returned failures, but there is no on_failed")
        return
    try:
        failures = list(await handle(items) or ())
    except Exception as exc:
        if len(items) == 1:
            await on_failed(items[0], exc)
            return
        # One document's problem must not fail the others: each alone.
        logger.warning(
            "a batch of %s messages failed (%s); handling them one by one", len(items), exc
        )
        failures = []
        for item in items:
            try:
                failures += await handle([item]) or ()
            except Exception as one:
                await on_failed(item, one)
    for item, error in failures:
        await on_failed(item, error)


async def handle_alone(
    items: list[Item[E]], handle: Handle[E], poison: Poison[E], exc: Exception
) -> None:
    """Handle each item alone after the batch failed with ``exc``. An item that fails
    alone is counted: the error propagates (the rest of the batch comes back) until
    the item has come back ``poison.redeliveries.limit`` times, then it goes to
    ``poison.on_poison`` and the others go on. Outages always propagate."""
    if len(items) > 1:
        logger.warning(
            "a batch of %s messages failed (%s); handling them one by one", len(items), exc
        )
    for item in items:
        try:
            if len(items) > 1:
                await handle([item])
            else:
                raise exc
        except Exception as one:
            if (
                poison.outage(one)
                or item.origin is None
                or not poison.redeliveries.exhausted(item.origin)
            ):
                raise
            await poison.on_poison(item, one)
        poison.redeliveries.forget(item.origin)


def dead_letter(parking: Parking | None, stage: str) -> OnInvalid:
    """An ``on_invalid`` that logs the message loudly and keeps it on the dead-letter
    topic (without ``parking``, only logs it: it is skipped)."""

    async def on_invalid(body: bytes, exc: ValueError, origin: Origin | None) -> None:
        logger.error(
            "unreadable message %s[%s]@%s: %s",
            origin.topic if origin is not None else "?",
            origin.partition if origin is not None else "?",
            origin.offset if origin is not None else "?",
            exc,
        )
        if parking is not None:
            await parking.dead_letter(body, origin, f"unreadable message: {exc}"[:500], stage)

    return on_invalid
