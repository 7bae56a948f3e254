"""``/v1/webhooks``: a tenant's endpoints, their secrets' rotation, their deliveries
(a page at a time), and re-driving one.

The deliveries themselves are the dispatcher's (``docflow_gateway.webhooks``,
its own process); these routes only read and write the gateway's database,
and a re-drive hands the delivery back to the dispatcher through Kafka.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from docflow_gateway.adapters.deadletter_index import CURSOR_PATTERN
from docflow_gateway.adapters.egress import EgressPolicy, EgressRefused, check_url
from docflow_gateway.adapters.webhook_store import WebhookDelivery, WebhookEndpoint
from docflow_gateway.domain.webhooks import Kind, new_secret, webhook_id
from docflow_gateway.entrypoints.deps import (
    RateLimitedTenant,
    SettingsDep,
    WebhookRedriveDep,
    WebhooksDep,
)
from docflow_gateway.entrypoints.problems import unavailable
from docflow_shared.http import Problem, problem_responses

router = APIRouter()


class WebhookIn(BaseModel):
    """An endpoint to register: where to send, and which events."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="https:// (or http://) URL that receives a POST per event; it must "
        "resolve to public addresses unless the operator allows others",
    )
    events: list[Kind] = Field(
        default_factory=lambda: list(Kind),
        min_length=1,
        max_length=len(Kind),
        description="The event kinds wanted (all when absent): `completed`, `failed`, "
        "`cancelled`, and `progress` (every change of a pending or processing document)",
    )
    description: str | None = Field(default=None, max_length=200)


class WebhookOut(BaseModel):
    """A registered endpoint (its secret is shown only when it is made)."""

    id: UUID
    url: str
    events: list[Kind]
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    """The endpoint just registered, with its secret, shown this once."""

    secret: str = Field(
        description="Standard Webhooks secret (`whsec_…`): verify each delivery's "
        "`webhook-signature` with it (docflow_client.verify_webhook). Not shown again."
    )


class SecretRotated(BaseModel):
    """The endpoint's new secret, shown this once, and until when the old one still
    signs deliveries too."""

    id: UUID
    secret: str = Field(
        description="The new `whsec_…` secret; every delivery is signed with it from now "
        "on. Not shown again."
    )
    previous_secret_expires_at: datetime = Field(
        description="Until then each delivery carries a second signature, made with the "
        "previous secret (`webhook-signature` holds both, space-separated), so a receiver "
        "may switch to the new secret at any time before it"
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    """One event sent (or being sent) to the endpoint, and how it went."""

    id: UUID
    webhook_id: str = Field(description="The `webhook-id` header: the receiver's idempotency key")
    document_id: UUID
    event: Kind
    state: str = Field(
        description="pending (re-driven, about to be sent), retrying (waiting for its next try), "
        "delivered (2xx), "
        "failed (out of retries; on the dead-letter topic), refused (a forbidden address)"
    )
    attempts: int
    response_status: int | None = Field(description="The endpoint's last HTTP status")
    response_excerpt: str | None = Field(
        description="The start of its last answer, or why there was none"
    )
    occurred_at: datetime = Field(description="When the status changed")
    last_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    """A page of the endpoint's deliveries, newest first."""

    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


_PROBLEMS = {
    401: "Authentication is on and no valid API key was sent",
    429: "The tenant sent too many requests; see Retry-After",
    503: "The gateway's database or Kafka is unavailable; retry after Retry-After",
}
_NOT_FOUND = {
    404: "No such endpoint (or delivery) for this tenant",
    422: "Malformed request: an id that is not a UUID",
}


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=[Kind(k) for k in endpoint.kinds],
        description=endpoint.description,
        created_at=endpoint.created_at,
    )


def _delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=webhook_id(row.id),
        document_id=row.document_id,
        event=Kind(row.kind),
        state=row.state,
        attempts=row.attempts,
        response_status=row.response_status,
        response_excerpt=row.response_excerpt,
        occurred_at=row.occurred_at,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
    )


async def _own_endpoint(
    webhook_id: UUID, store: WebhooksDep, tenant: RateLimitedTenant
) -> WebhookEndpoint:
    try:
        endpoint = await store.endpoint(tenant, webhook_id)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    if endpoint is None:
        raise Problem(404, "webhook-not-found", f"no webhook endpoint {str(webhook_id)!r}")
    return endpoint


OwnEndpoint = Annotated[WebhookEndpoint, Depends(_own_endpoint)]


@router.post(
    "/v1/webhooks",
    status_code=201,
    summary="Register an endpoint; the answer holds its secret, shown once.",
    description="docflow POSTs each event the endpoint wants, signed as the Standard\n"
    "Webhooks specification says (`webhook-id`, `webhook-timestamp`,\n"
    "`webhook-signature`), retried with backoff until it answers 2xx. The URL must\n"
    "resolve to public addresses (not private, loopback or link-local) unless the\n"
    "operator allows others (DOCFLOW_WEBHOOK_ALLOWED_NETWORKS).",
    responses=problem_responses(
        {
            **_PROBLEMS,
            409: "The tenant has DOCFLOW_WEBHOOK_MAX_ENDPOINTS endpoints already",
            422: "The URL is malformed, or goes to an address docflow may not send to",
        }
    ),
)
async def create_webhook(
    body: WebhookIn, store: WebhooksDep, settings: SettingsDep, tenant: RateLimitedTenant
) -> WebhookCreated:
    try:
        host, port = check_url(body.url)
        await EgressPolicy.of(settings.webhook_allowed_networks).resolve(host, port)
    except ValueError as exc:
        raise Problem(422, "invalid-webhook-url", f"{body.url!r}: {exc}") from exc
    except EgressRefused as exc:
        raise Problem(422, "webhook-url-refused", str(exc)) from exc
    try:
        if await store.count_endpoints(tenant) >= settings.webhook_max_endpoints:
            raise Problem(
                409,
                "too-many-webhooks",
                f"the tenant has {settings.webhook_max_endpoints} webhook endpoints "
                "already (DOCFLOW_WEBHOOK_MAX_ENDPOINTS); delete one first",
            )
        secret = new_secret()
        endpoint = await store.add_endpoint(
            tenant,
            body.url,
            [k.value for k in dict.fromkeys(body.events)],
            body.description,
            secret,
        )
    except Problem:
        raise
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    return WebhookCreated(**_out(endpoint).model_dump(), secret=secret)


@router.get("/v1/webhooks", responses=problem_responses(_PROBLEMS))
async def list_webhooks(store: WebhooksDep, tenant: RateLimitedTenant) -> WebhookList:
    """The tenant's endpoints, oldest first (without their secrets)."""
    try:
        found = await store.endpoints(tenant)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    return WebhookList(webhooks=[_out(e) for e in found])


@router.get("/v1/webhooks/{webhook_id}", responses=problem_responses(_PROBLEMS | _NOT_FOUND))
async def get_webhook(endpoint: OwnEndpoint) -> WebhookOut:
    """One of the tenant's endpoints (without its secret)."""
    return _out(endpoint)


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(_PROBLEMS | _NOT_FOUND),
)
async def delete_webhook(
    endpoint: OwnEndpoint, store: WebhooksDep, tenant: RateLimitedTenant
) -> Response:
    """Stop sending to the endpoint and forget it and its deliveries (those waiting
    for a retry are dropped)."""
    try:
        await store.remove_endpoint(tenant, endpoint.id)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{webhook_id}/secret",
    summary="Rotate the endpoint's secret; the answer holds the new one, shown once.",
    description="Deliveries are signed with the new secret from now on, and with the\n"
    "previous one too until `previous_secret_expires_at`\n"
    "(DOCFLOW_WEBHOOK_SECRET_OVERLAP_S after the rotation): switch the receiver to the\n"
    "new secret within that time. Rotating again in the meantime drops the oldest.",
    responses=problem_responses(_PROBLEMS | _NOT_FOUND),
)
async def rotate_webhook_secret(
    endpoint: OwnEndpoint, store: WebhooksDep, settings: SettingsDep, tenant: RateLimitedTenant
) -> SecretRotated:
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=settings.webhook_secret_overlap_s)
    try:
        rotated = await store.rotate_secret(tenant, endpoint.id, secret, until)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    if not rotated:  # deleted meanwhile
        raise Problem(404, "webhook-not-found", f"no webhook endpoint {str(endpoint.id)!r}")
    return SecretRotated(id=endpoint.id, secret=secret, previous_secret_expires_at=until)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    responses=problem_responses(
        _PROBLEMS
        | _NOT_FOUND
        | {
            422: "Malformed request: an id that is not a UUID, a limit outside 1-500, "
            "a cursor not of the form next_cursor has"
        }
    ),
)
async def list_webhook_deliveries(
    endpoint: OwnEndpoint,
    store: WebhooksDep,
    tenant: RateLimitedTenant,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=CURSOR_PATTERN),
    ] = None,
) -> DeliveryList:
    """The endpoint's deliveries, newest first, a page at a time, with the last answer
    of each (kept DOCFLOW_WEBHOOK_DELIVERY_RETENTION_DAYS after their last attempt)."""
    try:
        page = await store.page(tenant, endpoint.id, limit, before=int(cursor) if cursor else None)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    return DeliveryList(
        deliveries=[_delivery_out(row) for row in page.deliveries],
        next_cursor=str(page.next) if page.next is not None else None,
    )


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redrive",
    status_code=202,
    responses=problem_responses(_PROBLEMS | _NOT_FOUND),
)
async def redrive_webhook_delivery(
    delivery_id: UUID,
    endpoint: OwnEndpoint,
    store: WebhooksDep,
    redrive: WebhookRedriveDep,
    tenant: RateLimitedTenant,
) -> DeliveryOut:
    """Send a delivery again (same `webhook-id` and body, with fresh retries), whatever
    came of it before: the dispatcher takes it from Kafka within seconds."""
    try:
        row = await store.delivery(tenant, endpoint.id, delivery_id)
    except Exception as exc:
        raise unavailable("the gateway's database", exc) from exc
    if row is None:
        raise Problem(
            404, "delivery-not-found", f"no delivery {str(delivery_id)!r} of this endpoint"
        )
    if redrive is None:
        raise Problem(503, "unavailable", "this gateway cannot re-drive webhook deliveries")
    try:
        await redrive(row.delivery(redrive=True))
        await store.requeued(row.id)
    except Exception as exc:
        raise unavailable("Kafka or the gateway's database", exc) from exc
    row.state = "pending"
    return _delivery_out(row)
