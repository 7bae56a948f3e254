"""What an HTTP request must pass before a route sees it (issue 20, finding 5).

FastAPI reads and parses a JSON body before any dependency runs, so a check in
a dependency comes too late: an anonymous 300 MiB body to ``/v1/reindex`` was
read whole, parsed, and answered 422, and the gateway's memory grew by 640
MiB. ``RequestGuard`` is ASGI middleware in front of the routes: it
authenticates the caller from the headers alone, and only then reads the body,
at most ``max_body_bytes`` of it (413 beyond). The upload route streams its
body and counts the bytes of each file itself (``multipart.py``), so it is
left out of the body limit (``streamed_bodies``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docflow_shared.auth import Authenticator, UnknownKeyError
from docflow_shared.problems import Problem, client_closed, problem_response

# Every API route is under /v1/ and needs the caller's tenant; the page,
# /docs, /openapi.json and the probes are public.
API_PREFIX = "/v1/"
# Where the guard leaves the tenant it found, for the ``Tenant`` dependency.
TENANT_KEY = "docflow.tenant"


def tenant_of(authenticator: Authenticator, headers: Mapping[str, str]) -> str:
    """The caller's tenant from its key (``Authorization: Bearer`` or ``X-API-Key``);
    a 401 problem when authentication is on and a key sent is unknown, or none is."""
    # A credential sent malformed or empty counts as sent (and wrong), never as absent.
    presented = []
    if "x-api-key" in headers:
        presented.append(headers["x-api-key"].strip())
    if "authorization" in headers:
        presented.append(_bearer_key(headers["authorization"]))
    try:
        if not presented:
            return authenticator.tenant_for(None)
        tenants = {authenticator.tenant_for(key) for key in presented}
    except UnknownKeyError as exc:
        raise unauthorized(f"{exc}") from exc
    if len(tenants) > 1:
        raise unauthorized("the API keys sent belong to different tenants")
    return tenants.pop()


def _bearer_key(authorization: str) -> str:
    """The key of ``Bearer <key>``; any other scheme yields no usable key."""
    scheme, _, credentials = authorization.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def unauthorized(reason: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        f"{reason}: send your API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        headers={"WWW-Authenticate": "Bearer"},
    )


class RequestGuard:
    """ASGI middleware: authenticate from the headers, then read at most
    ``max_body_bytes`` of the body, before the app sees the request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        max_body_bytes: int,
        streamed_bodies: Collection[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes
        # (method, path) of the routes that read their body as a stream.
        self.streamed_bodies = frozenset(streamed_bodies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        # A CORS preflight carries no credentials (the CORS middleware answers it).
        if scope["type"] != "http" or not path.startswith(API_PREFIX) or _preflight(scope):
            await self.app(scope, receive, send)
            return
        receive, send = _closing_if_unread(scope, receive, send)
        try:
            scope[TENANT_KEY] = tenant_of(self.authenticator, Headers(scope=scope))
            if (scope["method"], path) in self.streamed_bodies:
                await self.app(scope, receive, send)
                return
            body = await self._body(scope, receive)
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)
            return
        if body is None:
            # The client left before sending its body: the answer goes nowhere,
            # but the request is counted as the client's doing, not a 5xx.
            await problem_response(client_closed(), path)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return _text(b"".join(chunks))

    def _too_large(self) -> Problem:
        return Problem(
            413,
            "body-too-large",
            f"the request body is over {self.max_body_bytes} bytes "
            "(DOCFLOW_MAX_JSON_BYTES); upload files with POST /v1/documents",
        )


def _closing_if_unread(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """``receive`` and ``send`` such that an answer sent before the request's body
    was read whole (a 401, a 413) says ``Connection: close``.

    The server closes such a connection (the rest of the body is still on it);
    without the header, a client may send its next request on it first, and see
    "server disconnected" instead of an answer.
    """
    headers = Headers(scope=scope)
    length = headers.get("content-length", "0")
    read_whole = "transfer-encoding" not in headers and (length == "0" or not length.isdigit())

    async def tracked() -> Message:
        nonlocal read_whole
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            read_whole = True
        return message

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start" and not read_whole:
            message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
        await send(message)

    return tracked, closing


_CLOSE = (b"connection", b"close")


def _text(body: bytes) -> bytes:
    """``body`` if it is UTF-8 (JSON must be); a 422 problem otherwise, which
    FastAPI would answer with an undocumented 400."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            422, "malformed-request", f"the body is not UTF-8 text (byte {exc.start})"
        ) from exc
    return body


def _preflight(scope: Scope) -> bool:
    return scope["method"] == "OPTIONS" and any(
        name == b"access-control-request-method" for name, _ in scope.get("headers", ())
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that hands out ``body`` first, then what the client sends next
    (its disconnect, which a stream waits for)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replayed
