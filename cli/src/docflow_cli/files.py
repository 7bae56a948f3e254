"""Which files an upload sends: the files named, and those of the folders named."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatch
from pathlib import Path

# What the gateway accepts (README, "Types from the bytes"); a folder's other
# files are left out unless --include asks for them.
DEFAULT_INCLUDE = (
    "*.pdf",
    "*.docx",
    "*.pptx",
    "*.xlsx",
    "*.epub",
    "*.html",
    "*.htm",
    "*.md",
    "*.markdown",
    "*.txt",
)


class NoSuchPath(Exception):
    """A path named on the command line does not exist."""


def collect(
    paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Path]:
    """The files to upload, each once, in the order named (a folder's sorted by path).

    A file named is always taken; a folder is searched recursively for files
    matching one of ``include`` (``DEFAULT_INCLUDE`` when empty) and none of
    ``exclude``, skipping hidden files and folders. Patterns are shell globs
    matched against the file's name or its path under the folder.
    """
    wanted = tuple(include) or DEFAULT_INCLUDE
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = file.relative_to(path)
                if _hidden(relative):
                    continue
                if _matches(relative, wanted) and not _matches(relative, exclude):
                    found.setdefault(file.resolve())
        elif path.is_file():
            found.setdefault(path.resolve())
        else:
            raise NoSuchPath(f"no such file or folder: {path}")
    return list(found)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _matches(relative: Path, patterns: Sequence[str]) -> bool:
    return any(fnmatch(relative.name, p) or fnmatch(relative.as_posix(), p) for p in patterns)
