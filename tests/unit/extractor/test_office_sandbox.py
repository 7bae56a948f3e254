"""Hostile Word, Excel and EPUB containers in the parser sandbox: each fails alone,
``limit_exceeded`` naming its limit, and the next document is read as usual."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import mammoth
import pytest

from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.domain.containers import ContainerLimits, open_container
from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType, ErrorCode
from support import hostile_containers as hostile

MiB = 1024 * 1024
LIMITS = SandboxLimits(memory_bytes=512 * MiB, wall_clock_s=60)
DOCX: ContentType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX: ContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def read(data: bytes, content_type: ContentType = DOCX) -> list[str]:
    document = open_sandboxed(io.BytesIO(data), content_type, None, LIMITS)
    return [piece.text for page in document.pieces() for piece in page]


@pytest.mark.parametrize(
    ("build", "content_type", "says"),
    [
        (hostile.billion_laughs_docx, DOCX, "entity expansion"),
        (hostile.zip_bomb_docx, DOCX, "DOCFLOW_MAX_UNPACKED_BYTES"),
        (hostile.many_images_docx, DOCX, "DOCFLOW_MAX_CONTAINER_ENTRIES"),
        (hostile.million_cells_xlsx, XLSX, "DOCFLOW_MAX_SHEET_CELLS"),
    ],
    ids=["billion-laughs", "zip-bomb", "10000-images", "million-cells"],
)
def test_a_hostile_container_fails_alone_with_the_limit_it_hit(
    build: Callable[[], bytes], content_type: ContentType, says: str
) -> None:
    data = build()
    started = time.monotonic()
    with pytest.raises(DocumentError) as failure:
        read(data, content_type)
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert says in failure.value.message
    assert time.monotonic() - started < LIMITS.wall_clock_s
    # The next document is read as usual.
    assert read(hostile.honest_docx()) == ["A paragraph of honest text"]


def test_the_limits_are_settings() -> None:
    small = ContainerLimits(max_entries=2)
    with pytest.raises(DocumentError, match="more than the limit of 2"):
        open_container(io.BytesIO(hostile.honest_docx()), small)
    open_container(io.BytesIO(hostile.honest_docx()), ContainerLimits(max_entries=3))


def test_mammoths_own_xml_parser_refuses_entity_expansion_too() -> None:
    # Behind the check for DTDs: the expat that mammoth parses with stops
    # an expansion of this size by itself (its amplification limit).
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)amplification|entit"):
        mammoth.convert_to_html(io.BytesIO(hostile.billion_laughs_docx()))
    assert time.monotonic() - started < 10


def test_an_entry_that_holds_more_than_it_declares_is_stopped_at_its_declared_size() -> None:
    with pytest.raises(
        DocumentError, match=r"Bad CRC-32 for file 'word/media/liar\.bin'"
    ) as failure:
        read(hostile.lying_sizes_docx())
    assert failure.value.code is ErrorCode.CORRUPT
