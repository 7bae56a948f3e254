import itertools
import json
import re

import pytest

from docflow_extractor.domain.chunking import ChunkBatcher, ChunkingPolicy, split_text
from docflow_shared.events import Chunk

POLICY = ChunkingPolicy(size=200, overlap=40)
PROSE = " ".join(
    f"Sentence {i} talks about topology, manifolds and the fundamental group." for i in range(60)
)


def chunks(text: str, policy: ChunkingPolicy = POLICY) -> list[tuple[int, int]]:
    return list(split_text(text, policy))


def test_chunks_cover_every_word_of_the_text() -> None:
    spans = chunks(PROSE)
    covered = set()
    for start, end in spans:
        covered.update(range(start, end))
    words = [m.span() for m in re.finditer(r"\S+", PROSE)]
    assert all(set(range(a, b)) <= covered for a, b in words)


def test_chunks_never_exceed_the_size_and_never_cut_a_word() -> None:
    for start, end in chunks(PROSE):
        assert 0 < end - start <= POLICY.size
        assert start == 0 or PROSE[start - 1].isspace()
        assert end == len(PROSE) or PROSE[end].isspace()
        assert not PROSE[start].isspace()
        assert not PROSE[end - 1].isspace()


def test_consecutive_chunks_overlap_by_about_the_configured_amount() -> None:
    spans = chunks(PROSE)
    assert len(spans) > 5
    for (_, previous_end), (start, _) in itertools.pairwise(spans):
        overlap = previous_end - start
        assert 0 < overlap <= POLICY.overlap


def test_blank_text_has_no_chunks() -> None:
    assert chunks("") == []
    assert chunks(" \n\t  ") == []


def test_short_text_is_one_chunk_without_surrounding_blanks() -> None:
    assert chunks("\n  Hello world.  \n") == [(3, 15)]


def test_a_word_longer_than_a_chunk_is_the_only_thing_cut() -> None:
    text = "a" * 500 + " tail"
    spans = chunks(text)
    assert spans[0] == (0, 200)
    assert text[spans[-1][0] : spans[-1][1]].endswith("tail")


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (100, 50), (100, -1)])
def test_nonsense_policies_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkingPolicy(size=size, overlap=overlap)


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
