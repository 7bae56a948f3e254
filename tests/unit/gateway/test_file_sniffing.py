"""Word, PowerPoint, Excel, EPUB and HTML are told from their bytes, never their names."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from docflow_gateway.domain.files import FileInspector, UnsupportedFileError
from docflow_gateway.domain.sniffing import is_html
from support import hostile_containers

OFFICE = Path(__file__).resolve().parents[2] / "corpus" / "office"


def inspected(data: bytes, step: int = 1000) -> FileInspector:
    inspector = FileInspector()
    for at in range(0, len(data), step):
        inspector.feed(data[at : at + step])
    inspector.finish()
    return inspector


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (
            "test.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("test.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("test.epub", "application/epub+zip"),
        ("test_blog.html", "text/html"),
    ],
)
def test_office_and_web_files_are_told_by_their_bytes_whatever_their_name(
    name: str, expected: str
) -> None:
    data = (OFFICE / name).read_bytes()
    assert inspected(data).content_type("renamed.bin") == expected
    assert inspected(data).content_type("notes.txt") == expected


def zipped(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        zipped({"readme.txt": b"a plain zip"}),
        # The names of a Word document, without its content types.
        zipped({"word/document.xml": b"<w:document/>"}),
        # Content types that name a main part the container does not have.
        zipped(
            {
                "[Content_Types].xml": hostile_containers.CONTENT_TYPES.format(
                    part="word/document.xml", type=hostile_containers.WORD_MAIN
                ).encode()
            }
        ),
        # An entity declaration in the content types: defusedxml refuses it.
        zipped(
            {
                "[Content_Types].xml": b'<!DOCTYPE t [<!ENTITY a "b">]><Types>&a;</Types>',
                "word/document.xml": b"<w:document/>",
            }
        ),
        zipped({"mimetype": b"application/zip", "META-INF/container.xml": b"<container/>"}),
        b"PK\x03\x04 cut off",
    ],
    ids=["plain-zip", "names-only", "missing-main-part", "entities", "not-epub", "cut-off"],
)
def test_other_zip_containers_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedFileError, match="ZIP container that is not a Word"):
        inspected(data).content_type("report.docx")


def test_a_hostile_container_is_accepted_for_the_extractor_to_refuse() -> None:
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    data = hostile_containers.many_images_docx()
    assert inspected(data, step=1024 * 1024).content_type("pictures.docx") == word


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("<!DOCTYPE html><html><body>x", True),
        ("\ufeff  <!-- saved -->\n<HTML lang=en>", True),
        ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">', True),
        ("<html>", True),
        ('<p align="center">A README that starts with HTML</p>', False),
        ("<htmlish>", False),
        ("# Markdown", False),
        ("<!-- unclosed", False),
    ],
)
def test_html_is_told_by_how_its_text_starts(start: str, expected: bool) -> None:
    assert is_html(start) is expected


def test_a_markdown_file_with_html_inside_stays_markdown() -> None:
    data = b'<p align="center"><img src="logo.png"></p>\n\n# Project\n'
    assert inspected(data).content_type("README.md") == "text/markdown"
    assert inspected(b"<!doctype html><title>t</title>").content_type("page") == "text/html"
    assert inspected(b"<!doctype html><title>t</title>").charset() == "utf-8"
