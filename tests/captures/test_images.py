"""The streaming strippers as plain functions: same output whatever the chunking."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator

import pytest

from irisvue.captures.images import (
    JPEG,
    PNG,
    InvalidImageError,
    sniff,
    strip_jpeg,
    strip_png,
)
from tests.support.images import (
    GPS_MODEL,
    jpeg_with_gps,
    pixels,
    plain_png,
    png_chunk,
    png_with_metadata,
)


def _segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def _with_segments(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _chunked(data: bytes, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.choice((1, 1, 2, 3, 7, 64, 1000))
        yield data[i : i + n]
        i += n


def test_sniffing_looks_at_bytes_only():
    assert sniff(jpeg_with_gps()[:8]) == JPEG
    assert sniff(plain_png()[:8]) == PNG
    assert sniff(b"GIF89a\x00\x00") is None
    assert sniff(b"<svg xml") is None
    assert sniff(b"\xff\xd8") is None
    assert sniff(b"") is None


@pytest.mark.parametrize("seed", range(5))
def test_jpeg_output_does_not_depend_on_chunk_boundaries(seed):
    original = jpeg_with_gps(progressive=seed % 2 == 1)
    whole = b"".join(strip_jpeg([original]))
    assert b"".join(strip_jpeg(_chunked(original, seed))) == whole
    assert GPS_MODEL.encode() not in whole
    assert pixels(whole) == pixels(original)


def test_jpeg_allowlist_of_app_segments():
    original = jpeg_with_gps()
    doctored = _with_segments(
        original,
        _segment(0xE2, b"MPF\x00" + b"\x00" * 20),  # multi-picture index: dropped
        _segment(0xED, b"Photoshop 3.0\x008BIM location"),  # IPTC: dropped
        _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"),  # colour transform: kept
        _segment(0xEB, b"JP\x00\x00jumbf c2pa manifest"),  # APP11: dropped
        _segment(0xFE, b"comment"),  # COM: dropped
    )
    stripped = b"".join(strip_jpeg([doctored + b"TRAILER: motion photo mp4"]))
    assert b"MPF\x00" not in stripped and b"8BIM" not in stripped
    assert b"jumbf" not in stripped and b"comment" not in stripped
    assert b"Adobe\x00\x64" in stripped
    assert b"ICC_PROFILE\x00" in stripped and b"JFIF\x00" in stripped
    assert stripped.endswith(b"\xff\xd9")  # nothing after EOI
    assert pixels(stripped) == pixels(original)


def test_jpeg_app_segment_shorter_than_an_identifier():
    original = jpeg_with_gps()
    stripped = b"".join(strip_jpeg([_with_segments(original, _segment(0xE1, b"E"))]))
    assert pixels(stripped) == pixels(original)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda j: j[:-300], id="truncated-in-scan"),
        pytest.param(lambda j: j[:30], id="truncated-in-header"),
        pytest.param(lambda j: j[:2] + b"\x00\x00garbage", id="no-marker"),
        pytest.param(lambda j: j[:2] + b"\xff\xe1\x00\x01", id="length-below-2"),
        pytest.param(lambda j: j[:2] + b"\xff\xd8" + j[2:], id="second-soi"),
    ],
)
def test_broken_jpeg_raises(broken):
    with pytest.raises(InvalidImageError):
        b"".join(strip_jpeg([broken(jpeg_with_gps())]))


@pytest.mark.parametrize("seed", range(3))
def test_png_output_does_not_depend_on_chunk_boundaries(seed):
    original = png_with_metadata()
    whole = b"".join(strip_png([original]))
    assert b"".join(strip_png(_chunked(original, seed))) == whole
    for chunk_type in (b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME", b"prVt"):
        assert chunk_type not in whole
    assert pixels(whole) == pixels(original)


def test_png_keeps_critical_and_rendering_chunks_and_nothing_after_iend():
    original = plain_png()
    ihdr_end = 8 + 8 + 13 + 4
    doctored = (
        original[:ihdr_end]
        + png_chunk(b"iCCP", b"sRGB\x00\x00" + b"x" * 10)
        + png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))
        + png_chunk(b"caBX", b"c2pa manifest")
        + original[ihdr_end:]
        + b"appended secret"
    )
    stripped = b"".join(strip_png([doctored]))
    assert b"iCCP" in stripped and b"pHYs" in stripped
    assert b"caBX" not in stripped and b"appended secret" not in stripped
    assert stripped.endswith(png_chunk(b"IEND", b""))


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda p: p[:-12], id="no-iend"),
        pytest.param(lambda p: p[:8] + png_chunk(b"IDAT", b"x") + p[8:], id="idat-before-ihdr"),
        pytest.param(lambda p: p[:12] + b"IH#R" + p[16:], id="bad-chunk-type"),
        pytest.param(lambda p: p[:8] + b"\xff\xff\xff\xff" + p[12:], id="huge-length"),
    ],
)
def test_broken_png_raises(broken):
    with pytest.raises(InvalidImageError):
        b"".join(strip_png([broken(plain_png())]))
