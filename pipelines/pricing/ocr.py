"""Reading prices that rival sites draw as images, with Tesseract (through pytesseract).

A read is only trusted when Tesseract is sure of every word and the text is a well-formed price
(``1,299.00`` or ``1299.00``); anything else comes back without a price and with the reason, so the
crawler quarantines the image rather than landing a guess.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

__all__ = ["OcrRead", "OcrUnavailable", "parse_price_number", "read_price", "tesseract_cmd"]

# Only what a price can hold: Tesseract then cannot read a "5" as an "S".
WHITELIST = "0123456789.,"
# One line of text (--psm 7).
_CONFIG = f"--psm 7 -c tessedit_char_whitelist={WHITELIST}"
# How an image is prepared, tried in turn until one read is sure enough: twice the size with a hard
# black/white split reads shop-style price images best (larger upscales blur digits into each other);
# the untouched grey image is the second opinion for the few that the split leaves unsure.
_PASSES: tuple[tuple[int, int | None], ...] = ((2, 128), (1, None))
_BORDER = 20
_PRICE_NUMBER = re.compile(r"^(\d{1,3}(?:,\d{3})+|\d+)\.(\d{2})$")


class OcrUnavailable(RuntimeError):
    """The Tesseract binary cannot be found or run."""


@dataclass(frozen=True)
class OcrRead:
    """One image read.

    Attributes:
        price: The price, or None when the read is not trusted.
        text: What Tesseract read.
        confidence: Tesseract's lowest word confidence (0-100); 0 when nothing was read.
        reason: Why the price is None; None when it is not.
    """

    price: float | None
    text: str
    confidence: float
    reason: str | None


def tesseract_cmd() -> str:
    """The Tesseract binary: ``TESSERACT_CMD`` when set, else ``tesseract`` on the PATH.

    Raises:
        OcrUnavailable: Neither is there; the message says how to install it.
    """
    cmd = os.environ.get("TESSERACT_CMD") or shutil.which("tesseract")
    if not cmd or not (os.path.isfile(cmd) or shutil.which(cmd)):
        raise OcrUnavailable(
            "Tesseract OCR is not installed (needed to read rival prices drawn as images): run "
            "`make setup` (installs Debian's tesseract-ocr when run as root), or `apt-get install "
            "tesseract-ocr` / `brew install tesseract`, or set TESSERACT_CMD to the binary's path"
            + (
                f" (TESSERACT_CMD={os.environ['TESSERACT_CMD']} does not exist)"
                if os.environ.get("TESSERACT_CMD")
                else ""
            )
        )
    return cmd


def parse_price_number(text: str) -> float | None:
    """A price written without currency (``1,299.00``, ``1299.00``), or None if it is not one."""
    match = _PRICE_NUMBER.match(text.strip())
    if match is None:
        return None
    whole, cents = match.groups()
    return (int(whole.replace(",", "")) * 100 + int(cents)) / 100


def read_price(png: bytes, min_confidence: float) -> OcrRead:
    """Read a price image with Tesseract.

    Args:
        png: The image (any format Pillow opens).
        min_confidence: Lowest acceptable word confidence (0-100).

    Returns:
        The read; ``price`` is None (and ``reason`` says why) when the image cannot be opened, the
        confidence is too low, or the text is not a well-formed price.

    Raises:
        OcrUnavailable: Tesseract is not installed.
    """
    import pytesseract
    from PIL import Image, ImageOps, UnidentifiedImageError

    pytesseract.pytesseract.tesseract_cmd = tesseract_cmd()
    try:
        img = Image.open(io.BytesIO(png))
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        return OcrRead(None, "", 0.0, f"not an image: {exc}")
    gray = ImageOps.autocontrast(img.convert("L"))
    read = OcrRead(None, "", 0.0, "no text read")
    for upscale, threshold in _PASSES:
        prepared = gray
        if upscale > 1:
            size = (gray.width * upscale, gray.height * upscale)
            prepared = prepared.resize(size, Image.Resampling.LANCZOS)
        if threshold is not None:
            prepared = prepared.point(lambda v, t=threshold: 255 if v > t else 0)
        read = _read(pytesseract, ImageOps.expand(prepared, _BORDER, fill=255), min_confidence)
        if read.price is not None:
            return read
    return read


def _read(pytesseract: Any, image: Any, min_confidence: float) -> OcrRead:
    try:
        data = pytesseract.image_to_data(image, config=_CONFIG, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailable(str(exc)) from exc
    words = [(w.strip(), float(c)) for w, c in zip(data["text"], data["conf"], strict=True) if w.strip()]
    text = " ".join(w for w, _ in words)
    confidence = min((c for _, c in words), default=0.0)
    if not words:
        return OcrRead(None, "", 0.0, "no text read")
    if confidence < min_confidence:
        return OcrRead(None, text, confidence, f"OCR confidence {confidence:.0f} < {min_confidence:.0f}")
    price = parse_price_number(text)
    if price is None:
        return OcrRead(None, text, confidence, f"OCR text {text!r} is not a well-formed price")
    return OcrRead(price, text, confidence, None)
