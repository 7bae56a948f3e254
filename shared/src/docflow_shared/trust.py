"""Events are checked, not trusted: what a consumer verifies before acting on one.

Whoever can reach the brokers can publish any event (docs/architecture.md,
"Trust boundaries"), so an event's fields are checked against each other
before anything is read, written or deleted on their word. A check that does
not hold raises ``UntrustedEvent``: the failure middleware dead-letters the
message and counts it, and fails no document.

The checks that need what a service has stored live with that service: the
status service rejects an event that names a known document under another
tenant (``SqlProjector``), the embedder a deletion of a document whose
vectors are another tenant's (``handlers.remove_vectors``).
"""

from __future__ import annotations

import re

from docflow_shared.auth import TENANT_PATTERN
from docflow_shared.blobstore import original_key
from docflow_shared.errors import UntrustedEvent
from docflow_shared.events import (
    DocumentRetryRequested,
    DocumentUploaded,
    Envelope,
    OcrRangeRequested,
)

_TENANT = re.compile(TENANT_PATTERN)

# How much of a forged value a log line or dead-letter header repeats.
_SHOWN = 120


def check_tenant(event: Envelope) -> None:
    """The tenant id is one docflow could have issued (the pattern of ``auth``)."""
    if not _TENANT.fullmatch(event.tenant_id):
        raise UntrustedEvent("tenant_id", f"malformed tenant id {event.tenant_id[:_SHOWN]!r}")


def check_claim(event: DocumentUploaded | DocumentRetryRequested | OcrRangeRequested) -> None:
    """The claim check points at this tenant's copy of this document, and nowhere else.

    The gateway stores every upload under ``original_key(tenant, document)``;
    a ``blob_key`` that is not exactly that key would make the extractor read
    another document (another tenant's) into this one.
    """
    check_tenant(event)
    expected = original_key(event.tenant_id, event.document_id)
    if event.blob_key != expected:
        raise UntrustedEvent(
            "blob_key",
            f"blob key {event.blob_key[:_SHOWN]!r} is not {expected!r}, "
            "the key of the event's tenant and document",
        )
