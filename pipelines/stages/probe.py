"""Header-first checks in img2dataset's download path, before its full decode.

img2dataset's `Resizer.__call__` decodes the whole image with `cv2.imdecode` and only then
checks, in this order, min size, max area, max aspect ratio. A decompression bomb (a small
file declaring 30,000 x 30,000 pixels) is therefore fully decoded before it is refused,
and the area check comes after the size check, while `catalog.reasons` puts
`too_many_pixels` before `not_an_image` and `image_too_small`.

`HeaderProbeResizer` runs two cheap checks first, then hands over to img2dataset's resizer:
 1. the pixel count from the image header (`PIL.Image.open` parses the header only; no
    pixel data is decoded) against `max_image_area` -> error "too many pixels";
 2. structural completeness of JPEG/PNG/GIF (the end marker is present near the end of
    the file); `cv2.imdecode` silently returns a grey-padded image for a truncated JPEG
    -> error "truncated image" (mapped to `not_an_image`).
Unrecognised bytes go to img2dataset unchanged, whose decoder fails on them.

EXIF orientation: `cv2.imdecode(..., IMREAD_UNCHANGED)` ignores the Orientation tag, so a
photo whose pixels are stored rotated would be kept sideways and its size/aspect checks
would judge the stored, not the displayed, size. When the header carries an Orientation
other than 1, the probe decodes the image with PIL, applies `ImageOps.exif_transpose`, and
hands img2dataset a lossless PNG of the upright picture instead: the size checks, the
recorded original width/height and the stored JPEG are all upright.

`header_probe()` installs the class as the resizer `img2dataset.download` builds (it looks
the name `Resizer` up in `img2dataset.main` at call time); the resizer travels to the Ray
download tasks by pickle, as img2dataset's own does.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Iterator

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations (via img2dataset) would call the network

from img2dataset.resizer import Resizer
from PIL import Image, ImageOps

from pipelines.stages.download import TOO_MANY_PIXELS

i2d_main = importlib.import_module("img2dataset.main")  # the module; `img2dataset.main` the attribute is a function

TRUNCATED = "truncated image"
_TAIL = 4096
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND", "GIF": b";"}
_ORIENTATION = 0x0112  # EXIF tag; 1 = upright, 2-8 = flipped and/or rotated


def header_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from the header alone, or None when PIL does not recognise it."""
    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header, decodes no pixels
            return im.format, im.width, im.height
    except Image.DecompressionBombError:
        raise
    except Exception:  # noqa: BLE001 - any unidentifiable input is for the decoder to refuse
        return None


def probe_error(data: bytes, max_pixels: float) -> str | None:
    """The header-level error for `data`, or None to continue with the full decode."""
    try:
        info = header_size(data)
    except Image.DecompressionBombError:
        return TOO_MANY_PIXELS
    if info is None:
        return None
    fmt, width, height = info
    if width * height > max_pixels:
        return TOO_MANY_PIXELS
    marker = _END_MARKERS.get(fmt)
    if marker is not None and marker not in data[-_TAIL:]:
        return TRUNCATED
    return None


def exif_orientation(data: bytes) -> int:
    """The EXIF Orientation tag (1 when absent or unreadable); read from the header only."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - no readable EXIF: nothing to rotate
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_png(data: bytes) -> bytes | None:
    """A lossless PNG of the picture as displayed (EXIF orientation applied), or None when already upright."""
    if exif_orientation(data) == 1:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            image = ImageOps.exif_transpose(im)
            if image.mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            buf = io.BytesIO()
            image.save(buf, "PNG", compress_level=1)
            return buf.getvalue()
    except Exception:  # noqa: BLE001 - undecodable: img2dataset's decoder reports it
        return None


class HeaderProbeResizer(Resizer):
    """img2dataset's Resizer with the header checks above run first, fed the upright picture."""

    def __call__(self, img_stream, blurring_bbox_list=None):
        img_stream.seek(0)
        data = img_stream.read()
        error = probe_error(data, self.max_image_area)
        if error is not None:
            return None, None, None, None, None, error
        upright = upright_png(data)
        if upright is not None:
            return super().__call__(io.BytesIO(upright), blurring_bbox_list)
        img_stream.seek(0)
        return super().__call__(img_stream, blurring_bbox_list)


@contextlib.contextmanager
def header_probe() -> Iterator[None]:
    """Make `img2dataset.download` build a HeaderProbeResizer for the duration of the block."""
    original = i2d_main.Resizer
    i2d_main.Resizer = HeaderProbeResizer
    try:
        yield
    finally:
        i2d_main.Resizer = original
