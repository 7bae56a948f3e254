"""Verifying docflow's webhook deliveries, for receivers.

Deliveries follow the Standard Webhooks specification
(https://www.standardwebhooks.com): headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 of
``id.timestamp.body`` with the endpoint's ``whsec_…`` secret, which
``create_webhook`` returns once). The body is ``{"type": "document.<kind>",
"timestamp": …, "data": <the document's status>}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from docflow_client.errors import DocflowError


class InvalidSignature(DocflowError):
    """The delivery is not signed with the secret, is too old or too new
    (more than five minutes from now: a replay), or lacks the headers."""


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The delivery's JSON payload once its signature checks out; else
    ``InvalidSignature``. Pass the raw body as received, not re-encoded JSON.
    Use ``webhook-id`` as the idempotency key: a delivery may come twice."""
    lowered = {name.lower(): value for name, value in headers.items()}
    payload = body.decode() if isinstance(body, bytes) else body
    try:
        Webhook(secret).verify(payload, lowered)
    except WebhookVerificationError as exc:
        raise InvalidSignature(f"webhook not verified: {exc}") from exc
    decoded = json.loads(payload)
    if not isinstance(decoded, dict):
        raise InvalidSignature("webhook payload is not a JSON object")
    return decoded
