"""Errors that end a document's processing with a reason a person can act on."""

from docflow_shared.events import ErrorCode


class DocumentError(Exception):
    """This document cannot be processed; raising it fails the document.

    Handlers raise it; the consumer middleware (``messaging.FailDocumentOnError``)
    turns it into a ``DocumentFailed`` event and lets the consumer move on.
    """

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
