"""Errors that end a document's processing with a reason a person can act on."""

from docflow_shared.events import ErrorCode


class DocumentError(Exception):
    """This document cannot be processed; raising it fails the document.

    Handlers raise it; the consumer middleware (``failures.FailDocumentOnError``)
    turns it into a ``DocumentFailed`` event and lets the consumer move on.
    """

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class TransientError(DocumentError):
    """A dependency is unavailable (Qdrant, the embeddings API, the blob store): the
    same message may well succeed later.

    The consumer middleware parks the message on a retry topic and tries again
    after a delay; after the last retry the document fails with this error's
    code and message.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message, retryable=True)


class UntrustedEvent(Exception):
    """An event whose fields do not belong together: a ``blob_key`` that is not the
    one derived from its tenant and document, a malformed tenant id, a known
    document under another tenant. Forged (or produced by a bug): nothing of it
    is acted on.

    The consumer middleware dead-letters the message and counts it
    (``docflow_events_rejected_total``), and does *not* fail the document:
    the document it names may be another tenant's, and failing it would be the
    very cross-tenant effect the check prevents (docs/architecture.md, "Trust
    boundaries").
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        # A short stable label (the metric's ``reason``): ``blob_key``, ``tenant_id``,
        # ``tenant_changed``.
        self.reason = reason
        self.message = message
