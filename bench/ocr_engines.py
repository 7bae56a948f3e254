"""Which OCR engine reads the scans of the corpus (tests/corpus/scanned/) best?

Two engines whose models come from packages, never downloaded at run time:

- Tesseract 5 through tesserocr (libtesseract in the wheel, the English
  model from Debian's ``tesseract-ocr-eng``: ``make tesseract``), at 200 and
  300 dpi;
- RapidOCR on ONNX Runtime (``rapidocr-onnxruntime`` 1.4.4, PP-OCRv4 models
  inside its wheel), run with ``uv run --with`` in an environment of its own
  (opencv and onnxruntime are not the extractor's dependencies).

Each engine reads each page in a process of its own, with one thread (as in
the sandbox, which forbids threads). Measured: word recall on ``linn.pdf``
(the share of ``linn.txt``'s distinct words of 4+ letters, case-insensitive,
found in the OCR text: tests/support/corpus.py's ``words``), whether
``c02-22.pdf``'s sentence is found, pages per second (model loading apart),
peak memory of the process. Then the extractor's own reading: both scans
through the sandboxed worker (render, Tesseract, chunks), as the service
reads them. Writes bench/results/ocr_engines.json.

    .venv/bin/python bench/ocr_engines.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCANNED = Path(os.environ.get("DOCFLOW_CORPUS_DIR") or HERE.parent / "tests" / "corpus") / "scanned"
SENTENCE = "we went tip-toeing along a path amongst the trees"
RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
ROUNDS = 3


def words(text: str) -> set[str]:
    """As tests/support/corpus.py: distinct words of four or more letters, lower case."""
    return set(re.findall(r"[^\W\d_]{4,}", text.lower()))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(engine: str, dpi: int) -> None:
    """Read every scan ``ROUNDS`` times; print one JSON line of what was measured."""
    import pypdfium2

    pictures = []
    for path in sorted(SCANNED.glob("*.pdf")):
        pdf = pypdfium2.PdfDocument(path)
        for index in range(len(pdf)):
            bitmap = pdf[index].render(scale=dpi / 72, grayscale=True)
            pictures.append((path.name, bitmap.to_pil()))
    started = time.perf_counter()
    if engine == "tesseract":
        import tesserocr

        from docflow_extractor.adapters.ocr_tesseract import find_tessdata

        api = tesserocr.PyTessBaseAPI(path=f"{find_tessdata()}/", lang="eng")

        def read(picture: Any) -> str:
            api.SetImage(picture)
            return str(api.GetUTF8Text())

    else:
        import numpy
        from rapidocr_onnxruntime import RapidOCR

        ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

        def read(picture: Any) -> str:
            result, _ = ocr(numpy.array(picture.convert("RGB")))
            return "\n".join(line[1] for line in result or [])

    loaded = time.perf_counter()
    cpu_before = _cpu_s()
    texts: dict[str, str] = {}
    for _ in range(ROUNDS):
        for name, picture in pictures:
            texts.setdefault(name, read(picture))
    done = time.perf_counter()
    cpu = _cpu_s() - cpu_before
    pages = len(pictures) * ROUNDS
    print(
        json.dumps(
            {
                "load_s": round(loaded - started, 3),
                "pages": pages,
                "pages_per_s": round(pages / (done - loaded), 3),
                # CPU time: what a loaded machine (other processes) does not change.
                "cpu_s_per_page": round(cpu / pages, 2),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                "texts": texts,
            }
        )
    )


def _measure(engine: str, dpi: int) -> dict[str, Any]:
    script = [str(Path(__file__).resolve()), "--child", engine, "--dpi", str(dpi)]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1"}
    if engine == "tesseract":
        command = [sys.executable, *script]
    else:
        uv = HERE.parent / ".cache" / "tools" / "bin" / "uv"
        command = [
            str(uv), "run", "--no-project", "--python", sys.executable,
            "--with", RAPIDOCR, "--with", "pypdfium2", "python", *script,
        ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        return {"engine": engine, "dpi": dpi, "error": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    texts = result.pop("texts")
    wanted = words((SCANNED / "linn.txt").read_text(encoding="utf-8"))
    found = words(texts.get("linn.pdf", ""))
    sentence = " ".join(texts.get("c02-22.pdf", "").lower().split())
    return {
        "engine": engine,
        "dpi": dpi,
        "linn_recall": round(len(found & wanted) / len(wanted), 3),
        "c02_22_sentence_found": SENTENCE in sentence,
        **result,
    }


def _extractor() -> dict[str, Any]:
    """Both scans read by the service's own path: the sandboxed worker, OCR and chunks."""
    from docflow_extractor.adapters.ocr_tesseract import find_tessdata
    from docflow_extractor.adapters.sandbox import open_sandboxed
    from docflow_extractor.domain.ocr import OcrPolicy, OcrStarted

    seconds, pages, text = 0.0, 0, ""
    for _ in range(ROUNDS):
        for path in sorted(SCANNED.glob("*.pdf")):
            started = time.perf_counter()
            with path.open("rb") as stream:
                document = open_sandboxed(
                    stream, "application/pdf", ocr=OcrPolicy(), tessdata=str(find_tessdata())
                )
                items = list(document.pieces())
            seconds += time.perf_counter() - started
            pages += sum(isinstance(item, OcrStarted) for item in items)
            if path.name == "linn.pdf":
                text = "\n".join(
                    p.text for item in items if not isinstance(item, OcrStarted) for p in item
                )
    wanted = words((SCANNED / "linn.txt").read_text(encoding="utf-8"))
    return {
        "what": "the extractor's sandboxed worker (300 dpi, Tesseract, chunking), per document",
        "pages": pages,
        "pages_per_s": round(pages / seconds, 3),
        "linn_recall_in_chunks": round(len(words(text) & wanted) / len(wanted), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", choices=["tesseract", "rapidocr"])
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dpi)
        return
    sys.path.insert(0, str(HERE))
    from harness import write_report

    engines = [_measure("tesseract", 300), _measure("tesseract", 200), _measure("rapidocr", 300)]
    for row in engines:
        print(json.dumps(row))
    extractor = _extractor()
    print(json.dumps(extractor))
    write_report(
        "ocr_engines",
        {"rounds": ROUNDS, "engines": engines, "extractor": extractor},
    )


if __name__ == "__main__":
    main()
