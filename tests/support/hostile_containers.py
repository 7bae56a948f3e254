"""Hostile Word, Excel and EPUB files, built here: zip bombs, entity expansion, huge sheets."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="png" ContentType="image/png"/>'
    '<Override PartName="/{part}" ContentType="{type}"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="{part}"/></Relationships>'
)
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
SHEET_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx(document_xml: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml", CONTENT_TYPES.format(part="word/document.xml", type=WORD_MAIN)
        )
        archive.writestr("_rels/.rels", RELS.format(part="word/document.xml"))
        archive.writestr("word/document.xml", document_xml)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def paragraphs(*texts: str) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" for text in texts)
    xml = f'<?xml version="1.0"?><w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    return xml.encode()


def honest_docx() -> bytes:
    """A small, valid Word document with one paragraph."""
    return _docx(paragraphs("A paragraph of honest text"))


def billion_laughs_docx() -> bytes:
    """A document whose text is one entity that expands to 10^9 'lol's."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    )
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{entities}]>'
        f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>'
        "</w:body></w:document>"
    )
    return _docx(xml.encode())


def zip_bomb_docx(unpacked_mib: int = 300) -> bytes:
    """A document with one entry of ``unpacked_mib`` MiB of zeros, declared honestly."""
    out = io.BytesIO()
    zero = bytes(1024 * 1024)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml", CONTENT_TYPES.format(part="word/document.xml", type=WORD_MAIN)
        )
        archive.writestr("word/document.xml", paragraphs("bomb"))
        with archive.open("word/media/zeros.bin", "w", force_zip64=True) as entry:
            for _ in range(unpacked_mib):
                entry.write(zero)
    return out.getvalue()


def lying_sizes_docx(declared: int = 1000, actual_mib: int = 64) -> bytes:
    """A document with an entry that declares ``declared`` bytes and holds ``actual_mib`` MiB."""
    name = b"word/media/liar.bin"
    data = _docx(paragraphs("liar"), {name.decode(): bytes(actual_mib * 1024 * 1024)})
    patched = bytearray(data)
    # The uncompressed size in the local header (offset 22) and in the
    # central directory's entry (offset 24), both just before the name.
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        name_at = 30 if signature == b"PK\x03\x04" else 46
        at = 0
        while (at := patched.find(signature, at)) >= 0:
            if patched[at + name_at : at + name_at + len(name)] == name:
                struct.pack_into("<I", patched, at + size_at, declared)
            at += 4
    return bytes(patched)


def many_images_docx(images: int = 10_000) -> bytes:
    """A document with ``images`` pictures, each an entry of its own."""
    png = zlib.compress(b"\x89PNG not really a picture")
    return _docx(paragraphs("pictures"), {f"word/media/image{n}.png": png for n in range(images)})


def million_cells_xlsx(rows: int = 50_000, columns: int = 20) -> bytes:
    """A workbook of one sheet of ``rows`` x ``columns`` numbers (a million by default)."""
    sheet = io.StringIO()
    sheet.write(
        '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main"><sheetData>'
    )
    cells = "".join(f"<c><v>{n}</v></c>" for n in range(columns))
    for r in range(1, rows + 1):
        sheet.write(f'<row r="{r}">{cells}</row>')
    sheet.write("</sheetData></worksheet>")
    workbook = (
        '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Big" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    book_rels = (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    )
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    types = CONTENT_TYPES.format(part="xl/workbook.xml", type=SHEET_MAIN).replace(
        "</Types>",
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}"/></Types>',
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", RELS.format(part="xl/workbook.xml"))
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", book_rels)
        archive.writestr("xl/worksheets/sheet1.xml", sheet.getvalue())
    return out.getvalue()
