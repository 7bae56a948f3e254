"""A document's metadata: the JSON object a client attaches to an upload.

Flat by design: string keys of a safe pattern, each value a string, a number,
a boolean, or a list of those. No nesting beyond that one list, no null. The
bounds here hold for every event that carries metadata (the gateway's size
setting, ``DOCFLOW_MAX_METADATA_BYTES``, is lower), so an event that parses
also fits Kafka, Qdrant's payload and the status read model.

Filters match metadata by *terms*: ``key=value`` strings, one per scalar
value (a list gives one per element), with numbers and booleans in their JSON
spelling (``year=2024``, ``draft=true``). One keyword index on the terms
serves a filter on any key, so no index is created per key a client invents.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

# A key: a letter or underscore, then letters, digits, ``_``, ``-``, ``.``; at most 64.
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"
MAX_KEYS = 64
MAX_LIST_ITEMS = 64
MAX_STRING_CHARS = 1024
# Hard ceiling of the encoded object (compact JSON, UTF-8) in any event.
MAX_ENCODED_BYTES = 64 * 1024

_KEY = re.compile(KEY_PATTERN)
# Control characters (newlines too) are refused in values: the status read model
# keeps terms one per line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Scalar = str | int | float | bool
Value = Scalar | list[Scalar]


class MetadataError(ValueError):
    """The metadata is not acceptable; the message names what is wrong, and where."""


def _scalar(key: str, value: object, where: str) -> Scalar:
    if isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise MetadataError(f"{where}: a string longer than {MAX_STRING_CHARS} characters")
        if isinstance(value, str) and _CONTROL.search(value):
            raise MetadataError(f"{where}: control characters (newlines too) are not allowed")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MetadataError(f"{where}: numbers must be finite")
        return value
    if value is None:
        raise MetadataError(f"{where}: null is not a value; leave the key out instead")
    if isinstance(value, dict | list):
        raise MetadataError(
            f"{where}: nested too deep; a value is a string, number or boolean, or a list of those"
        )
    raise MetadataError(f"{where}: a {type(value).__name__} is not a metadata value")


def check_metadata(value: object) -> dict[str, Value]:
    """``value`` as metadata, or ``MetadataError`` naming the first thing wrong."""
    if not isinstance(value, dict):
        raise MetadataError("metadata must be a JSON object")
    if len(value) > MAX_KEYS:
        raise MetadataError(f"metadata has {len(value)} keys; at most {MAX_KEYS}")
    checked: dict[str, Value] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise MetadataError(
                f"metadata key {str(key)[:80]!r} is not allowed: a letter or `_` first, then "
                "letters, digits, `_`, `-` or `.`, at most 64 characters"
            )
        if isinstance(item, list):
            if len(item) > MAX_LIST_ITEMS:
                raise MetadataError(
                    f"metadata[{key!r}]: a list of {len(item)} items; at most {MAX_LIST_ITEMS}"
                )
            checked[key] = [_scalar(key, v, f"metadata[{key!r}][{i}]") for i, v in enumerate(item)]
        else:
            checked[key] = _scalar(key, item, f"metadata[{key!r}]")
    if (size := len(encode_metadata(checked))) > MAX_ENCODED_BYTES:
        raise MetadataError(f"metadata is {size} bytes encoded; at most {MAX_ENCODED_BYTES}")
    return checked


def _reject_constant(name: str) -> Any:
    raise MetadataError(f"metadata: {name} is not a JSON number")


def parse_metadata(data: bytes | str) -> dict[str, Value]:
    """Metadata from its JSON text (strict: no NaN or Infinity), checked."""
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except MetadataError:
        raise
    except (ValueError, RecursionError) as exc:
        raise MetadataError(f"metadata is not valid JSON: {exc}") from None
    return check_metadata(value)


def encode_metadata(metadata: dict[str, Value]) -> bytes:
    """Compact JSON, UTF-8: what the size limits count."""
    return json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()


def term(key: str, value: Scalar) -> str:
    """The term a filter ``key=value`` matches: numbers and booleans in JSON spelling."""
    if isinstance(value, str):
        return f"{key}={value}"
    return f"{key}={json.dumps(value)}"


def metadata_terms(metadata: dict[str, Value] | None) -> list[str]:
    """Every ``key=value`` term of ``metadata``, each once, in order."""
    terms: dict[str, None] = {}
    for key, value in (metadata or {}).items():
        for item in value if isinstance(value, list) else [value]:
            terms[term(key, item)] = None
    return list(terms)


def _checked(value: object) -> object:
    try:
        return check_metadata(value)
    except MetadataError as exc:
        raise ValueError(str(exc)) from None


Metadata = Annotated[dict[str, Value], BeforeValidator(_checked)]
"""Metadata in an event or an answer: checked as ``check_metadata`` does."""


def parse_filter(text: str) -> tuple[str, str]:
    """A ``key=value`` filter as (key, the term it matches); ``MetadataError`` if malformed."""
    key, sep, value = text.partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise MetadataError(
            f"metadata filter {text[:80]!r} is not key=value with a key of the metadata key pattern"
        )
    if len(value) > MAX_STRING_CHARS or _CONTROL.search(value):
        raise MetadataError(
            f"metadata filter value longer than {MAX_STRING_CHARS} characters or with "
            "control characters"
        )
    return key, f"{key}={value}"


def terms_text(metadata: dict[str, Value] | None) -> str | None:
    """The terms one per line, with a newline before and after each (``\nk=v\n``), so
    that a term is found as ``\n<term>\n`` (the status read model's filter)."""
    terms = metadata_terms(metadata)
    return "\n" + "\n".join(terms) + "\n" if terms else None
