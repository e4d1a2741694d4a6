"""The one place that reads images: from bytes or from a path, with the channel order in each function's name.

Every reader (the dataset checks, the training and eval pipelines, predict.py, the C++ reference outputs) decodes
with OpenCV's IMREAD_COLOR, so all of them see the same pixels. An image's size is read from its header before it
is decoded, and an image over MAX_IMAGE_PIXELS is refused without decoding it.
"""
from __future__ import annotations

import numpy as np

# A decoded image costs height * width * 3 bytes, and its header can claim any size (a 600-byte JPEG may say
# 20000x20000 and make the decoder allocate 1.2 GB before it finds the data missing). So the size is read from the
# header first and big images are skipped, not downscaled: a resized copy would need re-encoding and rescaled boxes,
# and the user should choose how to shrink their data. 8192x8192 leaves photos and aerial tiles untouched.
MAX_IMAGE_PIXELS = 8192 * 8192

_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (not DHT, JPG, DAC)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, walking the marker segments; None when it cannot be found."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:                       # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:   # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):               # end of image, or a scan before any frame header
            return None
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_FRAME_MARKERS:
            if i + 9 > n:
                return None
            return int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
        i += 2 + length
    return None


def image_header(data: bytes) -> tuple[str, tuple[int, int] | None]:
    """(format name, (height, width) or None) read from the first bytes, without decoding.

    Covers the formats datasets use (JPEG, PNG, BMP); others are named "other" and only their decoded size is
    checked.
    """
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG", _jpeg_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if data[12:16] == b"IHDR" and len(data) >= 24:
            return "PNG", (int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big"))
        return "PNG", None
    if data[:2] == b"BM" and len(data) >= 26:  # Windows header (OS/2's 16-bit one is left to the decoder)
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = int.from_bytes(data[22:26], "little", signed=True)  # negative: rows stored top-down
        return "BMP", (abs(height), abs(width))
    return "other", None


def too_large(height: int, width: int) -> str:
    return (f"{width}x{height} is {height * width / 1e6:.0f} megapixels, more than the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f}; downscale it and its boxes")


def decode_bgr(data) -> np.ndarray | None:
    """HWC uint8 BGR image (OpenCV's order) from encoded bytes (or a MindRecord ``S…`` array), or None.

    Never raises: a bad file is the data's fault, not ours. Decodes by content, whatever the file's name says.
    """
    import cv2  # imported here so that parsing annotations never pays for OpenCV

    if isinstance(data, np.ndarray):
        data = data.tobytes()
    level = cv2.getLogLevel()
    try:
        cv2.setLogLevel(2)  # errors only: OpenCV warns about some broken files, and our skip line names the file
        buf = np.frombuffer(data, np.uint8)
        if buf.size == 0:
            return None
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except Exception:  # cv2.error, MemoryError for absurd headers, ...: all mean "cannot read this image"
        return None
    finally:
        cv2.setLogLevel(level)


def decode_rgb(data) -> np.ndarray | None:
    """HWC uint8 RGB image from encoded bytes, or None (see :func:`decode_bgr`)."""
    import cv2

    image = decode_bgr(data)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_file(path) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None), or (None, why they cannot be used): empty, or too large by its header."""
    data = np.fromfile(path, np.uint8).tobytes()
    if not data:
        return None, "empty file"
    _, size = image_header(data)
    if size and size[0] * size[1] > MAX_IMAGE_PIXELS:   # refused before decoding, as in the data checks
        return None, too_large(*size)
    return data, None


def read_bgr(path) -> tuple[np.ndarray | None, str | None]:
    """(HWC uint8 BGR image, None) from an image file, or (None, the reason it cannot be used)."""
    data, reason = read_image_file(path)
    if data is None:
        return None, reason
    image = decode_bgr(data)
    return (image, None) if image is not None else (None, "not a readable image")


def read_rgb(path) -> tuple[np.ndarray | None, str | None]:
    """(HWC uint8 RGB image, None) from an image file, or (None, the reason it cannot be used)."""
    import cv2

    image, reason = read_bgr(path)
    return (None, reason) if image is None else (cv2.cvtColor(image, cv2.COLOR_BGR2RGB), None)
