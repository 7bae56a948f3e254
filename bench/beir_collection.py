"""A BEIR test collection: where it is kept, how it is installed and read, and how
search results are scored against its relevance judgements.

BEIR (Thakur et al., 2021) publishes each collection as one zip holding
``<name>/corpus.jsonl`` (``_id``, ``title``, ``text``), ``<name>/queries.jsonl``
(``_id``, ``text``) and ``<name>/qrels/<split>.tsv`` (``query-id``,
``corpus-id``, ``score``), with the zip's MD5 in its README. ``install``
checks that MD5 before unpacking into ``.cache/beir/<name>`` (git-ignored),
once: ``make beir BEIR_NAME=nfcorpus BEIR_SOURCE=path/to/nfcorpus.zip``.
Where BEIR's zip cannot be had, ``install_git`` rebuilds the collection from
a pinned file in a public git repository (bench/beir_git.py; SciFact, the
default): ``make beir BEIR_SOURCE=git`` (or the repository's URL, or a local
clone of it).

The scores are trec_eval's (through ir-measures): nDCG@10 and recall@10 over
documents. docflow returns chunks, so each document is ranked by its best
chunk (the highest score of any of its chunks), as BEIR's own dense
retrievers rank a document split into passages (MaxP).

    .venv/bin/python bench/beir_collection.py install --source git [--name scifact]
    .venv/bin/python bench/beir_collection.py install --source nfcorpus.zip --name nfcorpus
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

import beir_git
import ir_measures
from ir_measures import R, nDCG

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "beir"

# The collections this benchmark knows: BEIR's README gives each zip's MD5.
# NFCorpus (Boteva et al., ECIR 2016): 3,633 documents, 323 test queries.
# SciFact (Wadden et al., EMNLP 2020): 5,183 documents, 300 test queries.
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
DEFAULT = "scifact"  # the one that can be rebuilt from a public repository
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
        settle(Path(tmp) / name, name, str(source), f"{found}\n")
    return target


def install_git(repository: str, name: str = DEFAULT) -> Path:
    """Rebuild collection ``name`` from its pinned file in a public git repository
    (``repository``: its URL or a local clone; empty: the URL pinned in
    bench/beir_git.py) into ``.cache/beir/<name>``, every file checked against
    its pinned SHA-256; once."""
    target = folder(name)
    if (target / ".verified").is_file():
        return target
    if name not in beir_git.SOURCES:
        raise SystemExit(f"{name}: no git source is known (known: {sorted(beir_git.SOURCES)})")
    source = beir_git.SOURCES[name]
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        unpacked = Path(tmp) / name
        checked = beir_git.rebuild(source, repository, unpacked)
        mark = "".join(
            [
                f"git {source.repository} {source.commit} {source.path}\n",
                f"fetched from {repository or source.repository}\n",
                *(f"sha256 {digest} {path}\n" for path, digest in checked.items()),
            ]
        )
        settle(unpacked, name, repository or source.repository, mark)
        judgements = sum(len(d) for d in read(target).qrels.values())
        if judgements != source.test_judgements:
            shutil.rmtree(target)
            raise SystemExit(f"{name}: {judgements} test judgements, not {source.test_judgements}")
    return target


def settle(unpacked: Path, name: str, source: str, mark: str) -> None:
    """Check the collection at ``unpacked`` has ``name``'s published counts, mark it
    verified (``mark``: how) and move it to ``.cache/beir/<name>``."""
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
    (unpacked / ".verified").write_text(mark)
    target = folder(name)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(unpacked), target)


def how_to_install(name: str) -> str:
    """What to run to install collection ``name``."""
    ways = [
        f"make beir BEIR_NAME={name} BEIR_SOURCE=path/to/{name}.zip (BEIR's zip, MD5 "
        f"{KNOWN[name]['md5']})"
    ]
    if name in beir_git.SOURCES:
        source = beir_git.SOURCES[name]
        ways.insert(
            0,
            f"make beir BEIR_NAME={name} BEIR_SOURCE=git (rebuilt from {source.path} of "
            f"{source.repository} at {source.commit[:12]}; a local clone's path does too)",
        )
    return " or ".join(ways)


def is_zip(source: str) -> bool:
    return source.endswith(".zip") and Path(source).is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser(
        "install", help="check and unpack BEIR's zip, or rebuild from git, into .cache/beir"
    )
    put.add_argument(
        "--source",
        default="",
        help="BEIR's <name>.zip; or git (the pinned public repository), its URL or a local "
        "clone, to rebuild it from there (bench/beir_git.py); empty: only check",
    )
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
        why = f"{args.name} is not installed in {folder(args.name)}: {how_to_install(args.name)}"
        if args.optional:
            print(f"note: {why}; the retrieval-quality benchmark will say it was not measured")
            return
        sys.exit(why)
    try:
        if is_zip(args.source):
            where = install(Path(args.source), args.name)
        else:
            where = install_git("" if args.source == "git" else args.source, args.name)
    except SystemExit as failed:
        if not args.optional:
            raise
        print(
            f"note: {args.name} could not be installed ({failed}); the retrieval-quality "
            "benchmark will say it was not measured"
        )
        return
    print(f"{args.name}: installed in {where}")


if __name__ == "__main__":
    main()
