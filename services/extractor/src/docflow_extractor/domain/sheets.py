"""Excel workbooks (.xlsx) as Markdown tables: one page per sheet, header row repeated.

openpyxl reads each sheet row by row in its read-only mode (streamed, with
defusedxml installed, which openpyxl then uses), and the cells are counted
as they come: past ``ContainerLimits.max_cells`` the document fails
``limit_exceeded``, whatever the sheet declares its size to be.

A sheet becomes ``## Sheet n: name`` and its rows as Markdown tables whose
first column is the row's number in the sheet. Its first non-empty row is
taken as the header, and the rows under it go in tables of about
``BLOCK_CHARS`` characters, each block a table of its own that starts with
the header again: a block fits in one chunk, so every chunk of a sheet says
what its columns are (a cell is found with its row's column names).
"""

from __future__ import annotations

import datetime
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, BinaryIO

from docflow_extractor.domain.containers import (
    ContainerLimits,
    corrupt_container,
    open_container,
)
from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.office import markdown_table
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode


def _openpyxl() -> ModuleType:
    """openpyxl, imported without numpy, which it would load for numpy's number types
    (used only when writing): numpy and its OpenBLAS take some 120 MiB of address
    space in every parser worker, where the memory limit counts address space."""
    blocked = "numpy" not in sys.modules
    if blocked:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # import numpy: ImportError
    try:
        return importlib.import_module("openpyxl")
    finally:
        if blocked:
            del sys.modules["numpy"]


load_workbook = _openpyxl().load_workbook

# A table's characters, header included: inside the Markdown chunker's
# budget for the default chunk of 200 tokens (chunking.py) even for a
# table of numbers, where a token is about two characters (measured on the
# corpus' workbook). Larger chunks take several blocks.
BLOCK_CHARS = 240


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _blocks(header: list[str], rows: list[list[str]]) -> Iterator[str]:
    """The rows in tables of about ``BLOCK_CHARS`` characters, each with the header."""
    header_size = 2 * sum(len(cell) + 6 for cell in header)  # the header and its rule
    block: list[list[str]] = []
    size = header_size
    for row in rows:
        length = sum(len(cell) + 3 for cell in row)
        if block and size + length > BLOCK_CHARS:
            yield markdown_table(header, block)
            block, size = [], header_size
        block.append(row)
        size += length
    if block or not rows:
        yield markdown_table(header, block)


class WorkbookDocument:
    """An Excel workbook: one page per sheet."""

    def __init__(self, stream: BinaryIO, limits: ContainerLimits) -> None:
        open_container(stream, limits)
        stream.seek(0)
        self._limits = limits
        self._cells = 0
        try:
            self._book = load_workbook(stream, read_only=True, data_only=True)
            self._sheets = list(self._book.worksheets)
        except (DocumentError, MemoryError):
            raise
        except Exception as exc:
            raise corrupt_container("the Excel workbook could not be read", exc) from exc

    @property
    def page_count(self) -> int:
        return len(self._sheets)

    def pages(self) -> Iterator[Page]:
        for number, sheet in enumerate(self._sheets, start=1):
            try:
                text = self._sheet_markdown(number, sheet)
            except (DocumentError, MemoryError):
                raise
            except Exception as exc:
                raise corrupt_container(f"sheet {number} could not be read", exc) from exc
            yield Page(number, text + "\n")  # a blank line before the next one

    def _rows(self, sheet: Any) -> Iterator[tuple[int, list[str]]]:
        """Each non-empty row's number and cells (trailing empty ones dropped), counted."""
        # Not the size the sheet declares: only the cells it holds.
        sheet.reset_dimensions()
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            self._cells += max(1, len(row))
            if self._cells > self._limits.max_cells:
                raise DocumentError(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"the workbook has more than {self._limits.max_cells} cells, the limit per "
                    "document (DOCFLOW_MAX_SHEET_CELLS); split it into smaller files",
                )
            cells = [_cell(value) for value in row]
            while cells and not cells[-1].strip():
                cells.pop()
            if cells:
                yield number, cells

    def _sheet_markdown(self, number: int, sheet: Any) -> str:
        parts = [f"## Sheet {number}: {sheet.title}"]
        rows = self._rows(sheet)
        first = next(rows, None)
        if first is not None:
            header = ["Row", *first[1]]
            body = [[str(n), *cells] for n, cells in rows]
            parts.extend(_blocks(header, body))
        return "\n\n".join(parts)
