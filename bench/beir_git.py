"""A BEIR collection rebuilt from a file in a public git repository, for when
BEIR's own zip cannot be downloaded: the file is fetched with git at a pinned
commit, checked against its SHA-256, converted to BEIR's layout
(``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) and every file
written is checked against its pinned SHA-256 too, so what is measured is
the same bytes wherever it is rebuilt.

SciFact (Wadden et al., EMNLP 2020; CC BY-NC 2.0, non-commercial use): the
repository sumithra-p-v/claimverifier commits ``data/scifact.zip``, the
Hugging Face dataset ``allenai/scifact`` written out as CSV (the corpus, and
the claims of its train, validation and test splits). BEIR's SciFact is that
corpus (5,183 abstracts; a document's text is its abstract's sentences joined
by one space, its title the paper's), with the train claims as its train
queries and the validation claims as its test queries, each judged relevant
to the abstracts it cites (``cited_doc_ids``, grade 1): 300 test queries,
339 judgements; 809 train queries, 919 judgements. The queries and both
qrels files this writes were compared with BEIR's own (committed by
Kirloxious/CSI4107_Assignment2): same query texts, same judgements.

    make beir BEIR_SOURCE=https://github.com/sumithra-p-v/claimverifier
    .venv/bin/python bench/beir_git.py --into DIR  # only rebuild and check it, into DIR
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import subprocess
import tempfile
import tokenize
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitSource:
    """Where a collection's raw file lies in a public git repository, and the
    SHA-256 of that file and of every file rebuilt from it."""

    name: str  # the collection
    repository: str  # its public URL (a local clone or mirror of it does as well)
    commit: str
    path: str  # the file inside the repository at ``commit``
    sha256: str  # of that file
    built: dict[str, str]  # file written (relative path): its SHA-256
    test_judgements: int


SCIFACT = GitSource(
    name="scifact",
    repository="https://github.com/sumithra-p-v/claimverifier",
    commit="b42f1c3444b28884ddcfadffafbfe223646c6c37",
    path="data/scifact.zip",
    sha256="a798a7046af0f6fa04476448459ce7cafeea5bd90d4d99c53a0e27dc5e1a4673",
    built={
        "corpus.jsonl": "d2d0b03f01859f5392dcfd1cd53179ae3d6fdd1291bfa579b2e34b1665e1cef1",
        "queries.jsonl": "90af8c425d13ebd619fb26f8da4cd46c8aa261e5122ae997fce08f858bef3122",
        "qrels/test.tsv": "68c0ac63f1c24b9e8ce497649694f09b2d0850bab7ec2b103cc66996f5f8b3a3",
        "qrels/train.tsv": "ac0902d9b1cb717df182aaff1306175877fdb8f55bb5c3e8597ad694fc8e539f",
    },
    test_judgements=339,
)
SOURCES = {SCIFACT.name: SCIFACT}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_file(repository: str, commit: str, path: str) -> bytes:
    """The bytes of ``path`` at ``commit`` in ``repository`` (a URL or a local git
    folder, bare or not): only that commit is fetched, into a scratch repository."""
    with tempfile.TemporaryDirectory(prefix="beir-git-") as scratch:

        def git(*args: str) -> bytes:
            done = subprocess.run(
                ["git", "-C", scratch, *args], capture_output=True, check=False, timeout=600
            )
            if done.returncode:
                raise SystemExit(
                    f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}"
                )
            return done.stdout

        git("init", "--bare", "--quiet")
        git("fetch", "--quiet", "--depth", "1", "--no-tags", repository, commit)
        return git("cat-file", "blob", f"{commit}:{path}")


def numpy_strings(cell: str) -> list[str]:
    """The strings of a CSV cell holding a printed numpy array of strings
    (``['First sentence.'\\n 'Second one.']``): each element is a Python string
    literal, read as one (never evaluated as code)."""
    found: list[str] = []
    for token in tokenize.generate_tokens(io.StringIO(cell).readline):
        if token.type == tokenize.STRING:
            value = ast.literal_eval(token.string)
            if not isinstance(value, str):
                raise ValueError(f"not a string: {token.string[:40]!r}")
            found.append(value)
        elif token.type == tokenize.OP and token.string in "[]":
            continue
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER):
            raise ValueError(f"unexpected {token.string[:40]!r} in an array of strings")
    return found


def cited(cell: str) -> list[str]:
    """Document ids of a ``cited_doc_ids`` cell (``[123 456]``)."""
    return cell.strip().strip("[]").replace(",", " ").split()


def jsonl(rows: Iterable[dict[str, object]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def scifact_from_csv(zipped: bytes) -> dict[str, bytes]:
    """BEIR's SciFact files from the Hugging Face ``allenai/scifact`` CSV zip."""
    csv.field_size_limit(1 << 26)
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:

        def table(member: str) -> list[dict[str, str]]:
            text = archive.read(member).decode("utf-8")
            return list(csv.DictReader(io.StringIO(text, newline="")))

        corpus = [
            {
                "_id": row["doc_id"],
                "title": row["title"],
                "text": " ".join(numpy_strings(row["abstract"])),
                "metadata": {},
            }
            for row in table("corpus_train.csv")
        ]
        built = {"corpus.jsonl": jsonl(corpus)}
        queries: dict[str, str] = {}
        for split, member in (("train", "claims_train.csv"), ("test", "claims_validation.csv")):
            pairs: dict[tuple[str, str], None] = {}
            for row in table(member):
                queries.setdefault(row["id"], row["claim"])
                pairs.update(dict.fromkeys((row["id"], d) for d in cited(row["cited_doc_ids"])))
            lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in pairs)]
            built[f"qrels/{split}.tsv"] = ("\n".join(lines) + "\n").encode()
    built["queries.jsonl"] = jsonl(
        {"_id": q, "text": t, "metadata": {}} for q, t in queries.items()
    )
    return built


BUILDERS: dict[str, Callable[[bytes], dict[str, bytes]]] = {"scifact": scifact_from_csv}


def rebuild(source: GitSource, repository: str, into: Path) -> dict[str, str]:
    """Fetch ``source``'s file from ``repository`` (empty: its public URL), check
    it, write the collection into ``into`` and check every file written; the
    SHA-256 of each (``source.path`` included)."""
    raw = git_file(repository or source.repository, source.commit, source.path)
    found = sha256_of(raw)
    if found != source.sha256:
        raise SystemExit(
            f"{source.path} at {source.commit[:12]}: SHA-256 {found}, expected {source.sha256}"
        )
    checked = {source.path: found}
    for relative, data in sorted(BUILDERS[source.name](raw).items()):
        digest = sha256_of(data)
        if source.built and source.built.get(relative) != digest:
            raise SystemExit(
                f"rebuilt {relative}: SHA-256 {digest}, expected {source.built.get(relative)}"
            )
        (into / relative).parent.mkdir(parents=True, exist_ok=True)
        (into / relative).write_bytes(data)
        checked[relative] = digest
    return checked


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=SCIFACT.name, choices=sorted(SOURCES))
    parser.add_argument(
        "--repository", default="", help="its URL or a local clone (default: the pinned URL)"
    )
    parser.add_argument("--into", type=Path, required=True, help="folder to write it into")
    args = parser.parse_args()
    for path, digest in rebuild(SOURCES[args.name], args.repository, args.into).items():
        print(f"{digest}  {path}")


if __name__ == "__main__":
    main()
