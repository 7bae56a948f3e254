"""Word, PowerPoint, HTML and EPUB documents converted to Markdown, structure kept.

Each format is read by its own well-kept library and becomes Markdown, so
the heading-aware chunker (chunking.py) cuts it by its sections: headings
stay headings, lists stay lists, tables become Markdown tables.

- Word (.docx): mammoth turns the document into semantic HTML (headings
  from the paragraph styles, lists, tables; pictures dropped unread), which
  markdownify turns into Markdown. One unpaginated body, like Markdown.
- PowerPoint (.pptx): python-pptx; one page per slide (page numbers are
  slide numbers), labelled ``## Slide n: title``, then its text (bullets by
  level), tables, and the speaker's notes.
- HTML: BeautifulSoup (Python's own HTML parser, which expands no entities
  from a DTD) keeps the page's ``main`` content (or its only ``article``,
  or its body) without scripts, styles, forms, navigation, headers and
  footers; markdownify writes the rest as Markdown.
- EPUB: the spine's chapters in reading order, each an HTML page as above;
  the package files are read with defusedxml.

Excel workbooks are in sheets.py, ZIP containers are checked first
(containers.py), and formats.py opens each type with its reader.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import unquote

import mammoth
from bs4 import BeautifulSoup, Comment, Tag
from defusedxml import ElementTree
from markdownify import MarkdownConverter
from pptx import Presentation
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.exc import PackageNotFoundError

from docflow_extractor.domain.containers import (
    ContainerLimits,
    corrupt_container,
    open_container,
)
from docflow_extractor.domain.documents import Page
from docflow_shared.errors import DocumentError
from docflow_shared.events import ContentType

DOCX: ContentType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX: ContentType = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX: ContentType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML: ContentType = "text/html"
EPUB: ContentType = "application/epub+zip"
# What becomes Markdown on the way in, and is chunked as Markdown.
CONVERTED: frozenset[ContentType] = frozenset({DOCX, PPTX, XLSX, HTML, EPUB})

# Elements that are never the text of a page: code, styling, forms, media,
# and the navigation around the content.
_NOT_CONTENT = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "canvas",
    "video",
    "audio",
    "form",
    "button",
    "input",
    "select",
    "textarea",
    "head",
    "link",
    "meta",
)
# Navigation around the content: left out of a page's body, and of its main
# content too, except a header there, which holds the article's title.
_AROUND_CONTENT = ("nav", "aside", "footer", "header")
_NAVIGATION_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu"}
# Word's title styles are headings too (mammoth maps Heading 1-6 itself).
_DOCX_STYLES = "\n".join(
    [
        "p[style-name='Title'] => h1:fresh",
        "p[style-name='Subtitle'] => h2:fresh",
    ]
)


class _Markdown(MarkdownConverter):
    """markdownify with ATX headings; links and emphasis as their text, pictures left out."""

    def __init__(self) -> None:
        super().__init__(
            heading_style="ATX",
            bullets="-",
            strip=["a", "img", "b", "strong", "i", "em"],
            table_infer_header=True,
            escape_underscores=False,
            escape_asterisks=False,
        )


def html_to_markdown(root: Tag) -> str:
    """Markdown of an HTML element; runs of blank lines squeezed."""
    text: str = _Markdown().convert_soup(root)
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def page_content(html: str | bytes) -> Tag:
    """The content of an HTML page: its main part, without scripts, styles and navigation."""
    soup = BeautifulSoup(html, "html.parser")
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for element in soup.find_all(_NOT_CONTENT):
        element.decompose()
    articles = soup.find_all("article")
    main = soup.find("main") or (articles[0] if len(articles) == 1 else None)
    root = main or soup.body or soup
    around = _AROUND_CONTENT[:-1] if main is not None else _AROUND_CONTENT
    for element in root.find_all(around):
        element.decompose()
    for element in root.find_all(role=True):
        if not element.decomposed and str(element.get("role")).lower() in _NAVIGATION_ROLES:
            element.decompose()
    return root


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; cells lose line breaks and escape their pipes."""
    width = max([len(header), *(len(row) for row in rows)])

    def line(cells: list[str]) -> str:
        padded = [*cells, *[""] * (width - len(cells))]
        cleaned = (" ".join(c.split()).replace("|", "\\|") for c in padded)
        return "| " + " | ".join(cleaned) + " |"

    return "\n".join([line(header), "|" + " --- |" * width, *(line(row) for row in rows)])


class _Unpaginated:
    """A converted document of one body of text, or of chapters without page numbers."""

    page_count = None

    def __init__(self, texts: Callable[[], Iterator[str]]) -> None:
        self._texts = texts

    def pages(self) -> Iterator[Page]:
        for text in self._texts():
            yield Page(None, text)


def docx_document(stream: BinaryIO, limits: ContainerLimits) -> _Unpaginated:
    open_container(stream, limits)
    stream.seek(0)
    try:
        # Pictures are dropped unread: an empty list instead of an <img>.
        # A copy without a name: mammoth resolves linked files next to a
        # file's name, and the sandbox's stream is named by its descriptor.
        result = mammoth.convert_to_html(
            io.BytesIO(stream.read()), style_map=_DOCX_STYLES, convert_image=lambda image: []
        )
    except (DocumentError, MemoryError):
        raise
    except Exception as exc:
        raise corrupt_container("the Word document could not be read", exc) from exc
    html = result.value
    return _Unpaginated(lambda: iter([html_to_markdown(BeautifulSoup(html, "html.parser"))]))


class PresentationDocument:
    """A PowerPoint deck: one page per slide."""

    def __init__(self, stream: BinaryIO, limits: ContainerLimits) -> None:
        open_container(stream, limits)
        stream.seek(0)
        try:
            self._slides = list(Presentation(stream).slides)
        except (DocumentError, MemoryError):
            raise
        except (PackageNotFoundError, Exception) as exc:
            raise corrupt_container("the PowerPoint file could not be read", exc) from exc

    @property
    def page_count(self) -> int:
        return len(self._slides)

    def pages(self) -> Iterator[Page]:
        for number, slide in enumerate(self._slides, start=1):
            try:
                text = _slide_markdown(number, slide)
            except (DocumentError, MemoryError):
                raise
            except Exception as exc:
                raise corrupt_container(f"slide {number} could not be read", exc) from exc
            yield Page(number, text + "\n")  # a blank line before the next one


def _slide_markdown(number: int, slide: Any) -> str:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    parts = [f"## Slide {number}: {title}" if title else f"## Slide {number}"]
    for shape in slide.shapes:
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        parts.extend(_shape_markdown(shape))
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            parts.extend(["### Notes", notes.text.strip()])
    return "\n\n".join(part for part in parts if part)


def _is_body(shape: Any) -> bool:
    if not shape.is_placeholder:
        return False
    kind = shape.placeholder_format.type
    return kind in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.SUBTITLE)


def _shape_markdown(shape: Any) -> list[str]:
    """A shape's text: groups shape by shape, tables as tables, body text as bullets."""
    if getattr(shape, "shapes", None) is not None:  # a group
        return [text for inner in shape.shapes for text in _shape_markdown(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        return [markdown_table(rows[0], rows[1:])] if rows else []
    if getattr(shape, "has_chart", False) and shape.has_chart:
        chart = shape.chart
        return [f"Chart: {chart.chart_title.text_frame.text}"] if chart.has_title else []
    if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
        return []
    # A body of several paragraphs is a list; one paragraph is prose (the
    # chunker would otherwise cut a long one apart from its bullet).
    bullets = _is_body(shape) and sum(bool(p.text.strip()) for p in shape.text_frame.paragraphs) > 1
    lines = []
    for paragraph in shape.text_frame.paragraphs:
        text = " ".join(paragraph.text.split())
        if text:
            lines.append(f"{'  ' * paragraph.level}- {text}" if bullets else text)
    return ["\n".join(lines)] if bullets else lines


def html_document(stream: BinaryIO, charset: str | None) -> _Unpaginated:
    # Decoded as the gateway found it: UTF-8 (a byte-order mark allowed) unless told otherwise.
    encoding = "utf-8-sig" if charset in (None, "utf-8") else charset
    try:
        html = stream.read().decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise corrupt_container(f"the page is not valid {encoding} text", exc) from exc
    return _Unpaginated(lambda: iter([html_to_markdown(page_content(html))]))


class EpubDocument:
    """An EPUB book: its title, then each chapter of the spine in reading order."""

    page_count = None

    def __init__(self, stream: BinaryIO, limits: ContainerLimits) -> None:
        self._zip = open_container(stream, limits, epub=True)
        try:
            self._title, self._chapters = self._spine()
        except (DocumentError, MemoryError):
            raise
        except Exception as exc:
            raise corrupt_container("the EPUB's package could not be read", exc) from exc

    def _xml(self, name: str) -> Any:
        return ElementTree.fromstring(self._zip.read(name))

    def _spine(self) -> tuple[str, list[str]]:
        container = self._xml("META-INF/container.xml")
        rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile"))
        opf_path = rootfile.attrib["full-path"]
        package = self._xml(opf_path)
        base = posixpath.dirname(opf_path)
        manifest = {
            item.attrib.get("id"): item.attrib
            for item in package.iter()
            if item.tag.endswith("}item") or item.tag == "item"
        }
        title = next((e.text or "" for e in package.iter() if e.tag.endswith("}title")), "")
        chapters = []
        for ref in package.iter():
            if not (ref.tag.endswith("}itemref") or ref.tag == "itemref"):
                continue
            item = manifest.get(ref.attrib.get("idref"))
            if item is None or "html" not in item.get("media-type", ""):
                continue
            chapters.append(posixpath.normpath(posixpath.join(base, unquote(item["href"]))))
        return " ".join(title.split()), chapters

    def pages(self) -> Iterator[Page]:
        if self._title:
            yield Page(None, f"# {self._title}\n")
        for name in self._chapters:
            try:
                data = self._zip.read(name)
            except KeyError:
                continue  # listed but absent: the rest of the book is still there
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                raise corrupt_container(f"the chapter {name!r} could not be read", exc) from exc
            yield Page(None, html_to_markdown(page_content(data)) + "\n")
