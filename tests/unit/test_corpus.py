"""The corpus in the repository and the outcomes support/corpus.py reads from its README."""

from __future__ import annotations

from pathlib import Path

from support.corpus import (
    CORPUS,
    FOUND_BY,
    IN_NO_CHUNK,
    IN_ONE_CHUNK,
    TRANSCRIPT_SHARE,
    expectations,
    marks,
    words,
)

# Files of the corpus that are not documents to send: licences, sources, the
# README, pdf/'s page counts, the transcript of scanned/linn.pdf.
NOT_DOCUMENTS = {"README.md", "LICENSE", "SOURCES.md", "files.json", "linn.txt"}


def test_every_document_of_the_corpus_has_one_expected_outcome(corpus: Path) -> None:
    documents = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in NOT_DOCUMENTS)
    expected = [e.path for e in expectations()]
    assert sorted(expected) == documents
    assert len({p.name for p in expected}) == len(expected), "names are how the tests find files"


def test_the_corpus_is_the_repositorys_own_copy_with_its_licences() -> None:
    # Unless DOCFLOW_CORPUS_DIR points elsewhere, which this test then checks too.
    for notice in ("README.md", "pdf/LICENSE", "scanned/SOURCES.md", "office/SOURCES.md"):
        assert (CORPUS / notice).is_file(), notice


def test_no_file_waits_for_later_work() -> None:
    by_folder: dict[str, set[str | None]] = {}
    for e in expectations():
        by_folder.setdefault(e.path.parent.name, set()).add(e.pending)
    assert by_folder == {"pdf": {None}, "markdown": {None}, "scanned": {None}, "office": {None}}


def test_files_without_text_wait_for_nothing_since_ocr_reads_them() -> None:
    without_text = [e for e in expectations() if e.has_chunks is False]
    assert len(without_text) == 5
    assert all(e.pending is None and e.message_pending is None for e in without_text)


def test_every_text_of_the_readme_belongs_to_a_file_of_the_corpus() -> None:
    names = {e.path.name for e in expectations()}
    assert set(FOUND_BY) | set(IN_ONE_CHUNK) | set(IN_NO_CHUNK) <= names
    readme = " ".join((CORPUS / "README.md").read_text(encoding="utf-8").split())
    for text in [t for texts in FOUND_BY.values() for t in texts]:
        assert text in readme, text


def test_the_transcript_of_linn_is_checked_by_its_words() -> None:
    [linn] = [e for e in expectations() if e.path.name == "linn.pdf"]
    assert linn.transcript is not None
    wanted = words(linn.transcript.read_text(encoding="utf-8"))
    assert len(wanted) > 100
    assert TRANSCRIPT_SHARE == 0.9
    assert words("Tip-toeing 42 trees, TREES; amongst é") == {"toeing", "trees", "amongst"}


def test_pending_outcomes_are_strict_expected_failures() -> None:
    assert marks(None) == []
    reason = "issue 99: a later outcome"
    [mark] = marks(reason)
    assert mark.name == "xfail"
    assert mark.kwargs == {"strict": True, "raises": AssertionError, "reason": reason}


def test_no_search_waits_for_a_better_ranking() -> None:
    # test.docx's did until every chunk carried its document's title (issue 24).
    assert {e.path.name for e in expectations() if e.search_pending} == set()
