"""Query parameters shared by the search (gateway) and the document list (status):
their types, so that what the OpenAPI schemas promise is what the services accept."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, StringConstraints

from docflow_shared.events.metadata import MAX_STRING_CHARS

# ``key=value``: a metadata key (events/metadata.py, KEY_PATTERN), ``=``, a value
# without control characters.
META_FILTER_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}=[^\x00-\x1f\x7f]{0," + str(MAX_STRING_CHARS) + r"}$"
)

MetaFilter = Annotated[str, StringConstraints(pattern=META_FILTER_PATTERN)]
"""One ``meta=key=value`` filter."""

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    # Pydantic would also take a number of seconds; the schema says date-time.
    if not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise ValueError("expected an RFC 3339 date-time with a time zone")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
"""A date-time with a zone, as RFC 3339 writes it (and nothing else)."""
