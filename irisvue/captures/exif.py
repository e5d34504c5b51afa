"""The one Exif tag stored images keep: Orientation (0x0112), read and written by hand.

Phones store photos sideways with an Orientation of 6 or 8; dropping it makes
them display rotated. Everything else in Exif (GPS, device, times) is dropped,
so the stripper reads this tag out of the APP1 block and writes a new block
that holds only it.
"""

from __future__ import annotations

EXIF_ID = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112


def exif_orientation(body: bytes) -> int | None:
    """The Orientation (1-8) in IFD0 of an APP1 Exif body, or None if absent or malformed."""
    if not body.startswith(EXIF_ID):
        return None
    tiff = body[len(EXIF_ID) :]
    order = tiff[:2]
    if order not in (b"II", b"MM") or len(tiff) < 8:
        return None
    endian = "little" if order == b"II" else "big"

    def number(offset: int, size: int) -> int:
        return int.from_bytes(tiff[offset : offset + size], endian)

    ifd = number(4, 4)
    if ifd + 2 > len(tiff):
        return None
    for index in range(number(ifd, 2)):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(tiff):
            return None
        # SHORT (type 3), one value, stored in the first two bytes of the value field.
        if number(entry, 2) == _ORIENTATION_TAG and number(entry + 2, 2) == 3:
            value = number(entry + 8, 2)
            return value if 1 <= value <= 8 else None
    return None


def orientation_segment(orientation: int) -> bytes:
    """An APP1 Exif segment whose only tag is Orientation: big-endian TIFF, one IFD entry."""
    tiff = (
        b"MM\x00\x2a"
        + (8).to_bytes(4, "big")  # IFD0 right after the header
        + (1).to_bytes(2, "big")  # one entry
        + _ORIENTATION_TAG.to_bytes(2, "big")
        + (3).to_bytes(2, "big")  # SHORT
        + (1).to_bytes(4, "big")  # one value
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + (0).to_bytes(4, "big")  # no next IFD
    )
    body = EXIF_ID + tiff
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
