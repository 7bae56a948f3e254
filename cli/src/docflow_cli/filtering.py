"""``--meta`` and ``--filter`` of the command line: metadata to send, filters to apply.

``--meta KEY=VALUE`` (repeatable) builds an upload's metadata: the value is
read as JSON when it is a number, ``true``/``false`` or a JSON list, else it
is the string as typed; a key given twice becomes a list.

``--filter NAME=VALUE`` (repeatable) narrows a search or the document list:
``filename``, ``document_id``, ``created_from`` and ``created_before`` are the
document's own fields; any other name is a metadata key (``meta:NAME=VALUE``
for a metadata key spelt like one of those).

Beside them, the search's other options: ``--mode`` and ``--documents``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from docflow_cli.api import Mode

FIELDS = ("filename", "document_id", "created_from", "created_before")

MetaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--meta",
        "-m",
        help="Metadata KEY=VALUE for every file (repeatable; numbers, true/false and "
        "JSON lists as such; a key twice makes a list)",
        show_default=False,
    ),
]
ModeOption = Annotated[
    Mode,
    typer.Option(
        help="hybrid: by meaning and by words, fused by rank; dense: by meaning; "
        "keyword: by words (exact names and codes)"
    ),
]
DocumentsOption = Annotated[
    bool, typer.Option("--documents", help="Each document once, with its best chunks")
]
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="Only documents with metadata KEY=VALUE, or filename=, document_id=, "
        "created_from=, created_before= (repeatable; all must hold)",
        show_default=False,
    ),
]


def _split(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"{text!r} is not NAME=VALUE", param_hint=what)
    return name, value


def _value(text: str) -> Any:
    if text in ("true", "false") or text.startswith("[") or _is_number(text):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("nan", "inf", "-inf", "infinity")


def metadata_of(pairs: list[str] | None) -> dict[str, Any] | None:
    """The metadata object that ``--meta`` options make (None without any)."""
    if not pairs:
        return None
    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, text = _split(pair, "--meta")
        value = _value(text)
        if key not in metadata:
            metadata[key] = value
            continue
        earlier = metadata[key] if isinstance(metadata[key], list) else [metadata[key]]
        metadata[key] = earlier + (value if isinstance(value, list) else [value])
    return metadata


def filters_of(texts: list[str] | None) -> dict[str, Any]:
    """The client's filter arguments that ``--filter`` options make."""
    found: dict[str, list[str]] = {}
    for text in texts or []:
        name, value = _split(text, "--filter")
        if name in FIELDS:
            found.setdefault(name, []).append(value)
        else:
            found.setdefault("meta", []).append(f"{name.removeprefix('meta:')}={value}")
    filters: dict[str, Any] = {"meta": found.get("meta")}
    for name in ("filename", "document_id"):
        filters[name] = found.get(name)
    for name in ("created_from", "created_before"):
        if name in found:
            filters[name] = found[name][-1]
    return filters
