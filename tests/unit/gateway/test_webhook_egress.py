"""The webhooks' outbound guard (adapters/egress.py): only public addresses unless
allowed, IPv4 inside IPv6 judged as IPv4, a DNS answer judged whole and pinned,
no redirect followed, a time limit and a cap on the answer; and deliveries
signed so that the client's ``verify_webhook`` accepts them.

On the real broker, with a receiver: tests/integration/test_webhooks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from docflow_client import InvalidSignature, verify_webhook
from docflow_gateway.adapters.egress import EgressPolicy, EgressRefused, WebhookSender, check_url
from docflow_gateway.domain.webhooks import new_secret

pytestmark = pytest.mark.unit

SECRET = new_secret()
LOOPBACK = EgressPolicy.of(["127.0.0.1/32"])

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space (carrier NAT)
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    policy = EgressPolicy.of([])
    assert not policy.permits(ipaddress.ip_address(address))
    with pytest.raises(EgressRefused, match="not a public address"):
        policy.check(ipaddress.ip_address(address), "example.com")


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_permitted(address: str) -> None:
    assert EgressPolicy.of([]).permits(ipaddress.ip_address(address))


def test_the_operator_allows_networks_and_hosts() -> None:
    policy = EgressPolicy.of(["10.0.0.0/8", "::1", "receiver.internal", " "])
    assert policy.permits(ipaddress.ip_address("10.9.9.9"))
    assert policy.permits(ipaddress.ip_address("::ffff:10.9.9.9"))  # mapped: as IPv4
    assert policy.permits(ipaddress.ip_address("::1"))
    assert not policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert not policy.permits(ipaddress.ip_address("192.168.0.1"))
    assert policy.permits(ipaddress.ip_address("192.168.0.1"), "Receiver.Internal.")
    assert policy.permits(ipaddress.ip_address("8.8.8.8"))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/x", "https:// or http://"),
        ("file:///etc/passwd", "https:// or http://"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://example.com/#frag", "fragment"),
        ("not a url", "https:// or http://"),
    ],
)
def test_malformed_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_url(url)


def test_a_url_gives_its_host_and_port() -> None:
    assert check_url("https://hooks.example.com/docflow") == ("hooks.example.com", 443)
    assert check_url("http://[::1]:8080/x") == ("::1", 8080)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """getaddrinfo answering ``answers``; returns the names asked, in order."""
    asked: list[str] = []

    async def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in answers[host]
        ]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked


async def test_a_name_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(
        monkeypatch,
        {
            "internal.example.com": ["10.0.0.5"],
            "mixed.example.com": ["93.184.215.14", "169.254.169.254"],
            "mapped.example.com": ["::ffff:127.0.0.1"],
        },
    )
    policy = EgressPolicy.of([])
    with pytest.raises(EgressRefused, match=r"10\.0\.0\.5"):
        await policy.resolve("internal.example.com", 443)
    # One private address in the answer refuses it whole.
    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254"):
        await policy.resolve("mixed.example.com", 443)
    with pytest.raises(EgressRefused, match="::ffff:7f00:1"):
        await policy.resolve("mapped.example.com", 443)
    with pytest.raises(EgressRefused, match="does not resolve"):
        await policy.resolve("nowhere.example.com", 443)


async def test_a_delivery_to_a_name_resolving_to_a_private_address_is_refused_unsent(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    fake_dns(monkeypatch, {"evil.example.com": ["127.0.0.1"]})
    sender = WebhookSender(EgressPolicy.of([]))
    answer = await sender.send(f"http://evil.example.com:{receiver.port}/", [SECRET], "msg_1", "{}")
    await sender.aclose()
    assert answer.refused
    assert answer.status is None
    assert "127.0.0.1" in answer.excerpt
    assert receiver.requests == []


async def test_the_address_is_resolved_once_and_connected_to_as_resolved(
    monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    # The name exists only in the fake DNS: the connection is made to the address
    # it gave (pinned), never by resolving the name again (DNS rebinding).
    asked = fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})
    sender = WebhookSender(EgressPolicy.of(["127.0.0.1/32"]))
    answer = await sender.send(f"http://hooks.example.com:{receiver.port}/x", [SECRET], "m", "{}")
    await sender.aclose()
    assert answer.status == 200
    assert asked == ["hooks.example.com"]
    assert receiver.requests[0]["host"] == f"hooks.example.com:{receiver.port}"


async def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answers = [b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\n"]
    sender = WebhookSender(LOOPBACK)
    answer = await sender.send(f"http://127.0.0.1:{receiver.port}/", [SECRET], "msg_1", "{}")
    await sender.aclose()
    assert answer.status == 302
    assert not answer.ok
    assert "redirect not followed" in answer.excerpt
    assert "169.254.169.254" in answer.excerpt
    assert len(receiver.requests) == 1


async def test_the_answer_is_read_up_to_the_cap(receiver: Receiver) -> None:
    receiver.answers = [b"HTTP/1.1 500 Internal Server Error\r\n", b"x" * 2_000_000]
    sender = WebhookSender(LOOPBACK, max_response_bytes=1024)
    answer = await sender.send(f"http://127.0.0.1:{receiver.port}/", [SECRET], "msg_1", "{}")
    await sender.aclose()
    assert answer.status == 500
    assert answer.excerpt == "x" * 500
    assert answer.seconds < 5


async def test_an_endpoint_that_does_not_answer_in_time_is_a_failure(receiver: Receiver) -> None:
    receiver.stall_s = 30
    sender = WebhookSender(LOOPBACK, timeout_s=0.5)
    answer = await sender.send(f"http://127.0.0.1:{receiver.port}/", [SECRET], "msg_1", "{}")
    await sender.aclose()
    assert answer.status is None
    assert not answer.refused
    assert 0.4 < answer.seconds < 5


async def test_deliveries_are_signed_as_standard_webhooks_verify(receiver: Receiver) -> None:
    sender = WebhookSender(LOOPBACK)
    body = '{"type":"document.completed","data":{"status":"completed"}}'
    answer = await sender.send(f"http://127.0.0.1:{receiver.port}/", [SECRET], "msg_abc", body)
    await sender.aclose()
    assert answer.ok
    request = receiver.requests[0]
    assert request["webhook-id"] == "msg_abc"
    assert request["content-type"] == "application/json"
    assert verify_webhook(SECRET, request["body"], request) == {
        "type": "document.completed",
        "data": {"status": "completed"},
    }
    with pytest.raises(InvalidSignature):
        verify_webhook(new_secret(), request["body"], request)
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, request["body"].replace(b"completed", b"failed"), request)


async def test_a_shorter_timeout_for_one_request_is_kept(receiver: Receiver) -> None:
    # The dispatcher's first attempt (DOCFLOW_WEBHOOK_FIRST_ATTEMPT_TIMEOUT_S).
    receiver.stall_s = 30
    sender = WebhookSender(LOOPBACK, timeout_s=20)
    url = f"http://127.0.0.1:{receiver.port}/"
    answer = await sender.send(url, [SECRET], "msg_1", "{}", timeout_s=0.3)
    await sender.aclose()
    assert (answer.status, answer.excerpt) == (None, "no answer within 0.3 s")
    assert 0.25 < answer.seconds < 5


async def test_during_a_rotation_either_secret_verifies(receiver: Receiver) -> None:
    new, old = new_secret(), SECRET
    sender = WebhookSender(LOOPBACK)
    body = '{"type":"document.completed"}'
    answer = await sender.send(f"http://127.0.0.1:{receiver.port}/", [new, old], "msg_r", body)
    with pytest.raises(TypeError):  # one secret as a string: never signed char by char
        await sender.send(f"http://127.0.0.1:{receiver.port}/", SECRET, "msg_r", body)
    await sender.aclose()
    assert answer.ok
    request = receiver.requests[0]
    assert len(request["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert verify_webhook(secret, request["body"], request)["type"] == "document.completed"
    with pytest.raises(InvalidSignature):
        verify_webhook(new_secret(), request["body"], request)


class Receiver:
    """A raw HTTP server on 127.0.0.1: records requests (headers lowered, ``body``),
    answers ``answers`` (status line and headers, then a body) or 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[bytes] = []
        self.stall_s = 0.0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        request: dict[str, Any] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                request[name.strip().lower()] = value.strip()
        request["body"] = await reader.readexactly(int(request.get("content-length", 0)))
        self.requests.append(request)
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        status, body = [*self.answers, b"HTTP/1.1 200 OK\r\n", b"ok"][:2]
        writer.write(status + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found
        server.close()
