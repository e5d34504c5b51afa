"""Stored photos keep their Exif Orientation (and nothing else of Exif), JFIF thumbnails
are dropped, and a PNG with an unknown critical chunk is refused: through HTTP."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image, ImageOps

from irisvue.captures.images import strip_jpeg
from tests.support.images import (
    GPS_MODEL,
    jpeg_sideways,
    jpeg_with_gps,
    jpeg_with_jfxx_thumbnail,
    pixels,
    png_with_critical_chunk,
)
from tests.support.uploads import CAPTURES, upload


def _round_trip(client, headers, data: bytes, **kwargs) -> bytes:
    created = upload(client, headers, data, **kwargs)
    assert created.status_code == 201, created.get_json()
    content = client.get(f"{CAPTURES}{created.get_json()['id']}/content", headers=headers)
    assert content.status_code == 200
    return content.data


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_orientation_survives_the_round_trip_and_nothing_else_of_exif(
    client, signed_in, orientation
):
    _, headers = signed_in()
    original = jpeg_sideways(orientation)
    stored = _round_trip(client, headers, original)

    with Image.open(io.BytesIO(stored)) as image:
        exif = image.getexif()
        assert dict(exif) == {ExifTags.Base.Orientation: orientation}
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        upright = ImageOps.exif_transpose(image)
        # Stored 96x64; 6 and 8 turn it a quarter, 3 half a turn.
        assert upright.size == ((64, 96) if orientation in (6, 8) else (96, 64))
    assert GPS_MODEL.encode() not in stored and b"IrisCam" not in stored
    assert b"2026:11:23" not in stored
    assert pixels(stored) == pixels(original)  # the pixels are not re-encoded


def test_upright_photos_get_no_exif_at_all(client, signed_in):
    _, headers = signed_in()
    stored = _round_trip(client, headers, jpeg_sideways(1))
    assert b"Exif\x00\x00" not in stored
    stored = _round_trip(client, headers, jpeg_with_gps())
    assert b"Exif\x00\x00" not in stored and GPS_MODEL.encode() not in stored


def test_jfxx_thumbnail_is_dropped_and_jfif_kept(client, signed_in):
    _, headers = signed_in()
    original = jpeg_with_jfxx_thumbnail()
    stored = _round_trip(client, headers, original)
    assert b"JFXX" not in stored
    assert stored.count(b"\xff\xd8") == 1  # the thumbnail's own JPEG is gone
    assert stored[6:11] == b"JFIF\x00"
    assert pixels(stored) == pixels(original)


def test_a_jfif_thumbnail_inside_app0_is_dropped():
    original = jpeg_with_gps()
    length = int.from_bytes(original[4:6], "big")
    thumb = bytes([2, 2]) + bytes(range(12))  # a 2x2 RGB thumbnail in the JFIF header
    jfif = original[6 : 6 + 12] + thumb
    doctored = original[:4] + (len(jfif) + 2).to_bytes(2, "big") + jfif + original[4 + length :]
    stripped = b"".join(strip_jpeg([doctored]))
    assert stripped[4:6] == (16).to_bytes(2, "big")
    assert stripped[18:20] == b"\x00\x00"  # no thumbnail
    assert pixels(stripped) == pixels(original)


def test_png_with_an_unknown_critical_chunk_is_refused(client, signed_in):
    _, headers = signed_in()
    response = upload(
        client, headers, png_with_critical_chunk(), filename="iris.png", content_type="image/png"
    )
    assert response.status_code == 415
    assert response.get_json()["code"] == "unsupported_media_type"
    assert client.get(CAPTURES, headers=headers).get_json()["items"] == []
