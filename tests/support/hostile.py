"""Hostile PDFs, built here byte by byte: each is made to exhaust or trap a parser."""

from __future__ import annotations

import random
import zlib

PAGE_TEXT = b"BT /F1 12 Tf 72 720 Td (A page of honest text) Tj ET"


def pdf(objects: dict[int, bytes], *, root: int = 1, trailer: bytes = b"") -> bytes:
    """A PDF file of the given numbered objects, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets.get(number, 0)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root,
        trailer,
        xref,
    )
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def one_page(
    contents: bytes, *, catalog_extra: bytes = b"", more: dict[int, bytes] | None = None
) -> bytes:
    """A one-page document whose page content stream is ``contents`` (object 4)."""
    return pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            4: contents,
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            **(more or {}),
        }
    )


def honest() -> bytes:
    """A small, valid document with one line of text."""
    return one_page(stream(PAGE_TEXT))


def flate_bomb(decompressed_mib: int = 512) -> bytes:
    """A content stream of a few hundred KiB that inflates to ``decompressed_mib`` MiB."""
    compressor = zlib.compressobj(9)
    block = b"\0" * (1024 * 1024)
    data = b"".join(compressor.compress(block) for _ in range(decompressed_mib))
    data += compressor.flush()
    return one_page(stream(data, b"/Filter /FlateDecode"))


def deeply_nested(depth: int = 100_000) -> bytes:
    """A page whose text operand is an array nested ``depth`` levels deep."""
    return one_page(stream(b"BT /F1 12 Tf " + b"[" * depth + b"]" * depth + b" TJ ET"))


def cyclic_outline() -> bytes:
    """An outline whose only entry is its own next sibling."""
    return one_page(
        stream(PAGE_TEXT),
        catalog_extra=b"/Outlines 6 0 R",
        more={
            6: b"<< /Type /Outlines /First 7 0 R /Last 7 0 R /Count 1 >>",
            7: b"<< /Title (loop) /Parent 6 0 R /Next 7 0 R /Prev 7 0 R >>",
        },
    )


def cyclic_page_tree() -> bytes:
    """A page tree whose root lists itself among its kids."""
    return pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            4: stream(PAGE_TEXT),
        }
    )


def cyclic_xref() -> bytes:
    """A cross-reference table whose /Prev points back at itself."""
    data = honest()
    xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    return data.replace(b"/Size 6 /Root 1 0 R", b"/Size 6 /Root 1 0 R /Prev %d" % xref)


def endless_operators(count: int = 3_000_000) -> bytes:
    """A content stream of millions of text operators, far past any reasonable page."""
    compressor = zlib.compressobj(9)
    data = compressor.compress(b"(x) Tj " * count) + compressor.flush()
    return one_page(stream(data, b"/Filter /FlateDecode"))


def overwritten(data: bytes, count: int = 32) -> bytes:
    """``count`` bytes past the first tenth overwritten, the same ones on every run."""
    noise = random.Random(len(data))
    damaged = bytearray(data)
    for _ in range(count):
        damaged[noise.randrange(len(data) // 10, len(data))] = noise.randrange(256)
    return bytes(damaged)


def picture_page(
    pixels: tuple[int, int] = (64, 64), points: tuple[float, float] = (612, 792)
) -> bytes:
    """A page of ``points`` without a text layer, filled by a grey picture of ``pixels``.

    The picture is white, its pixels compressed together: 35000 × 35000 of them
    (1.2 GB once decoded) take about 1.2 MB in the file.
    """
    width, height = pixels
    compressor = zlib.compressobj(1)  # as small as level 9 for a plain picture, and faster
    row_block = b"\xff" * (width * min(height, max(1, 64 * 1024 * 1024 // width)))
    data, left = b"", width * height
    while left > 0:
        block = row_block[:left]
        data += compressor.compress(block)
        left -= len(block)
    data += compressor.flush()
    w, h = points
    return pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 4 0 R "
            b"/Resources << /XObject << /Im1 5 0 R >> >> >>" % (w, h),
            4: stream(b"q %g 0 0 %g 0 0 cm /Im1 Do Q" % (w, h)),
            5: stream(
                data,
                b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                b"/BitsPerComponent 8 /Filter /FlateDecode" % (width, height),
            ),
        }
    )


def many_pictures(count: int = 5000) -> bytes:
    """A page without a text layer showing ``count`` tiny pictures, each an object of its own."""
    picture = zlib.compress(b"\x00" * 4)
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    }
    names = b" ".join(b"/I%d %d 0 R" % (n, 5 + n) for n in range(count))
    objects[3] = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /XObject << %s >> >> >>" % names
    )
    objects[4] = stream(
        b"".join(
            b"q 2 0 0 2 %d %d cm /I%d Do Q\n" % (n % 300 * 2, n // 300 * 2, n) for n in range(count)
        )
    )
    for n in range(count):
        objects[5 + n] = stream(
            picture,
            b"/Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Filter /FlateDecode",
        )
    return pdf(objects)
