"""Requests to tenants' webhook endpoints, which must not reach inside docflow (SSRF).

A tenant chooses the URL, so a delivery is a request docflow makes on a
stranger's behalf. Every request goes through ``EgressPolicy``:

* the host is resolved once, and every address it resolves to must be
  global (not private, loopback, link-local, shared, reserved, multicast or
  unspecified; an IPv4 address inside IPv6, ``::ffff:10.0.0.1``, is judged
  as the IPv4 address), unless the operator allows it
  (``DOCFLOW_WEBHOOK_ALLOWED_NETWORKS``: CIDRs, addresses or host names);
* the connection is made to that resolved address (pinned: a second DNS
  answer cannot swap in another one, "DNS rebinding"), and the address
  actually connected to is checked again; TLS still checks the host's name;
* no proxy from the environment (it would make the connection instead);
* redirects are never followed (a 3xx is the endpoint's answer, a failure);
* a time limit on the whole request and a cap on the answer read.

``EgressRefused`` says why an address was refused; a delivery refused so is
not retried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What the delivery list keeps of an answer's body.
EXCERPT_CHARS = 500


class EgressRefused(Exception):
    """The destination is not one docflow may send to."""


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4 address carried in IPv6 (mapped ``::ffff:a.b.c.d``) as the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses outbound requests may reach: global ones, and what the
    operator allows besides (networks, or host names trusted whatever they resolve to)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, allowed: Iterable[str]) -> EgressPolicy:
        """From ``DOCFLOW_WEBHOOK_ALLOWED_NETWORKS``' entries: ``10.0.0.0/8``,
        ``127.0.0.1``, ``::1``, or a host name (``receiver.internal``)."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in allowed):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, address: IPAddress, host: str = "") -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        plain = _plain(address)
        if any(plain in net or address in net for net in self.networks):
            return True
        return plain.is_global and not plain.is_multicast

    def check(self, address: IPAddress, host: str) -> None:
        """Raise ``EgressRefused`` unless ``host``'s ``address`` may be reached."""
        if not self.permits(address, host):
            raise EgressRefused(
                f"{host} resolves to {address}, which is not a public address "
                "(private, loopback, link-local or reserved); an operator may allow it "
                "with DOCFLOW_WEBHOOK_ALLOWED_NETWORKS"
            )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """``host``'s addresses, each checked; ``EgressRefused`` if any is not
        permitted (an answer mixing public and private addresses is refused
        whole) or if there is none."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            found = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (socket.gaierror, UnicodeError) as exc:
                raise EgressRefused(f"{host} does not resolve ({exc})") from exc
            found = list(
                dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
            )
        if not found:
            raise EgressRefused(f"{host} does not resolve")
        for address in found:
            self.check(address, host)
        return found


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects only to checked, pinned addresses."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")
            try:
                connected = ipaddress.ip_address(str(peer[0]).split("%")[0])
                self._policy.check(connected, host)
            except (EgressRefused, ValueError, TypeError, IndexError) as exc:
                await stream.aclose()
                raise EgressRefused(
                    f"{host}: connected to {peer}, not a permitted address"
                ) from exc
            return stream
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("webhooks are never sent to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx's own pool, with the guarded backend (its constructor takes none).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(policy: EgressPolicy, timeout_s: float) -> httpx.AsyncClient:
    """An httpx client whose every request obeys ``policy``, follows no redirect
    and uses no proxy."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(policy),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL, or ``ValueError`` saying what is wrong
    with it (syntax only; ``EgressPolicy.resolve`` judges where it goes)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("https", "http"):
        raise ValueError("the URL must start with https:// or http://")
    if not parsed.host:
        raise ValueError("the URL has no host")
    if parsed.userinfo:
        raise ValueError("the URL may not carry a user name or password")
    if parsed.fragment:
        raise ValueError("the URL may not have a fragment (#…)")
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass(frozen=True)
class Answer:
    """What came of one request to an endpoint."""

    # The HTTP status, None when there was no answer.
    status: int | None
    # The start of the answer's body (capped), or what went wrong.
    excerpt: str
    seconds: float
    # Refused by the policy: not retried.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.refused:
            return f"refused: {self.excerpt}"
        if self.status is None:
            return f"no answer: {self.excerpt}"
        return f"HTTP {self.status}: {self.excerpt}" if self.excerpt else f"HTTP {self.status}"


class WebhookSender:
    """Signs and sends deliveries (Standard Webhooks) through ``guarded_client``."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        timeout_s: float = 10.0,
        max_response_bytes: int = 64 * 1024,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._client = client or guarded_client(policy, timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self,
        url: str,
        secrets: Sequence[str],
        webhook_id: str,
        body: str,
        *,
        timeout_s: float | None = None,
    ) -> Answer:
        """POST ``body`` to ``url`` signed with each of ``secrets`` (space-separated
        signatures in ``webhook-signature``, as Standard Webhooks allows: a receiver
        accepts the delivery if one matches its secret), waiting at most
        ``timeout_s`` (the sender's timeout when None or longer); never raises for
        what the endpoint (or the network) does."""
        if isinstance(secrets, str) or not secrets:
            raise TypeError("secrets: a sequence of one or more whsec_ secrets")
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "docflow-webhooks/1",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(Webhook(s).sign(webhook_id, now, body) for s in secrets),
        }
        limit = self._timeout_s if timeout_s is None else min(timeout_s, self._timeout_s)
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                async with self._client.stream(
                    "POST", url, content=body.encode(), headers=headers
                ) as response:
                    kept = await _first_bytes(response.aiter_raw(), self._max_response_bytes)
                    status = response.status_code
        except EgressRefused as exc:
            return Answer(None, str(exc), time.monotonic() - started, refused=True)
        except TimeoutError:
            return Answer(None, f"no answer within {limit:g} s", time.monotonic() - started)
        except (httpx.HTTPError, OSError) as exc:
            text = str(exc) or type(exc).__name__
            return Answer(None, text[:EXCERPT_CHARS], time.monotonic() - started)
        excerpt = kept.decode(errors="replace")[:EXCERPT_CHARS]
        if 300 <= status < 400:
            excerpt = f"redirect not followed ({response.headers.get('location', '')[:200]})"
        return Answer(status, excerpt, time.monotonic() - started)


async def _first_bytes(chunks: Any, limit: int) -> bytes:
    """At most ``limit`` bytes of the answer; the rest is not read."""
    kept = bytearray()
    async for chunk in chunks:
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return bytes(kept)
