import pytest

from docflow_gateway.domain.files import (
    EmptyFileError,
    FileInspector,
    UnsupportedFileError,
    display_name,
)


def inspect(*parts: bytes) -> FileInspector:
    inspector = FileInspector()
    for part in parts:
        inspector.feed(part)
    return inspector


def test_pdf_is_recognised_by_its_magic_bytes_whatever_the_name() -> None:
    assert inspect(b"%PDF-1.7\n", b"\x00\xff binary").content_type("notes.txt") == "application/pdf"


def test_magic_split_across_reads_is_still_recognised() -> None:
    assert inspect(b"%P", b"DF", b"-1.4 ...").content_type("a.pdf") == "application/pdf"


def test_a_pdf_name_without_pdf_bytes_is_refused() -> None:
    with pytest.raises(UnsupportedFileError, match="binary"):
        inspect(b"\x89PNG\r\n\x1a\n\x00\x00").content_type("scan.pdf")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.md", "text/markdown"),
        ("NOTES.MARKDOWN", "text/markdown"),
        ("notes.txt", "text/plain"),
        ("README", "text/plain"),
    ],
)
def test_text_by_name_and_valid_utf8(name: str, expected: str) -> None:
    text = "# Überblick\n\n비동기 문서 처리 — tabs\tand\r\nnewlines\n".encode()
    assert inspect(text).content_type(name) == expected


def test_a_multibyte_character_split_across_reads_is_valid_text() -> None:
    data = "한국어".encode()
    assert inspect(data[:2], data[2:]).content_type("k.md") == "text/markdown"


@pytest.mark.parametrize(
    ("data", "charset"),
    [
        ("# Überblick — naïve".encode(), "utf-8"),
        ("\ufeff# with a byte-order mark".encode(), "utf-8"),
        ("café au lait, “quoted”".encode("cp1252"), "cp1252"),
        ("UTF-16 with its mark: 한국어".encode("utf-16"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "windows-1252", "utf-16"],
)
def test_text_is_recognised_with_its_encoding(data: bytes, charset: str) -> None:
    inspector = inspect(data[:5], data[5:])
    assert inspector.content_type("notes.md") == "text/markdown"
    assert inspector.charset() == charset
    assert data.decode("utf-8-sig" if charset == "utf-8" else charset)


@pytest.mark.parametrize(
    "data",
    [
        b"text with a NUL \x00 byte",
        b"\x81 is undefined in Windows-1252 and invalid UTF-8",
        "UTF-16 without its mark".encode("utf-16-le"),
        bytes(range(256)),
    ],
    ids=["nul", "undefined-byte", "utf-16-no-bom", "all-bytes"],
)
def test_bytes_that_are_not_text_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedFileError, match="binary data"):
        inspect(data).content_type("notes.txt")


def test_text_with_an_unsupported_extension_is_refused() -> None:
    with pytest.raises(UnsupportedFileError, match="extension"):
        inspect(b"print('hi')\n").content_type("script.py")


def test_an_empty_file_is_its_own_error() -> None:
    with pytest.raises(EmptyFileError):
        FileInspector().content_type("empty.txt")


def test_size_and_sha256_are_of_all_bytes() -> None:
    inspector = inspect(b"hello ", b"world")
    assert inspector.size == 11
    assert inspector.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("re\x00po\x1brt\u202e.pdf", "report.pdf"),
        ("", "upload"),
        (None, "upload"),
        ("   ", "upload"),
    ],
)
def test_display_names_lose_paths_and_control_characters(raw: str | None, expected: str) -> None:
    assert display_name(raw) == expected


def test_overlong_names_are_cut_keeping_the_extension() -> None:
    name = display_name("x" * 400 + ".pdf")
    assert len(name) == 255
    assert name.endswith(".pdf")
