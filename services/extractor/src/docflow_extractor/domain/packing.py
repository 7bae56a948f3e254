"""What the chunker does with the splitter's cuts: whole words, full chunks, heading paths.

``semantic-text-splitter`` proposes where to cut; three rules are applied
on top, all on offsets in the same text, so chunks stay exact slices of it:

- **Whole words.** The Markdown splitter cuts where its parser splits inline
  text, which can be inside a word (``[3H]`` | ``inositol``: a bracket may
  start a link). A cut with no white space on either side is moved to the end
  of its word (the chunk grows); when that no longer fits the budget, to the
  word's start (the chunk shrinks, and the next one starts there). Only runs
  without white space longer than ``LONGEST_WORD`` characters (URLs, base64,
  text in scripts written without spaces) are cut where the splitter cut them.
- **Full chunks** (Markdown and what was converted to it). Neighbouring
  pieces are joined while the joined text fits the budget: the splitter ends
  a chunk at a section or block boundary when the next one does not fit
  whole, and leaves room for headings, so short documents' chunks were half
  empty. (Prose, PDFs' text, is filled by the splitter itself: median 191 of
  200 tokens on GeoTopo.) A piece that starts with a heading (a new
  section) is joined to the chunk before it only while that chunk is under
  half the budget: small sections share a chunk, a well-filled section keeps
  its own. A piece that is only headings is always joined to what follows.
- **Heading paths.** For Markdown (and what was converted to it), each chunk
  is told the headings it sits under: those of the lines before its start,
  outside fenced code blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from docflow_shared.events.documents import MAX_HEADING_CHARS, MAX_HEADING_DEPTH

# A run without white space longer than this is not a word: it may be cut.
LONGEST_WORD = 64

Fits = Callable[[str], bool]
Cut = list[tuple[int, str]]

# A heading's line is read this far (a title is cut to 200 characters anyway).
_LONGEST_LINE = 1024
# Zero-width characters (HTML converters leave them after anchored headings).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_FENCE = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")


def heading(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading line (``## Text``), else None. Linear in
    the line (no backtracking), and reads at most ``_LONGEST_LINE`` characters."""
    line = line[:_LONGEST_LINE]
    text = line.lstrip(" ")
    if len(line) - len(text) > 3 or not text.startswith("#"):
        return None
    level = len(text) - len(text.lstrip("#"))
    rest = text[level:]
    if level > 6 or (rest and rest[0] not in " \t\r"):
        return None
    words = rest.strip(" \t\r")
    closed = words.rstrip("#")
    if closed != words and (not closed or closed[-1] in " \t"):
        words = closed  # an optional closing sequence: ``## Text ##``
    words = words.translate(_INVISIBLE)
    return level, " ".join(words.split())[:MAX_HEADING_CHARS]


def only_headings(text: str) -> bool:
    return all(heading(line) for line in text.splitlines() if line.strip())


def _starts_with_heading(text: str) -> bool:
    return heading(text.lstrip().split("\n", 1)[0]) is not None


def _inside_word(text: str, at: int) -> bool:
    return 0 < at < len(text) and not text[at - 1].isspace() and not text[at].isspace()


def _word_around(text: str, at: int) -> tuple[int, int]:
    start = at
    while start > 0 and not text[start - 1].isspace() and at - start <= LONGEST_WORD:
        start -= 1
    end = at
    while end < len(text) and not text[end].isspace() and end - start <= LONGEST_WORD:
        end += 1
    return start, end


def _short_word(text: str, at: int) -> tuple[int, int] | None:
    """The word a cut at ``at`` falls inside, if it is one (not a long run)."""
    if not _inside_word(text, at):
        return None
    start, end = _word_around(text, at)
    return (start, end) if end - start <= LONGEST_WORD else None


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _space_trimmed(text: str, end: int) -> int:
    """``end`` moved back over white space (without copying the text before it)."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _space_before(text: str, start: int, end: int) -> int:
    """The last white space in ``text[start:end]`` that has a word after it, or -1."""
    at = end - 1
    while at > start and not (text[at - 1].isspace() and not text[at].isspace()):
        at -= 1
    return at - 1 if at > start else -1


def whole_words(text: str, cut: Cut, fits: Fits) -> Cut:
    """``cut`` with every cut inside a word moved to the word's end, or its start."""
    out: Cut = []
    # Where the next piece must start at the latest (a word given back to it).
    latest: int | None = None
    for offset, piece in cut:
        start, end = offset, offset + len(piece)
        grown = False
        if latest is not None and start > latest:
            start, grown = latest, True
        elif (word := _short_word(text, start)) is not None:
            start = _skip_space(text, word[1])
        latest = None
        if (word := _short_word(text, end)) is not None:
            if fits(text[start : word[1]]):
                end, grown = word[1], False
            elif word[0] > start:
                end, latest = _space_trimmed(text, word[0]), word[0]
        # A piece that grew at its start may have to give words back at its end.
        while grown and not fits(text[start:end]):
            back = _space_before(text, start, end)
            if back <= start:
                break
            end, latest = _space_trimmed(text, back), back + 1
        if end > start and text[start:end].strip():
            out.append((start, text[start:end]))
    return out


def _joined(text: str, before: tuple[int, str], offset: int, piece: str) -> str | None:
    """``before`` and the piece after it as one text, if the piece goes further."""
    end = offset + len(piece)
    return text[before[0] : end] if end > before[0] + len(before[1]) else None


def filled(text: str, cut: Cut, fits: Fits, small: Fits | None) -> Cut:
    """Neighbouring pieces joined while they fit (the module's rule for sections:
    ``small`` tells a chunk under half the budget; None: prose, whose pieces are
    joined whenever they fit)."""
    units: Cut = []
    for offset, piece in cut:
        if small is not None and units and only_headings(units[-1][1]):
            joined = _joined(text, units[-1], offset, piece)
            if joined is not None and fits(joined):
                units[-1] = (units[-1][0], joined)
                continue
        units.append((offset, piece))
    out: Cut = []
    for offset, piece in units:
        if out and (
            small is None
            or not _starts_with_heading(piece)
            or (not only_headings(piece) and small(out[-1][1]))
        ):
            joined = _joined(text, out[-1], offset, piece)
            if joined is not None and fits(joined):
                out[-1] = (out[-1][0], joined)
                continue
        out.append((offset, piece))
    return out


def title_of(text: str) -> str | None:
    """A document's title: its first line when that is a level-1 heading."""
    first = text.lstrip().split("\n", 1)[0]
    found = heading(first)
    return found[1] or None if found and found[0] == 1 else None


@dataclass
class HeadingPath:
    """The headings in force at a point of a Markdown text read line by line."""

    _stack: list[tuple[int, str]] = field(default_factory=list)
    _fence: str | None = None
    _read: int = 0  # offset of the next line to read, in the text being read

    def at(self, text: str, offset: int) -> tuple[str, ...]:
        """The headings in force where ``offset`` starts, outermost first: those of
        the lines before it, less those a heading starting there replaces."""
        while self._read < offset and self._read < len(text):
            end = text.find("\n", self._read)
            end = len(text) if end < 0 else end
            self._line(text[self._read : end])
            self._read = end + 1
        stack = self._stack
        line_end = text.find("\n", offset)
        line = text[offset : len(text) if line_end < 0 else line_end]
        first = heading(line) if self._fence is None else None
        if first is not None:
            stack = [(level, t) for level, t in stack if level < first[0]]
        return tuple(t for _, t in stack if t)[:MAX_HEADING_DEPTH]

    def moved(self, offset: int) -> None:
        """The text now starts ``offset`` characters later (read up to there first)."""
        self._read = max(0, self._read - offset)

    def _line(self, line: str) -> None:
        fence = _FENCE.match(line)
        if self._fence is not None:
            if (
                fence
                and fence.group(1)[0] == self._fence[0]
                and len(fence.group(1)) >= len(self._fence)
            ):
                self._fence = None
            return
        if fence:
            self._fence = fence.group(1)
            return
        found = heading(line)
        if found is not None:
            level, words = found
            self._stack = [(lv, t) for lv, t in self._stack if lv < level] + [(level, words)]
