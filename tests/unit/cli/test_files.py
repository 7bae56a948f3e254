"""Which files ``docflow upload`` sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from docflow_cli.files import NoSuchPath, collect


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in (
        "a.pdf",
        "notes.md",
        "data.json",
        "sub/b.pdf",
        "sub/deeper/c.txt",
        ".hidden/d.pdf",
        "sub/.e.pdf",
        "reports/2024/q1.pdf",
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def names(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root.resolve()).as_posix() for p in paths]


def test_a_folder_gives_its_supported_files_recursively_without_hidden_ones(tree: Path) -> None:
    assert names(collect([tree]), tree) == [
        "a.pdf",
        "notes.md",
        "reports/2024/q1.pdf",
        "sub/b.pdf",
        "sub/deeper/c.txt",
    ]


def test_include_patterns_replace_the_default_and_match_names_or_paths(tree: Path) -> None:
    assert names(collect([tree], include=["*.json", "sub/*.pdf"]), tree) == [
        "data.json",
        "sub/b.pdf",
    ]


def test_exclude_patterns_leave_files_out(tree: Path) -> None:
    assert names(collect([tree], include=["*.pdf"], exclude=["reports/*"]), tree) == [
        "a.pdf",
        "sub/b.pdf",
    ]


def test_a_file_named_is_taken_whatever_the_patterns_and_each_file_once(tree: Path) -> None:
    found = collect([tree / "data.json", tree / "sub", tree / "sub" / "b.pdf"], include=["*.pdf"])
    assert names(found, tree) == ["data.json", "sub/b.pdf"]


def test_a_missing_path_is_an_error_naming_it(tree: Path) -> None:
    with pytest.raises(NoSuchPath, match=r"nope\.pdf"):
        collect([tree / "a.pdf", tree / "nope.pdf"])
