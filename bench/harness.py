"""What every benchmark in bench/ shares: where the corpus is, and how results are written."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DOCFLOW_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
RESULTS = ROOT / "bench" / "results"


def write_report(name: str, report: dict[str, Any]) -> None:
    """Write ``bench/results/<name>.json`` (with the machine it ran on) and print it."""
    report = {
        "benchmark": name,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **report,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
