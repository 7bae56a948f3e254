"""The parser sandbox on hostile files built by the tests: each ends in bounded
time and memory with the outcome it deserves, and nothing outlives it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import InProcess
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode
from support import hostile

MiB = 1024 * 1024
LIMITS = SandboxLimits(memory_bytes=512 * MiB, wall_clock_s=30)


def read(path: Path, limits: SandboxLimits = LIMITS) -> list[str]:
    """The texts of the chunks the worker cut the PDF into."""
    with path.open("rb") as stream:
        document = open_sandboxed(stream, "application/pdf", None, limits)
        return [piece.text for page in document.pieces() for piece in page]


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "hostile.pdf"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("build", "code", "says"),
    [
        (hostile.flate_bomb, ErrorCode.LIMIT_EXCEEDED, "decompressing"),
        (hostile.endless_operators, ErrorCode.LIMIT_EXCEEDED, "tokens per stream"),
        (hostile.deeply_nested, ErrorCode.LIMIT_EXCEEDED, "recursion"),
        (hostile.cyclic_page_tree, ErrorCode.CORRUPT, "cyclic page references"),
    ],
    ids=["flate-bomb", "endless-operators", "deeply-nested", "cyclic-page-tree"],
)
def test_a_hostile_pdf_fails_with_the_limit_it_hit(
    tmp_path: Path, build: Callable[[], bytes], code: ErrorCode, says: str
) -> None:
    with pytest.raises(DocumentError) as failure:
        read(written(tmp_path, build()))
    assert failure.value.code is code
    assert says in failure.value.message


@pytest.mark.parametrize(
    "build",
    [hostile.cyclic_outline, hostile.cyclic_xref],
    ids=["cyclic-outline", "cyclic-xref"],
)
def test_a_loop_the_parser_does_not_follow_does_not_stop_the_text(
    tmp_path: Path, build: Callable[[], bytes]
) -> None:
    assert read(written(tmp_path, build())) == ["A page of honest text"]


def test_a_parse_past_the_time_limit_is_stopped(corpus: Path) -> None:
    # The long corpus PDF takes seconds to read; with a 0.5 s limit it cannot finish.
    with pytest.raises(DocumentError) as failure:
        read(corpus / "pdf" / "GeoTopo-komprimiert.pdf", SandboxLimits(wall_clock_s=0.5))
    assert failure.value.code is ErrorCode.TIMEOUT
    assert "0.5 s" in failure.value.message


def test_a_parse_past_the_memory_limit_is_stopped(corpus: Path) -> None:
    with pytest.raises(DocumentError) as failure:
        read(corpus / "pdf" / "GeoTopo-komprimiert.pdf", SandboxLimits(memory_bytes=64 * MiB))
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "64 MiB" in failure.value.message


def test_a_good_pdf_is_cut_as_without_the_sandbox(corpus: Path) -> None:
    path = corpus / "pdf" / "pdflatex-4-pages.pdf"
    with path.open("rb") as stream:
        document = InProcess(Chunking())(stream, "application/pdf")
        expected = [piece.text for page in document.pieces() for piece in page]
    assert read(path) == expected
    assert len(expected) > 4


def test_a_stream_that_is_not_a_file_is_spooled_for_the_worker() -> None:
    document = open_sandboxed(io.BytesIO(b"# Title\n\ntext"), "text/markdown", None, LIMITS)
    assert [p.text for page in document.pieces() for p in page] == ["# Title\n\ntext"]


def opened(path: Path, limits: SandboxLimits = LIMITS) -> int | None:
    """Read a document through; the pid of the worker that read it."""
    with path.open("rb") as stream:
        document = open_sandboxed(stream, "application/pdf", None, limits)
        with contextlib.suppress(DocumentError):
            list(document.pieces())
        return document.worker_pid


def test_each_document_is_read_by_a_worker_of_its_own_that_is_gone_after(
    corpus: Path, tmp_path: Path
) -> None:
    small = corpus / "pdf" / "pdflatex-4-pages.pdf"
    pids = [opened(small), opened(small), opened(written(tmp_path, hostile.flate_bomb()))]
    assert len(set(pids)) == 3  # never reused: not for the same tenant, nor another's
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
