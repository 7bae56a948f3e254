"""The test corpus (tests/corpus/) and the outcome each file must reach.

tests/corpus/README.md says what docflow does with each file. Every outcome
it gives is written down here, including those docflow does not reach yet:
those carry the issue that will deliver them (``pending``), and the tests
that check them expect them to fail (``marks``: ``xfail(strict=True)``), so
that today's files still fail loudly and the day a later outcome is reached
the test fails until its tag is removed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The repository's own copy unless told otherwise (DOCFLOW_CORPUS_DIR).
CORPUS = Path(os.environ.get("DOCFLOW_CORPUS_DIR") or REPO_ROOT / "tests" / "corpus").resolve()

# Later work (issue 22, "Read what people actually upload: scanned pages
# (OCR), Word, PowerPoint, Excel…"): what the README asks of these files
# that docflow does not do yet. (Scanned pages and Office files are read since
# issue 22.)
# test.pptx holds test.docx's abstract too. Embedded as text alone, the
# slide's chunk scored 0.770 against the Word chunk's 0.768 for the Word
# file's sentence (all-MiniLM-L6-v2); with each chunk's title and headings in
# what is embedded (issue 24), the Word chunk scores 0.768 against 0.765. In
# hybrid search the slide is first by keywords, so the two would tie; the
# fusion breaks such ties by meaning (adapters/qdrant_queries.py).

# Damaged beyond what pypdf ("Invalid object in /Pages") or PDFium recovers:
# the corpus README allows `failed`/`corrupt` for such files. Measured, not
# guessed: every other unencrypted PDF of the corpus opens.
CORRUPT = frozenset({"unreadablemetadata.pdf"})
# Pictures without any writing: `completed` with no chunks.
IMAGE_ONLY = frozenset(
    {
        "cmyk-image.pdf",
        "grayscale-image.pdf",
        "imagemagick-ASCII85Decode.pdf",
        "imagemagick-CCITTFaxDecode.pdf",
        "imagemagick-lzw.pdf",
    }
)
# Texts whose search finds the file first (the README's, word for word).
FOUND_BY = {
    "c02-22.pdf": ("we went tip-toeing along a path amongst the trees",),
    "test.docx": (
        "AutoGen is an open-source framework that allows developers to build LLM "
        "applications via multiple agents",
    ),
    "test.pptx": (
        "AutoGen agents are customizable, conversable, and can operate in various modes",
    ),
    "test_blog.html": (
        "the tuned gpt-3.5-turbo model vastly outperformed untuned gpt-4 in accuracy",
    ),
    "test.epub": ("This is a test paragraph with some formatting",),
}
# Texts one chunk of the file holds together: a cell with its row's column names.
IN_ONE_CHUNK = {
    "test.xlsx": (("affc7dad-52dc-4b98-9b5d-51e65d8a8ad0", "ColA", "ColB", "ColC", "ColD"),),
}
# Texts no chunk of the file holds: the page's scripts.
IN_NO_CHUNK = {"test_blog.html": ("localStorage.getItem",)}
# Of a transcript's distinct words of four or more letters, the share the chunks hold.
TRANSCRIPT_SHARE = 0.9


@dataclass(frozen=True)
class Expected:
    path: Path
    status: str
    error_code: str | None = None
    pages: int | None = None
    has_chunks: bool | None = None
    found_by: tuple[str, ...] = ()
    in_one_chunk: tuple[tuple[str, ...], ...] = ()
    in_no_chunk: tuple[str, ...] = ()
    # A transcript of the file: TRANSCRIPT_SHARE of its words are in the chunks.
    transcript: Path | None = None
    # The issue that delivers this file's outcome; None: docflow reaches it today.
    pending: str | None = None
    # For a file without text: the issue that makes its message say what the
    # README asks (none today: it says OCR found no text either).
    message_pending: str | None = None
    # Why a search for ``found_by`` does not find the file first yet.
    search_pending: str | None = None

    @property
    def checks_chunks(self) -> bool:
        """Whether the README says what the file's chunks hold."""
        return bool(self.in_one_chunk or self.in_no_chunk or self.transcript)


def marks(pending: str | None) -> list[pytest.MarkDecorator]:
    """What a test of an outcome that ``pending`` will deliver is marked with.

    Strict: the test fails the day the outcome is reached, until the tag goes.
    AssertionError only: a test that crashes fails, whatever the tag.
    """
    if pending is None:
        return []
    return [pytest.mark.xfail(strict=True, raises=AssertionError, reason=pending)]


def params(expected: Iterable[Expected]) -> list[object]:
    """``expected`` as pytest parameters named by file, marked by their ``pending``."""
    return [pytest.param(e, id=e.path.name, marks=marks(e.pending)) for e in expected]


def words(text: str) -> set[str]:
    """The distinct words of four or more letters in ``text``, in lower case."""
    return set(re.findall(r"[^\W\d_]{4,}", text.lower()))


def expectations() -> list[Expected]:
    """Every corpus file with the outcome tests/corpus/README.md gives for it."""
    meta = {
        Path(entry["path"]).name: entry
        for entry in json.loads((CORPUS / "pdf" / "files.json").read_text())["data"]
    }
    out: list[Expected] = []
    for path in sorted((CORPUS / "pdf").glob("*.pdf")):
        info = meta[path.name]
        if info["encrypted"]:
            out.append(Expected(path, "failed", error_code="encrypted"))
        elif path.name in CORRUPT:
            out.append(Expected(path, "failed", error_code="corrupt"))
        elif path.name in IMAGE_ONLY:
            out.append(
                Expected(
                    path,
                    "completed",
                    pages=info["pages"],
                    has_chunks=False,
                )
            )
        else:
            out.append(Expected(path, "completed", pages=info["pages"], has_chunks=True))
    for path in sorted((CORPUS / "markdown").glob("*.md")):
        out.append(Expected(path, "completed", has_chunks=True))
    for path in sorted((CORPUS / "scanned").glob("*.pdf")):
        transcript = path.with_suffix(".txt")
        out.append(
            Expected(
                path,
                "completed",
                has_chunks=True,
                found_by=FOUND_BY.get(path.name, ()),
                transcript=transcript if transcript.is_file() else None,
            )
        )
    for path in sorted((CORPUS / "office").iterdir()):
        if path.name == "SOURCES.md":
            continue
        out.append(
            Expected(
                path,
                "completed",
                has_chunks=True,
                found_by=FOUND_BY.get(path.name, ()),
                in_one_chunk=IN_ONE_CHUNK.get(path.name, ()),
                in_no_chunk=IN_NO_CHUNK.get(path.name, ()),
            )
        )
    return out
