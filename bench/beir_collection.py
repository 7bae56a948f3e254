"""A BEIR test collection: where it is kept, how it is installed and read, and how
search results are scored against its relevance judgements.

BEIR (Thakur et al., 2021) publishes each collection as one zip holding
``<name>/corpus.jsonl`` (``_id``, ``title``, ``text``), ``<name>/queries.jsonl``
(``_id``, ``text``) and ``<name>/qrels/<split>.tsv`` (``query-id``,
``corpus-id``, ``score``), with the zip's MD5 in its README. ``install``
checks that MD5 before unpacking into ``.cache/beir/<name>`` (git-ignored),
once: ``make beir BEIR_SOURCE=path/to/nfcorpus.zip``.

The scores are trec_eval's (through ir-measures): nDCG@10 and recall@10 over
documents. docflow returns chunks, so each document is ranked by its best
chunk (the highest score of any of its chunks), as BEIR's own dense
retrievers rank a document split into passages (MaxP).

    .venv/bin/python bench/beir_collection.py install --source nfcorpus.zip [--name nfcorpus]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ir_measures
from ir_measures import R, nDCG

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "beir"

# The collections this benchmark knows: BEIR's README gives each zip's MD5.
# NFCorpus (Boteva et al., ECIR 2016): 3,633 documents, 323 test queries.
KNOWN = {
    "nfcorpus": {
        "md5": "a89dba18a62ef92f7d323ec890a0d38d",
        "documents": 3633,
        "test_queries": 323,
    },
    "scifact": {
        "md5": "5f7d1de60b170fc8027bb7898e2efca1",
        "documents": 5183,
        "test_queries": 300,
    },
}
DEFAULT = "nfcorpus"
MEASURES = {"ndcg_at_10": nDCG @ 10, "recall_at_10": R @ 10}
DEPTH = 10


@dataclass(frozen=True)
class Collection:
    """One BEIR collection's test split, read from its folder."""

    name: str
    documents: dict[str, tuple[str, str]]  # BEIR id: (title, text)
    queries: dict[str, str]  # test queries that have judgements: id: text
    qrels: dict[str, dict[str, int]]  # query id: {document id: grade}


def folder(name: str = DEFAULT) -> Path:
    return CACHE / name


def read(where: Path, split: str = "test") -> Collection:
    """The collection unpacked at ``where``: its documents, and the ``split``'s
    queries with their judgements (queries without any are left out, as BEIR does)."""
    documents: dict[str, tuple[str, str]] = {}
    with (where / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                documents[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    with (where / "qrels" / f"{split}.tsv").open(encoding="utf-8", newline="") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries: dict[str, str] = {}
    with (where / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = row["text"]
    return Collection(where.name, documents, queries, qrels)


def as_markdown(title: str, text: str) -> str:
    """A document as the file uploaded for it: its title as a heading, then its text."""
    return f"# {title.strip()}\n\n{text.strip()}\n" if title.strip() else f"{text.strip()}\n"


def upload_name(document_id: str) -> str:
    """The file name a document is uploaded under: its BEIR id, kept readable."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in document_id)
    return f"{safe}.md"


def best_per_document(
    hits: Iterable[Mapping[str, Any]], beir_id: Mapping[str, str], depth: int = DEPTH
) -> dict[str, float]:
    """Chunk hits (``document_id``, ``score``) as a document ranking: each BEIR
    document scored by its best chunk, the ``depth`` best documents kept.
    Hits of documents not in ``beir_id`` (docflow id: BEIR id) are ignored."""
    best: dict[str, float] = {}
    for hit in hits:
        document = beir_id.get(str(hit["document_id"]))
        if document is not None:
            best[document] = max(best.get(document, float("-inf")), float(hit["score"]))
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]
    return dict(ranked)


def evaluate(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    """nDCG@10 and recall@10 averaged over every judged query (a query with no
    results counts as 0, as trec_eval counts it when the run misses it)."""
    judged = {q: dict(docs) for q, docs in qrels.items()}
    ranked = {q: dict(run.get(q, {})) for q in judged}
    per_query: dict[str, dict[str, float]] = {name: {} for name in MEASURES}
    names = {measure: name for name, measure in MEASURES.items()}
    for metric in ir_measures.iter_calc(list(MEASURES.values()), judged, ranked):
        per_query[names[metric.measure]][metric.query_id] = metric.value
    return {
        name: round(sum(values.get(q, 0.0) for q in judged) / len(judged), 4) if judged else 0.0
        for name, values in per_query.items()
    }


def verified_md5(where: Path) -> str | None:
    """The MD5 of the zip the collection at ``where`` was installed from (None: not
    installed by ``install``, e.g. a folder given by hand)."""
    mark = where / ".verified"
    return mark.read_text().strip() if mark.is_file() else None


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(source: Path, name: str = DEFAULT) -> Path:
    """Unpack BEIR's zip of collection ``name`` into ``.cache/beir/<name>`` after
    checking its MD5 against BEIR's; once (a later call finds it there)."""
    target = folder(name)
    if (target / ".verified").is_file():
        return target
    expected = KNOWN[name]["md5"]
    if not source.is_file():
        raise SystemExit(f"{source}: no such file (BEIR's {name}.zip, MD5 {expected})")
    found = md5_of(source)
    if found != expected:
        raise SystemExit(f"{source}: MD5 {found}, but BEIR's {name}.zip has {expected}")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp, zipfile.ZipFile(source) as zipped:
        # Only the collection's own files (its folder), never a path outside it.
        members = [
            m
            for m in zipped.namelist()
            if m.startswith(f"{name}/") and ".." not in Path(m).parts and not Path(m).is_absolute()
        ]
        zipped.extractall(tmp, members=members)
        unpacked = Path(tmp) / name
        collection = read(unpacked)
        want = KNOWN[name]
        if (len(collection.documents), len(collection.queries)) != (
            want["documents"],
            want["test_queries"],
        ):
            raise SystemExit(
                f"{source}: {len(collection.documents)} documents and "
                f"{len(collection.queries)} test queries, expected {want['documents']} "
                f"and {want['test_queries']}"
            )
        (unpacked / ".verified").write_text(f"{found}\n")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked), target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("install", help="check and unpack BEIR's zip into .cache/beir")
    put.add_argument("--source", default="", help="BEIR's <name>.zip (empty: only check)")
    put.add_argument("--name", default=DEFAULT, choices=sorted(KNOWN))
    put.add_argument(
        "--optional",
        action="store_true",
        help="without a source or an installed copy, say so and exit 0",
    )
    args = parser.parse_args()
    if (folder(args.name) / ".verified").is_file():
        print(f"{args.name}: installed in {folder(args.name)}")
        return
    if not args.source:
        why = (
            f"{args.name} is not installed in {folder(args.name)}: give BEIR's {args.name}.zip "
            f"(MD5 {KNOWN[args.name]['md5']}), e.g. make beir BEIR_SOURCE=path/{args.name}.zip"
        )
        if args.optional:
            print(f"note: {why}; the retrieval-quality benchmark will say it was not measured")
            return
        sys.exit(why)
    print(f"{args.name}: installed in {install(Path(args.source), args.name)}")


if __name__ == "__main__":
    main()
