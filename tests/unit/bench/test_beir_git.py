"""A BEIR collection rebuilt from a pinned file in a git repository
(bench/beir_git.py, ``install --source <repository>``): fetched with git from a
repository made here, converted to BEIR's layout, every file checked against
its pinned SHA-256 and the collection's counts."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    sys.path.insert(0, str(BENCH))
    try:
        import beir_collection
        import beir_git

        yield beir_collection, beir_git
    finally:
        sys.path.remove(str(BENCH))


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


CLAIMS = ["id", "claim", "evidence_doc_id", "evidence_label", "evidence_sentences", "cited_doc_ids"]


def scifact_csv_zip() -> bytes:
    """The shape of the Hugging Face allenai/scifact CSV dump: abstracts printed as
    numpy arrays of strings, claims one row per evidence, cited ids as ``[1 2]``."""
    corpus = [
        [
            "11",
            "Bones and sunlight.",
            "['Vitamin D is made in skin.'\n \"It's needed for bones.\"]",
        ],
        ["22", "Gut fibre.", "['Fibre feeds gut bacteria.']"],
        ["33", "Unrelated.", "['Nothing here.' 'Or here.']"],
    ]
    train = [["0", "Sunlight makes vitamin D.", "11", "SUPPORT", "[0]", "[11]"]]
    validation = [
        ["1", "Bones need vitamin D.", "11", "SUPPORT", "[1]", "[11 22]"],
        ["1", "Bones need vitamin D.", "11", "SUPPORT", "[0]", "[11 22]"],
        ["3", "Fibre is useless.", "", "", "[]", "[22]"],
    ]
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zipped:
        zipped.writestr(
            "corpus_train.csv", csv_text(["doc_id", "title", "abstract", "structured"], corpus)
        )
        zipped.writestr("claims_train.csv", csv_text(CLAIMS, train))
        zipped.writestr("claims_validation.csv", csv_text(CLAIMS, validation))
        zipped.writestr("claims_test.csv", csv_text(CLAIMS, []))
    return data.getvalue()


def git(where: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str, bytes]:
    """A git repository holding ``data/scifact.zip``, then a later commit changing it:
    its folder, the first commit and the zip's bytes there."""
    where = tmp_path / "upstream"
    where.mkdir()
    git(where, "init", "--quiet")
    (where / "data").mkdir()
    raw = scifact_csv_zip()
    (where / "data" / "scifact.zip").write_bytes(raw)
    git(where, "add", "data")
    git(where, "commit", "--quiet", "-m", "data")
    pinned = git(where, "rev-parse", "HEAD")
    (where / "data" / "scifact.zip").write_bytes(b"changed later")
    git(where, "commit", "--quiet", "-am", "later")
    return where, pinned, raw


def source_for(beir_git: ModuleType, pinned: str, raw: bytes) -> object:
    return replace(
        beir_git.SCIFACT,
        name="tinyfact",
        repository="unused: the tests give the repository",
        commit=pinned,
        sha256=beir_git.sha256_of(raw),
        built={},
        test_judgements=3,
    )


def test_the_scifact_csv_becomes_beirs_layout(bench: tuple[ModuleType, ModuleType]) -> None:
    _, beir_git = bench
    built = beir_git.scifact_from_csv(scifact_csv_zip())
    assert sorted(built) == ["corpus.jsonl", "qrels/test.tsv", "qrels/train.tsv", "queries.jsonl"]
    assert built["corpus.jsonl"].decode().splitlines()[0] == (
        '{"_id": "11", "title": "Bones and sunlight.", '
        '"text": "Vitamin D is made in skin. It\'s needed for bones.", "metadata": {}}'
    )
    # Validation claims are the test queries, judged by the abstracts they cite,
    # each pair once although the claim has a row per evidence.
    assert built["qrels/test.tsv"] == b"query-id\tcorpus-id\tscore\n1\t11\t1\n1\t22\t1\n3\t22\t1\n"
    assert built["qrels/train.tsv"] == b"query-id\tcorpus-id\tscore\n0\t11\t1\n"
    assert built["queries.jsonl"].decode().count("\n") == 3


def test_an_abstract_cell_is_read_as_string_literals_never_as_code(
    bench: tuple[ModuleType, ModuleType],
) -> None:
    _, beir_git = bench
    assert beir_git.numpy_strings("['a b' \"c'd\"\n 'e\\\\f']") == ["a b", "c'd", "e\\f"]
    with pytest.raises(ValueError, match="unexpected '__import__'"):
        beir_git.numpy_strings("[__import__('os').system('true')]")
    with pytest.raises(ValueError, match=r"unexpected '\.\.\.'"):
        beir_git.numpy_strings("['a' ... 'z']")  # numpy's summary of a long array


def test_install_rebuilds_the_collection_from_the_pinned_commit(
    bench: tuple[ModuleType, ModuleType],
    repository: tuple[Path, str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    beir, beir_git = bench
    where, pinned, raw = repository
    cache = tmp_path / "cache" / "beir"
    monkeypatch.setattr(beir, "CACHE", cache)
    source = source_for(beir_git, pinned, raw)
    built = beir_git.scifact_from_csv(raw)
    source = replace(source, built={p: beir_git.sha256_of(d) for p, d in built.items()})
    monkeypatch.setitem(beir_git.SOURCES, "tinyfact", source)
    monkeypatch.setitem(beir_git.BUILDERS, "tinyfact", beir_git.scifact_from_csv)
    monkeypatch.setitem(beir.KNOWN, "tinyfact", {"md5": "", "documents": 3, "test_queries": 2})

    # The repository is read at the pinned commit, not at its newest one.
    installed = beir.install_git(str(where), "tinyfact")
    assert installed == cache / "tinyfact"
    collection = beir.read(installed)
    assert collection.queries == {"1": "Bones need vitamin D.", "3": "Fibre is useless."}
    assert collection.documents["22"] == ("Gut fibre.", "Fibre feeds gut bacteria.")
    assert beir.read(installed, "train").qrels == {"0": {"11": 1}}
    mark = beir.verified_md5(installed)
    assert mark is not None
    assert f"git {source.repository} {pinned} data/scifact.zip\nfetched from {where}\n" in mark
    assert f"sha256 {source.built['corpus.jsonl']} corpus.jsonl" in mark
    assert sorted(p.name for p in cache.iterdir()) == ["tinyfact"]  # no scratch left
    # Installed once: a later call does not fetch again.
    assert beir.install_git(str(tmp_path / "nowhere"), "tinyfact") == installed


@pytest.mark.parametrize("wrong", ["file", "built", "counts", "commit"])
def test_install_refuses_what_does_not_match_its_pins(
    bench: tuple[ModuleType, ModuleType],
    repository: tuple[Path, str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    wrong: str,
) -> None:
    beir, beir_git = bench
    where, pinned, raw = repository
    cache = tmp_path / "cache" / "beir"
    monkeypatch.setattr(beir, "CACHE", cache)
    source = source_for(beir_git, pinned, raw)
    known = {"md5": "", "documents": 3, "test_queries": 2}
    if wrong == "file":
        source = replace(source, sha256="0" * 64)
    elif wrong == "built":
        source = replace(source, built={"corpus.jsonl": "0" * 64})
    elif wrong == "counts":
        known["documents"] = 5183
    else:
        source = replace(source, commit="f" * 40)
    monkeypatch.setitem(beir_git.SOURCES, "tinyfact", source)
    monkeypatch.setitem(beir_git.BUILDERS, "tinyfact", beir_git.scifact_from_csv)
    monkeypatch.setitem(beir.KNOWN, "tinyfact", known)
    with pytest.raises(SystemExit):
        beir.install_git(str(where), "tinyfact")
    assert not (cache / "tinyfact").exists()
