"""Receivers verify deliveries signed as the Standard Webhooks specification says
(signed here with the reference package, as docflow's dispatcher is to sign)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from docflow_client import InvalidSignature, verify_webhook

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()
BODY = json.dumps({"type": "document.completed", "data": {"id": "1d0c"}}).encode()


def signed(body: bytes, at: datetime | None = None, secret: str = SECRET) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(int(at.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("msg_1", at, body.decode()),
    }


def test_a_signed_delivery_is_its_payload() -> None:
    assert verify_webhook(SECRET, BODY, signed(BODY)) == {
        "type": "document.completed",
        "data": {"id": "1d0c"},
    }


def test_a_changed_body_another_secret_or_no_signature_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    headers = signed(BODY)
    cases = [
        (BODY.replace(b"completed", b"failed"), headers),
        (BODY, signed(BODY, secret=other)),
        (BODY, {k: v for k, v in headers.items() if k != "Webhook-Signature"}),
    ]
    for body, sent in cases:
        with pytest.raises(InvalidSignature):
            verify_webhook(SECRET, body, sent)


def test_an_old_delivery_is_refused_as_a_replay() -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    with pytest.raises(InvalidSignature):
        verify_webhook(SECRET, BODY, signed(BODY, at=old))
