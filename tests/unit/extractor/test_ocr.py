"""OCR of PDF pages without a text layer (domain/ocr.py, Tesseract in the sandbox):
the scans of the corpus read, text layers never OCR'd, hostile pictures bounded."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pypdfium2
import pytest

from docflow_extractor.adapters.ocr_tesseract import (
    TesseractEngine,
    find_tessdata,
    missing_languages,
)
from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.bootstrap import ocr_models
from docflow_extractor.domain.chunking import Chunking
from docflow_extractor.domain.cutting import InProcess
from docflow_extractor.domain.documents import Document
from docflow_extractor.domain.ocr import (
    GreyPicture,
    OcrDocument,
    OcrPolicy,
    OcrStarted,
    render,
    render_scale,
    with_ocr,
)
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode
from support import hostile
from support.corpus import CORPUS, words

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
LIMITS = SandboxLimits(memory_bytes=768 * MiB, wall_clock_s=120)
TESSDATA = find_tessdata()
SCANNED = CORPUS / "scanned"


def tessdata() -> str:
    assert TESSDATA is not None, "Tesseract's models are missing: make tesseract"
    return str(TESSDATA)


def read(data: bytes | Path, policy: OcrPolicy | None = None) -> list[list[str] | OcrStarted]:
    """What the sandboxed worker sent: each page's chunk texts, and the OCR notices."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data.open("rb")
    with stream:
        document = open_sandboxed(
            stream, "application/pdf", None, LIMITS, ocr=policy or OcrPolicy(), tessdata=tessdata()
        )
        return [
            item if isinstance(item, OcrStarted) else [piece.text for piece in item]
            for item in document.pieces()
        ]


def text_of(items: list[list[str] | OcrStarted]) -> str:
    return "\n".join(text for item in items if isinstance(item, list) for text in item)


def test_a_scanned_page_is_read_by_ocr_in_the_sandbox_and_announced_first() -> None:
    items = read(SCANNED / "c02-22.pdf")
    assert items[0] == OcrStarted(1)
    text = " ".join(text_of(items).split())
    assert "We went tip-toeing along a path amongst the trees" in text


def test_ocr_finds_nine_tenths_of_the_words_of_the_transcribed_scan() -> None:
    found = words(text_of(read(SCANNED / "linn.pdf")))
    wanted = words((SCANNED / "linn.txt").read_text(encoding="utf-8"))
    assert len(found & wanted) / len(wanted) >= 0.9


def test_a_photograph_without_writing_gives_no_text_after_ocr() -> None:
    items = read(CORPUS / "pdf" / "cmyk-image.pdf")
    assert items[0] == OcrStarted(1)
    assert text_of(items) == ""


class _NeverCalled:
    def read(self, picture: GreyPicture) -> str:
        raise AssertionError("a page with a text layer was OCR'd")


def test_pages_with_a_text_layer_are_never_ocrd() -> None:
    path = CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"
    reading = InProcess(
        Chunking(),
        ocr=lambda document, stream: with_ocr(document, stream, OcrPolicy(), _NeverCalled),
    )
    with path.open("rb") as stream:
        items = list(reading(stream, "application/pdf").pieces())
    assert not any(isinstance(item, OcrStarted) for item in items)
    assert sum(len(item) for item in items if isinstance(item, list)) > 100


@pytest.mark.parametrize(
    ("text", "ocr"),
    [
        ("", True),
        ("  \n 12 \n", True),
        ("Page 12 of 200", True),
        ("A line of real text, at last.", False),
    ],
)
def test_a_page_is_ocrd_when_its_text_layer_has_fewer_than_16_letters_or_digits(
    text: str, ocr: bool
) -> None:
    assert OcrPolicy().needs_ocr(text) is ocr


def test_no_languages_means_no_ocr() -> None:
    document = _document_of(1)
    assert with_ocr(document, io.BytesIO(), OcrPolicy(languages=""), _NeverCalled) is document


def test_a_page_30_inches_wide_is_rendered_at_a_lower_resolution_within_the_pixel_limit() -> None:
    policy = OcrPolicy()
    assert render_scale(612, 792, policy) == pytest.approx(300 / 72)  # a letter page: 300 dpi
    scale = render_scale(30 * 72, 30 * 72, policy)
    assert scale < 300 / 72
    pdf = pypdfium2.PdfDocument(hostile.picture_page((64, 64), (30 * 72, 30 * 72)))
    picture = render(pdf, 1, policy)
    assert picture.width * picture.height <= policy.max_pixels
    assert picture.width >= 4900  # still some 165 dpi: text stays readable


@pytest.mark.parametrize(
    "build",
    [
        # 1.2 GB of pixels in 1.2 MB of file, on a letter page.
        lambda: hostile.picture_page((35000, 35000), (612, 792)),
        # The largest page PDF allows: 200 inches square.
        lambda: hostile.picture_page((64, 64), (14400, 14400)),
        # Thousands of tiny pictures, each an object of its own.
        lambda: hostile.many_pictures(5000),
    ],
    ids=["35000x35000-picture", "200-inch-page", "5000-tiny-pictures"],
)
def test_hostile_pictures_end_within_the_limits(build: Callable[[], bytes]) -> None:
    data = build()
    started = time.monotonic()
    items = read(data)
    assert time.monotonic() - started < 60
    assert items[0] == OcrStarted(1)
    assert text_of(items) == ""


def test_the_models_of_every_configured_language_must_be_installed() -> None:
    assert missing_languages("eng", TESSDATA) == []
    assert missing_languages("eng+xyz", TESSDATA) == ["xyz"]
    with pytest.raises(ValueError, match="tesseract-ocr-xyz"):
        ocr_models(ExtractorSettings(ocr_languages="eng+xyz"))
    assert ocr_models(ExtractorSettings(ocr_languages="")) == ""
    assert ocr_models(ExtractorSettings()) == tessdata()


def test_ocr_document_keeps_the_page_count() -> None:
    document = OcrDocument(_document_of(2), io.BytesIO(), OcrPolicy(), _NeverCalled)
    assert document.page_count == 2


def _document_of(count: int) -> Document:
    class _Pages:
        page_count = count

        def pages(self) -> Iterator[object]:
            yield from ()

    return _Pages()  # type: ignore[return-value]


def test_a_tesseract_that_cannot_load_its_model_fails_the_document_with_a_reason(
    tmp_path: Path,
) -> None:
    with pytest.raises(DocumentError) as failed:
        TesseractEngine("eng", tmp_path)
    assert failed.value.code is ErrorCode.INTERNAL
    assert "OCR could not start" in failed.value.message
