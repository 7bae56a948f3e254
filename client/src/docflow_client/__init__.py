"""docflow's Python client: ``Docflow`` (blocking) and ``AsyncDocflow``.

    from docflow_client import Docflow

    with Docflow("http://localhost:8000", "http://localhost:8001") as docflow:
        (accepted,) = docflow.upload("report.pdf")
        done = docflow.wait(accepted.id, timeout=300)

It follows docs/openapi/gateway.json and docs/openapi/status.json.
"""

from importlib.metadata import PackageNotFoundError, version

from docflow_client.aio import AsyncDocflow
from docflow_client.errors import (
    BadRequest,
    Conflict,
    DocflowError,
    Forbidden,
    Invalid,
    NotFound,
    ProblemError,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    Unreachable,
    UnsupportedType,
)
from docflow_client.sync import Docflow
from docflow_client.webhooks import InvalidSignature, verify_webhook

try:
    __version__ = version("docflow-client")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "AsyncDocflow",
    "BadRequest",
    "Conflict",
    "Docflow",
    "DocflowError",
    "Forbidden",
    "Invalid",
    "InvalidSignature",
    "NotFound",
    "ProblemError",
    "RateLimited",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Unreachable",
    "UnsupportedType",
    "__version__",
    "verify_webhook",
]
