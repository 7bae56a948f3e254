"""``python -m docflow_extractor``: run the extractor consumer; ``... ocr``: the OCR
consumer (ocr_stage.py), its own process and Deployment."""

import sys

import uvicorn

from docflow_extractor.bootstrap import bootstrap, bootstrap_ocr
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.serving import run


def main() -> None:
    if sys.argv[1:] == ["ocr"]:
        run("ocr", ExtractorSettings(), bootstrap_ocr, uvicorn.run)
        return
    if sys.argv[1:]:
        sys.exit(f"usage: {sys.argv[0]} [ocr]")
    run("extractor", ExtractorSettings(), bootstrap, uvicorn.run)


if __name__ == "__main__":
    main()
