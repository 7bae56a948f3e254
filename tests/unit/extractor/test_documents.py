import io

import pytest
from pypdf import PdfReader, PdfWriter

from docflow_extractor.domain.documents import open_document
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode
from support import hostile


def read(path) -> io.BytesIO:
    return io.BytesIO(path.read_bytes())


def test_a_pdf_is_read_page_by_page(corpus) -> None:
    document = open_document(read(corpus / "pdf" / "pdflatex-4-pages.pdf"), "application/pdf")
    assert document.page_count == 4
    pages = list(document.pages())
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert all(p.text.strip() for p in pages)


def test_a_pdf_that_needs_a_password_is_encrypted(corpus) -> None:
    with pytest.raises(DocumentError) as caught:
        open_document(read(corpus / "pdf" / "libreoffice-writer-password.pdf"), "application/pdf")
    assert caught.value.code is ErrorCode.ENCRYPTED
    assert "password" in caught.value.message


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_a_pdf_encrypted_with_an_empty_user_password_opens(corpus, algorithm: str) -> None:
    writer = PdfWriter(clone_from=str(corpus / "pdf" / "minimal-document.pdf"))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm=algorithm)
    data = io.BytesIO()
    writer.write(data)
    data.seek(0)
    document = open_document(data, "application/pdf")
    assert document.page_count == 1
    assert next(document.pages()).text.strip()


def test_a_damaged_pdf_is_corrupt(corpus) -> None:
    with pytest.raises(DocumentError) as caught:
        open_document(read(corpus / "pdf" / "unreadablemetadata.pdf"), "application/pdf")
    assert caught.value.code is ErrorCode.CORRUPT


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n", b"%PDF-1.4\n" + b"\x00garbage" * 1000, b"%PDF-" + bytes(range(256)) * 20],
    ids=["header-only", "garbage", "binary"],
)
def test_anything_that_only_starts_like_a_pdf_is_corrupt(data: bytes) -> None:
    # Damage may show when the file is opened or only when a page is read.
    with pytest.raises(DocumentError) as caught:  # noqa: PT012
        document = open_document(io.BytesIO(data), "application/pdf")
        list(document.pages())
    assert caught.value.code is ErrorCode.CORRUPT
    assert "upload" in caught.value.message


def test_text_is_one_unpaginated_page() -> None:
    document = open_document(io.BytesIO("\ufeff# Titel\n\nInhalt".encode()), "text/markdown")
    assert document.page_count is None
    [page] = list(document.pages())
    assert page.number is None
    assert page.text == "# Titel\n\nInhalt"


@pytest.mark.parametrize("charset", ["cp1252", "utf-16"])
def test_text_is_decoded_in_the_charset_the_gateway_found(charset: str) -> None:
    text = "Café “Zoë” — naïve"
    document = open_document(io.BytesIO(text.encode(charset)), "text/plain", charset)
    [page] = list(document.pages())
    assert page.text == text


def test_symbols_in_embedded_type1_fonts_are_decoded(corpus) -> None:
    # GeoTopo's maths is set in CFF Type 1 fonts; without fontTools (pypdf's
    # "fonts" extra) pypdf turns "(∀,∃)" into "(8;9)".
    document = open_document(read(corpus / "pdf" / "GeoTopo-komprimiert.pdf"), "application/pdf")
    text = "".join(page.text for page in document.pages())
    assert "∀" in text
    assert "∃" in text
    assert "∅" in text


def pypdf_alone_fails(data: bytes) -> bool:
    try:
        for page in PdfReader(io.BytesIO(data)).pages:
            page.extract_text()
    except Exception:
        return True
    return False


def test_a_pdf_pypdf_cannot_open_is_read_with_pdfium(corpus) -> None:
    # No %%EOF marker: pypdf refuses the file, PDFium reads it.
    data = (corpus / "pdf" / "pdflatex-4-pages.pdf").read_bytes().replace(b"%%EOF", b"")
    assert pypdf_alone_fails(data)
    document = open_document(io.BytesIO(data), "application/pdf")
    assert document.page_count == 4
    pages = list(document.pages())
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert all(p.text.strip() for p in pages)
    assert all("\r" not in p.text for p in pages)


def test_pages_pypdf_cannot_read_are_read_with_pdfium_from_there_on(corpus) -> None:
    intact = (corpus / "pdf" / "GeoTopo-komprimiert.pdf").read_bytes()
    data = hostile.overwritten(intact)
    assert pypdf_alone_fails(data)
    pages = list(open_document(io.BytesIO(data), "application/pdf").pages())
    assert [p.number for p in pages] == list(range(1, 118))
    assert sum(1 for p in pages if p.text.strip()) > 110
    # The text is the document's: most of its words are those of the intact file.
    words = {
        w
        for p in open_document(io.BytesIO(intact), "application/pdf").pages()
        for w in p.text.split()
    }
    read = [w for p in pages for w in p.text.split()]
    assert sum(w in words for w in read) / len(read) > 0.8


def test_a_file_neither_parser_reads_keeps_pypdfs_reason(corpus) -> None:
    with pytest.raises(DocumentError) as caught:  # noqa: PT012
        document = open_document(io.BytesIO(hostile.cyclic_page_tree()), "application/pdf")
        list(document.pages())
    assert caught.value.code is ErrorCode.CORRUPT
    assert "cyclic page references" in caught.value.message
