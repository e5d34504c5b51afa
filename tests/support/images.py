"""Test images made with Pillow: metadata-laden JPEGs and PNGs, and PNGs of any size
generated chunk by chunk."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageCms

GPS_MODEL = "Model-XYZZY-41"  # distinctive bytes to look for after stripping


XMP_PACKET = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="41,52.55N"/></rdf:RDF></x:xmpmeta>'
)


COMMENT = b"shot at 1600 Pennsylvania Ave"


def gradient(size: tuple[int, int] = (96, 64)) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 255) // width, (y * 255) // height, (x * y) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_gps(*, progressive: bool = False, size: tuple[int, int] = (96, 64)) -> bytes:
    """A JPEG carrying EXIF (camera model + GPS), XMP, a comment and an ICC profile."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "IrisCam"
    exif[ExifTags.Base.Model] = GPS_MODEL
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (41.0, 52.0, 55.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (87.0, 37.0, 40.0)
    out = io.BytesIO()
    gradient(size).save(
        out,
        "JPEG",
        quality=92,
        exif=exif,
        xmp=XMP_PACKET,
        comment=COMMENT,
        icc_profile=srgb_profile(),
        progressive=progressive,
    )
    return out.getvalue()


def png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + data)
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def png_with_metadata(size: tuple[int, int] = (80, 48)) -> bytes:
    """A PNG with eXIf, tEXt, zTXt, iTXt, tIME and a private ancillary chunk, plus gAMA."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "41.8781 N, 87.6298 W")
    info.add_text("Comment", "compressed secret " * 20, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = GPS_MODEL
    out = io.BytesIO()
    gradient(size).save(out, "PNG", pnginfo=info, exif=exif)
    data = out.getvalue()
    ihdr_end = 8 + 8 + 13 + 4
    extra = (
        png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 11, 23, 9, 30, 0))
        + png_chunk(b"prVt", b"device serial 12345")
        + png_chunk(b"gAMA", struct.pack(">I", 45455))
    )
    return data[:ihdr_end] + extra + data[ihdr_end:]


def plain_png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    gradient(size).save(out, "PNG")
    return out.getvalue()


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


@dataclass
class BigPng:
    """A valid PNG of about `target` bytes of random pixels, generated chunk by chunk.

    Stored (level 0) deflate keeps the size predictable; nothing holds the whole file.
    """

    target: int
    width: int = 1024
    seed: int = 7

    def chunks(self) -> Iterator[bytes]:
        row_bytes = self.width * 3
        rows = max(1, self.target // (row_bytes + 1))
        rng = random.Random(self.seed)
        yield b"\x89PNG\r\n\x1a\n"
        yield png_chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, rows, 8, 2, 0, 0, 0))
        compressor = zlib.compressobj(0)
        batch = 64
        for start in range(0, rows, batch):
            raw = b"".join(
                b"\x00" + rng.randbytes(row_bytes) for _ in range(min(batch, rows - start))
            )
            data = compressor.compress(raw)
            if data:
                yield png_chunk(b"IDAT", data)
        yield png_chunk(b"IDAT", compressor.flush())
        yield png_chunk(b"IEND", b"")

    def measure(self) -> tuple[int, str]:
        """(size, sha256) of the file, computed by generating it once."""
        digest, size = hashlib.sha256(), 0
        for chunk in self.chunks():
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()


def jpeg_sideways(orientation: int = 6, size: tuple[int, int] = (96, 64)) -> bytes:
    """A phone-style JPEG: pixels stored sideways, Exif Orientation plus GPS and device tags."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "IrisCam"
    exif[ExifTags.Base.Model] = GPS_MODEL
    exif[ExifTags.Base.DateTime] = "2026:11:23 09:30:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (41.0, 52.0, 55.0)
    out = io.BytesIO()
    gradient(size).save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def jpeg_with_jfxx_thumbnail() -> bytes:
    """A JFIF JPEG that also carries an APP0 JFXX extension with a JPEG thumbnail."""
    thumb = io.BytesIO()
    gradient((16, 16)).save(thumb, "JPEG", quality=50)
    body = b"JFXX\x00\x10" + thumb.getvalue()
    segment = b"\xff\xe0" + struct.pack(">H", len(body) + 2) + body
    main = io.BytesIO()
    gradient().save(main, "JPEG", quality=92)
    data = main.getvalue()
    jfif_end = 4 + struct.unpack(">H", data[4:6])[0]  # SOI, then the JFIF APP0 segment
    assert data[6:11] == b"JFIF\x00"
    return data[:jfif_end] + segment + data[jfif_end:]


def png_with_critical_chunk(chunk_type: bytes = b"ZaRk") -> bytes:
    """A valid PNG plus an unknown critical chunk (upper-case first letter) after IHDR."""
    data = plain_png()
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + png_chunk(chunk_type, b"must be understood") + data[ihdr_end:]
