"""JPEG and PNG recognised by their bytes, and streaming metadata strippers.

The strippers are generators over chunks of the file: they hold a few bytes
of structure at a time, never the image, and copy the pixel data through
untouched (nothing is decoded or re-encoded). They keep an allowlist of what
decoders need and drop everything else, so a new kind of metadata is dropped
by default:

* JPEG: APP0 JFIF (rewritten without its thumbnail), APP2 ICC_PROFILE, APP14
  Adobe and every non-APP marker segment are kept; an APP1 Exif block is
  replaced by a minimal one holding only its Orientation (0x0112) when that is
  not 1, so phone photos stored sideways still display upright; every other
  APPn (XMP, APP0 JFXX thumbnails, APP13 IPTC/Photoshop, APP2 MPF/FlashPix,
  ...) and COM are dropped, as is anything after EOI (phones append motion
  videos and trailers there).
* PNG: IHDR, PLTE, IDAT, IEND and the ancillary chunks that affect rendering
  or animation are kept; eXIf, tEXt, zTXt, iTXt, tIME and unknown ancillary
  chunks are dropped, as is anything after IEND; an unknown critical chunk
  (one a decoder may not skip) makes the file invalid.

A file that breaks its format's structure raises `InvalidImageError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from irisvue.captures.exif import EXIF_ID, exif_orientation, orientation_segment

JPEG = "image/jpeg"
PNG = "image/png"
SNIFF_BYTES = 8
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_SOI, _EOI, _SOS, _COM = 0xD8, 0xD9, 0xDA, 0xFE
_RST = range(0xD0, 0xD8)
_STANDALONE = {0x01, *_RST}  # markers without a length field
_APP0, _APP1, _APP2, _APP14, _APP15 = 0xE0, 0xE1, 0xE2, 0xEE, 0xEF
_JFIF_ID = b"JFIF\x00"
_JFIF_FIELDS = 14  # identifier, version, units, densities, thumbnail width and height
_ICC_ID = b"ICC_PROFILE\x00"
_ADOBE_ID = b"Adobe"
_APP_ID_BYTES = len(_ICC_ID)

_PNG_MAX_CHUNK = 2**31 - 1
_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
_PNG_KEEP_ANCILLARY = frozenset(
    {
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"hIST", b"pHYs",
        b"sPLT", b"cICP", b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"acTL", b"fcTL", b"fdAT",
    }
)  # fmt: skip


class InvalidImageError(ValueError):
    """The bytes start like a JPEG or PNG but do not follow its structure."""


class UnsupportedImageError(InvalidImageError):
    """A well-formed file using a feature we cannot vouch for (a PNG's unknown critical chunk)."""


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce (JPEG or PNG), or None."""
    if head.startswith(_PNG_MAGIC):
        return PNG
    if head.startswith(_JPEG_MAGIC):
        return JPEG
    return None


class _Source:
    """Pull-based reads over an iterator of chunks: small exact reads, large pass-through."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.buf = b""
        self.pos = 0

    @property
    def available(self) -> int:
        return len(self.buf) - self.pos

    def more(self) -> bool:
        """Append the next non-empty chunk to what is left; False at the end."""
        for chunk in self._chunks:
            if chunk:
                rest = self.buf[self.pos :]
                self.buf = rest + chunk if rest else bytes(chunk)
                self.pos = 0
                return True
        return False

    def exact(self, n: int) -> bytes:
        while self.available < n:
            if not self.more():
                raise InvalidImageError("the image is truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def take(self, n: int) -> Iterator[bytes]:
        """The next `n` bytes, in pieces as they arrive."""
        while n:
            if not self.available and not self.more():
                raise InvalidImageError("the image is truncated")
            piece = self.buf[self.pos : self.pos + n]
            self.pos += len(piece)
            n -= len(piece)
            yield piece

    def skip(self, n: int) -> None:
        for _ in self.take(n):
            pass

    def drain(self) -> None:
        """Consume the rest unseen (it is still counted against the size limit upstream)."""
        self.buf, self.pos = b"", 0
        for _ in self._chunks:
            pass


def _keep_app_segment(marker: int, ident: bytes) -> bool:
    if marker == _APP2:
        return ident.startswith(_ICC_ID)
    if marker == _APP14:
        return ident.startswith(_ADOBE_ID)
    return False


def _jfif_segment(body: bytes) -> bytes:
    """A JFIF APP0 segment with the source's version and density, and no thumbnail."""
    fields = body[: _JFIF_FIELDS - 2] + b"\x00\x00"
    return b"\xff\xe0" + (len(fields) + 2).to_bytes(2, "big") + fields


def _app_segment(src: _Source, marker: int, body: int) -> Iterator[bytes]:
    """What an APPn or COM segment becomes: kept, rewritten or dropped."""
    if marker == _APP0:
        head = src.exact(min(body, _JFIF_FIELDS))
        src.skip(body - len(head))
        if head.startswith(_JFIF_ID) and len(head) == _JFIF_FIELDS:
            yield _jfif_segment(head)  # JFXX (thumbnail extension) and others: dropped
        return
    if marker == _APP1:
        head = src.exact(min(body, len(EXIF_ID)))
        if head == EXIF_ID:
            # One segment is at most 64 KiB: small enough to read whole.
            orientation = exif_orientation(head + src.exact(body - len(head)))
            if orientation not in (None, 1):
                yield orientation_segment(orientation)
        else:
            src.skip(body - len(head))
        return
    ident = src.exact(min(body, _APP_ID_BYTES))
    if marker != _COM and _keep_app_segment(marker, ident):
        yield bytes((0xFF, marker)) + (body + 2).to_bytes(2, "big") + ident
        yield from src.take(body - len(ident))
    else:
        src.skip(body - len(ident))


def _entropy_coded(src: _Source) -> Iterator[bytes]:
    """Scan data up to the next marker that is not RSTn; leaves it unread."""
    while True:
        if not src.available and not src.more():
            raise InvalidImageError("the JPEG ends inside scan data")
        buf, start = src.buf, src.pos
        i = start
        while True:
            i = buf.find(b"\xff", i)
            if i < 0 or i + 1 >= len(buf):
                # No marker in this chunk (or FF is its last byte): pass the rest on.
                end = len(buf) if i < 0 else i
                if end > start:
                    yield buf[start:end]
                src.pos = end
                if not src.more():
                    raise InvalidImageError("the JPEG ends inside scan data")
                break
            follower = buf[i + 1]
            if follower == 0x00 or follower in _RST:
                i += 2  # stuffed byte or restart marker: still scan data
            elif follower == 0xFF:
                i += 1  # fill byte
            else:
                if i > start:
                    yield buf[start:i]
                src.pos = i
                return


def strip_jpeg(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The JPEG without Exif (but its Orientation)/XMP/IPTC/comments/thumbnails;
    pixel data passes unchanged."""
    src = _Source(chunks)
    if src.exact(2) != b"\xff\xd8":
        raise InvalidImageError("not a JPEG")
    yield b"\xff\xd8"
    while True:
        if src.exact(1) != b"\xff":
            raise InvalidImageError("JPEG marker expected")
        marker = src.exact(1)[0]
        while marker == 0xFF:  # fill bytes before a marker
            marker = src.exact(1)[0]
        if marker == _EOI:
            yield b"\xff\xd9"
            src.drain()
            return
        if marker in _STANDALONE:
            yield bytes((0xFF, marker))
            continue
        if marker in (0x00, _SOI):
            raise InvalidImageError("unexpected JPEG marker")
        length_bytes = src.exact(2)
        length = int.from_bytes(length_bytes, "big")
        if length < 2:
            raise InvalidImageError("invalid JPEG segment length")
        body = length - 2
        if _APP0 <= marker <= _APP15 or marker == _COM:
            yield from _app_segment(src, marker, body)
            continue
        yield bytes((0xFF, marker)) + length_bytes
        yield from src.take(body)
        if marker == _SOS:
            yield from _entropy_coded(src)


def strip_png(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The PNG without eXIf/text/time or unknown ancillary chunks; image data unchanged.
    An unknown critical chunk is refused: decoders must not skip it."""
    src = _Source(chunks)
    if src.exact(len(_PNG_MAGIC)) != _PNG_MAGIC:
        raise InvalidImageError("not a PNG")
    yield _PNG_MAGIC
    first = True
    while True:
        header = src.exact(8)
        length = int.from_bytes(header[:4], "big")
        chunk_type = header[4:]
        if length > _PNG_MAX_CHUNK or not chunk_type.isalpha():
            raise InvalidImageError("invalid PNG chunk")
        if first and chunk_type != b"IHDR":
            raise InvalidImageError("a PNG starts with IHDR")
        first = False
        critical = chunk_type[:1].isupper()
        if critical and chunk_type not in _PNG_CRITICAL:
            raise UnsupportedImageError("unknown critical PNG chunk")
        if critical or chunk_type in _PNG_KEEP_ANCILLARY:
            yield header
            yield from src.take(length + 4)  # data and CRC
        else:
            src.skip(length + 4)
        if chunk_type == b"IEND":
            src.drain()
            return
