"""The retrieval-quality benchmark's own logic: chunks mapped back to documents,
the scores against hand-made judgements, the collection read and checked, and
whether the gateway offers ``mode`` on /v1/search (bench/retrieval_quality.py)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import zipfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Literal

import httpx
import pytest
from fastapi import FastAPI, Query

from support.threaded import serving

BENCH = Path(__file__).resolve().parents[3] / "bench"

pytestmark = pytest.mark.unit


class Mode(StrEnum):
    """Search modes as a Python Enum (OpenAPI puts it behind a $ref)."""

    hybrid = "hybrid"
    dense = "dense"
    keyword = "keyword"


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        import beir_collection
        import retrieval_quality

        yield beir_collection, retrieval_quality
    finally:
        sys.path.remove(str(BENCH))


def test_each_document_is_ranked_by_its_best_chunk(bench: tuple[ModuleType, ModuleType]) -> None:
    beir, _ = bench
    hits = [
        {"document_id": "u-x", "score": 0.95},  # not one of the collection's uploads
        {"document_id": "u-a", "score": 0.9},
        {"document_id": "u-c", "score": 0.8},
        {"document_id": "u-b", "score": 0.7},
        {"document_id": "u-a", "score": 0.5},  # A's second chunk: A keeps 0.9
        {"document_id": "u-b", "score": 0.75},  # B's better chunk comes later
    ]
    ids = {"u-a": "A", "u-b": "B", "u-c": "C"}
    assert beir.best_per_document(hits, ids) == {"A": 0.9, "C": 0.8, "B": 0.75}
    assert list(beir.best_per_document(hits, ids, depth=2)) == ["A", "C"]


def test_scores_match_a_hand_computed_ndcg_and_recall(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    beir, _ = bench
    qrels = {"q1": {"A": 2, "B": 1}, "q2": {"D": 1}}
    # q1 ranks A, C (not relevant), B; q2 gets nothing at all.
    run = {"q1": {"A": 0.9, "C": 0.8, "B": 0.75}}
    ndcg_q1 = (2 / math.log2(2) + 1 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    scores = beir.evaluate(qrels, run)
    assert scores == {"ndcg_at_10": round(ndcg_q1 / 2, 4), "recall_at_10": 0.5}
    # A perfect ranking scores 1.
    assert beir.evaluate(qrels, {"q1": {"A": 2.0, "B": 1.0}, "q2": {"D": 1.0}}) == {
        "ndcg_at_10": 1.0,
        "recall_at_10": 1.0,
    }


def beir_zip(path: Path, name: str) -> Path:
    """A collection in BEIR's layout: two documents, one judged query, one unjudged."""
    corpus = [
        {"_id": "MED-1", "title": "Vitamin D", "text": "Sunlight and bones."},
        {"_id": "MED-2", "title": "", "text": "Fibre and the gut."},
    ]
    queries = [{"_id": "PLAIN-1", "text": "bones"}, {"_id": "PLAIN-2", "text": "unjudged"}]
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr(f"{name}/corpus.jsonl", "\n".join(map(json.dumps, corpus)) + "\n")
        zipped.writestr(f"{name}/queries.jsonl", "\n".join(map(json.dumps, queries)) + "\n")
        zipped.writestr(f"{name}/qrels/test.tsv", "query-id\tcorpus-id\tscore\nPLAIN-1\tMED-1\t2\n")
    return path


def test_a_collection_is_read_and_its_uploads_keep_the_beir_id(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    beir, _ = bench
    with zipfile.ZipFile(beir_zip(tmp_path / "tiny.zip", "tiny")) as zipped:
        zipped.extractall(tmp_path)
    collection = beir.read(tmp_path / "tiny")
    assert collection.documents == {
        "MED-1": ("Vitamin D", "Sunlight and bones."),
        "MED-2": ("", "Fibre and the gut."),
    }
    assert collection.queries == {"PLAIN-1": "bones"}  # the unjudged query is left out
    assert collection.qrels == {"PLAIN-1": {"MED-1": 2}}
    assert beir.as_markdown("Vitamin D", "Sunlight.") == "# Vitamin D\n\nSunlight.\n"
    assert beir.upload_name("MED-1") == "MED-1.md"
    assert beir.upload_name("a/../b c") == "a_.._b_c.md"


def test_install_refuses_a_zip_whose_md5_is_not_beirs(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beir, _ = bench
    monkeypatch.setattr(beir, "CACHE", tmp_path / "cache" / "beir")
    (tmp_path / "cache").mkdir()
    with pytest.raises(
        SystemExit, match=r"MD5 [0-9a-f]{32}, but BEIR's nfcorpus\.zip has a89dba18"
    ):
        beir.install(beir_zip(tmp_path / "nfcorpus.zip", "nfcorpus"), "nfcorpus")
    assert not (tmp_path / "cache" / "beir" / "nfcorpus").exists()


def test_the_mode_parameter_is_found_only_where_the_gateway_declares_it(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    _, quality = bench
    with_mode, with_enum, without = FastAPI(), FastAPI(), FastAPI()

    @with_enum.get("/v1/search")
    async def search_enum(q: str, mode: Mode = Mode.hybrid) -> dict[str, str]:
        return {"q": q, "mode": mode.value}

    @with_mode.get("/v1/search")
    async def search(
        q: str, mode: Annotated[Literal["hybrid", "dense", "keyword"], Query()] = "hybrid"
    ) -> dict[str, str]:
        return {"q": q, "mode": mode}

    @without.get("/v1/search")
    async def search_by_meaning(q: str) -> dict[str, str]:
        return {"q": q}

    async def found(port: int) -> dict[str, object]:
        async with httpx.AsyncClient() as http:
            result: dict[str, object] = await quality.search_modes(http, f"http://127.0.0.1:{port}")
            return result

    with serving(with_mode, "gateway with modes") as port:
        assert asyncio.run(found(port)) == {
            "declared": True,
            "values": ["hybrid", "dense", "keyword"],
            "default": "hybrid",
        }
    with serving(with_enum, "gateway with an Enum of modes") as port:
        assert asyncio.run(found(port)) == {
            "declared": True,
            "values": ["hybrid", "dense", "keyword"],
            "default": "hybrid",
        }
    with serving(without, "gateway without modes") as port:
        assert asyncio.run(found(port)) == {"declared": False}


@pytest.mark.parametrize(("hybrid", "met"), [(0.35, True), (0.32, False)])
def test_the_goal_is_met_only_where_hybrid_beats_both_published_figures(
    bench: tuple[ModuleType, ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    hybrid: float,
    met: bool,
) -> None:
    _, quality = bench
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    measured = {"measured": True, "recall_at_10": 0.3, "p50_ms": 50.0, "p99_ms": 90.0}
    result = {
        "collection": "nfcorpus",
        "measured": True,
        "documents": 3633,
        "queries": 323,
        "chunks_per_query": 50,
        "modes": {
            "dense": {**measured, "ndcg_at_10": 0.30},
            "keyword": {"measured": False, "why": "the gateway does not offer it"},
            "hybrid": {**measured, "ndcg_at_10": hybrid},
        },
        "ingestion": {
            "documents": 3633,
            "completed": 3633,
            "failed": 0,
            "chunks": 7000,
            "seconds": 600.0,
            "documents_per_min": 363.3,
        },
        "published": quality.PUBLISHED["nfcorpus"],
    }
    monkeypatch.setattr(report, "load", lambda name: result)
    written = report.Report()
    report.retrieval_quality(written)
    [(_what, goal, figure, verdict)] = written.goals
    assert (goal, verdict) == ("beats both", met)
    assert figure == f"{hybrid} vs 0.325, 0.3143"
    assert "| keyword | — | — | — | — | the gateway does not offer it |" in written.sections[0]


def test_install_unpacks_a_zip_with_the_expected_md5_and_only_its_folder(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beir, _ = bench
    cache = tmp_path / "cache" / "beir"
    monkeypatch.setattr(beir, "CACHE", cache)
    source = beir_zip(tmp_path / "tiny.zip", "tiny")
    with zipfile.ZipFile(source, "a") as zipped:
        zipped.writestr("__MACOSX/tiny/._corpus.jsonl", "resource fork")
        zipped.writestr("tiny/../../escaped.txt", "outside")
    known = {"md5": beir.md5_of(source), "documents": 2, "test_queries": 1}
    monkeypatch.setitem(beir.KNOWN, "tiny", known)
    where = beir.install(source, "tiny")
    assert where == cache / "tiny"
    assert beir.verified_md5(where) == known["md5"]
    assert beir.read(where).queries == {"PLAIN-1": "bones"}
    assert sorted(p.name for p in cache.iterdir()) == ["tiny"]  # no temporary folder left
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not list(tmp_path.rglob("._corpus.jsonl"))
    # Installed once: a second call does not read the source again.
    source.unlink()
    assert beir.install(source, "tiny") == where


def test_only_the_retrieval_section_and_its_goal_row_are_rewritten(
    bench: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report.py --only retrieval_quality``: SciFact's figures, where the collection
    came from and the other split's figures replace the old section and goal row;
    every other line of BENCHMARKS.md stays as it was."""
    _, quality = bench
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    scores = {"measured": True, "recall_at_10": 0.8, "p50_ms": 50.0, "p99_ms": 90.0}
    mark = (
        "git https://example.org/r 0123456789abcdef0123 data/scifact.zip\n"
        "fetched from /somewhere\n"
        "sha256 aaaaaaaaaaaaaaaaaaaaaaaa data/scifact.zip\n"
        "sha256 bbbbbbbbbbbbbbbbbbbbbbbb corpus.jsonl\n"
    )
    result = {
        "machine": {"commit": "abc1234", "date": "2026-12-06 09:30 UTC"},
        "collection": "scifact",
        "collection_verified": mark,
        "measured": True,
        "documents": 5183,
        "queries": 300,
        "chunks_per_query": 50,
        "modes": {
            "dense": {**scores, "ndcg_at_10": 0.64},
            "keyword": {**scores, "ndcg_at_10": 0.66},
            "hybrid": {**scores, "ndcg_at_10": 0.70},
        },
        "other_splits": {
            "train": {"queries": 809, "dense": {"ndcg_at_10": 0.6}, "hybrid": {"ndcg_at_10": 0.7}}
        },
        "ingestion": {
            "documents": 5183,
            "completed": 5183,
            "failed": 0,
            "chunks": 9000,
            "seconds": 900.0,
            "documents_per_min": 345.5,
        },
        "published": quality.PUBLISHED["scifact"],
        "reference": quality.REFERENCES["scifact"],
    }
    monkeypatch.setattr(report, "load", lambda name: result)
    written = report.Report()
    report.retrieval_quality(written)
    before = "\n".join(
        [
            "# docflow benchmarks",
            "",
            "| measure | goal | figure | verdict |",
            "|---|---|---|---|",
            "| OCR word recall | ≥ 0.9 | 0.993 | met |",
            "| Retrieval quality on nfcorpus (BEIR): hybrid nDCG@10 | beats both | — | no goal |",
            "| ETA error | — | 7.72 s | no goal |",
            "",
            "## Retrieval quality (BEIR)",
            "",
            "Not measured: no collection.",
            "",
            "## Estimated completion (ETA) accuracy",
            "",
            "unchanged",
        ]
    )
    after = report.splice(before, written).split("\n")
    assert after[4] == "| OCR word recall | ≥ 0.9 | 0.993 | met |"
    assert after[5].startswith("| Retrieval quality on scifact (BEIR)")
    assert after[5].endswith("| 0.7 vs 0.665, 0.6739 | met |")
    assert after[6] == "| ETA error | — | 7.72 s | no goal |"
    assert "Not measured: no collection." not in after
    section = "\n".join(after[after.index("## Retrieval quality (BEIR)") :])
    assert "| hybrid | 0.7 | 0.8 | 50.0 | 90.0 |  |" in section
    assert "(commit abc1234, 2026-12-06 09:30 UTC)" in section
    assert "rebuilt from data/scifact.zip of https://example.org/r at 0123456789ab" in section
    assert "corpus.jsonl `bbbbbbbbbbbbbbbb…`" in section
    assert "| train | 0.6 | — | 0.7 |" in section
    assert "Qdrant's article" in section
    assert after[-3:] == ["## Estimated completion (ETA) accuracy", "", "unchanged"]
