"""``--meta`` and ``--filter``: what the command line makes of them."""

from __future__ import annotations

import pytest
import typer

from docflow_cli.filtering import filters_of, metadata_of

pytestmark = pytest.mark.unit


def test_meta_options_make_a_metadata_object() -> None:
    assert metadata_of(None) is None
    assert metadata_of(
        ["team=red", "year=2024", "ratio=0.5", "draft=false", "tags=a", "tags=b", "id=007x"]
    ) == {
        "team": "red",
        "year": 2024,
        "ratio": 0.5,
        "draft": False,
        # A key twice makes a list.
        "tags": ["a", "b"],
        "id": "007x",
    }
    assert metadata_of(['tags=["a", 1]', "note=a=b", "nan=nan"]) == {
        "tags": ["a", 1],
        "note": "a=b",
        "nan": "nan",
    }
    with pytest.raises(typer.BadParameter):
        metadata_of(["no-equals-sign"])


def test_filter_options_split_fields_from_metadata() -> None:
    assert filters_of(
        [
            "team=red",
            "filename=a.pdf",
            "document_id=1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "created_from=2026-01-01T00:00:00Z",
            "meta:filename=also-metadata",
        ]
    ) == {
        "meta": ["team=red", "filename=also-metadata"],
        "filename": ["a.pdf"],
        "document_id": ["1b4e28ba-2fa1-11d2-883f-0016d3cca427"],
        "created_from": "2026-01-01T00:00:00Z",
    }
    assert filters_of(None) == {"meta": None, "filename": None, "document_id": None}
    with pytest.raises(typer.BadParameter):
        filters_of(["=x"])
