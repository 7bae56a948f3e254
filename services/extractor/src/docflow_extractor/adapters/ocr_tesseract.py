"""Tesseract, the OCR engine: in-process through tesserocr, models from Debian's packages.

tesserocr's wheel carries libtesseract (built without OpenMP: it starts no
threads, which the sandbox forbids); the language models (``eng.traineddata``
…) are Debian's ``tesseract-ocr-*`` packages (``make tesseract``, the
extractor's image), found in ``/usr/share/tesseract-ocr/*/tessdata`` unless
``DOCFLOW_OCR_TESSDATA`` names the folder. Nothing is downloaded, ever.
Chosen over RapidOCR on ONNX Runtime by measurement (bench/ocr_engines.py,
BENCHMARKS.md): better word recall on the scans of the corpus (0.993 against
0.963), a seventh of the CPU per page and a fifth of the memory.
"""

from __future__ import annotations

from pathlib import Path

import tesserocr

from docflow_extractor.domain.ocr import GreyPicture
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode

_DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr")


def find_tessdata(configured: str | None = None) -> Path | None:
    """The folder of language models: ``configured``, else Debian's newest, else ``None``."""
    if configured:
        return Path(configured)
    found = sorted(_DEBIAN_TESSDATA.glob("*/tessdata"))
    return found[-1] if found else None


def missing_languages(languages: str, tessdata: Path | None) -> list[str]:
    """The language packs of ``languages`` ("eng+deu") that ``tessdata`` does not hold."""
    wanted = [lang for lang in languages.split("+") if lang]
    if tessdata is None:
        return wanted
    return [lang for lang in wanted if not (tessdata / f"{lang}.traineddata").is_file()]


class TesseractEngine:
    """One Tesseract instance, loaded once and used for every page of a document."""

    def __init__(self, languages: str, tessdata: Path) -> None:
        try:
            # Trailing separator: Tesseract appends the file name to the path as given.
            self._api = tesserocr.PyTessBaseAPI(
                path=f"{tessdata}/", lang=languages, psm=tesserocr.PSM.AUTO
            )
        except RuntimeError as exc:
            raise DocumentError(
                ErrorCode.INTERNAL,
                f"OCR could not start: Tesseract could not load {languages} from {tessdata} "
                f"({exc}); retry the document once the extractor's OCR models are installed",
            ) from exc

    def read(self, picture: GreyPicture) -> str:
        self._api.SetImageBytes(picture.pixels, picture.width, picture.height, 1, picture.stride)
        text = self._api.GetUTF8Text()
        return text if isinstance(text, str) else ""
