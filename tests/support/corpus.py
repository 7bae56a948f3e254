"""The shared corpus (../shared/corpus) and the outcome each file must reach."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The corpus sits beside the repository (../shared/corpus) unless told otherwise.
CORPUS = Path(
    os.environ.get("DOCFLOW_CORPUS_DIR") or REPO_ROOT.parent / "shared" / "corpus"
).resolve()

# Damaged beyond what pypdf ("Invalid object in /Pages") or PDFium recovers:
# the corpus README allows `failed`/`corrupt` for such files. Measured, not
# guessed: every other unencrypted PDF of the corpus opens.
CORRUPT = frozenset({"unreadablemetadata.pdf"})
# Scans and pictures without a text layer: `completed` with no chunks.
IMAGE_ONLY = frozenset(
    {
        "cmyk-image.pdf",
        "grayscale-image.pdf",
        "imagemagick-ASCII85Decode.pdf",
        "imagemagick-CCITTFaxDecode.pdf",
        "imagemagick-lzw.pdf",
    }
)


@dataclass(frozen=True)
class Expected:
    path: Path
    status: str
    error_code: str | None = None
    pages: int | None = None
    has_chunks: bool | None = None


def expectations() -> list[Expected]:
    """Every corpus file with the outcome ../shared/corpus/README.md gives for it."""
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
        else:
            out.append(
                Expected(
                    path, "completed", pages=info["pages"], has_chunks=path.name not in IMAGE_ONLY
                )
            )
    for path in sorted((CORPUS / "markdown").glob("*.md")):
        out.append(Expected(path, "completed", has_chunks=True))
    return out
