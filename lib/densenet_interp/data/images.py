"""Robust radiograph image I/O shared by the input pipeline, the explainer and the command line.

Every image enters the project through :func:`read_radiograph`, which turns whatever a user or a dataset hands
over (8-bit or 16-bit grayscale, RGB, RGBA, palette, JPEG, DICOM, ...) into one thing: a ``uint8`` grayscale
array of shape ``(H, W)``. Anything that cannot become such an array raises
:class:`~densenet_interp.errors.DataError` naming the file, so that a bad file costs one clear line instead of
a traceback deep inside TensorFlow.

Decisions:

* DICOM is recognised by content (``DICM`` after the 128-byte preamble, or a preamble-less file starting with
  a DICOM data element), before PIL sees the file, whatever its name; it is read and rendered by
  :mod:`~densenet_interp.data.dicom` (pydicom: Modality LUT, first VOI LUT or window, MONOCHROME1 inverted so
  bone is bright). Everything else is read by PIL, which never sees a file recognised as DICOM (it would read
  nothing, or a TIFF hidden in the preamble, with MONOCHROME1 grey levels inverted).
* Colour is reduced to luminance with PIL's ITU-R 601-2 weights (``L = 0.299 R + 0.587 G + 0.114 B``).
* Transparency is composited on black (a radiograph's background is black), i.e. ``L * alpha / 255``.
* 16-bit and 32-bit images (modes ``I;16*``, ``I``, ``F``) have their *actual* range min..max stretched to
  0..255, because such files rarely use their full nominal range; a constant image becomes all zeros.
* Images with more than :data:`MAX_PIXELS` pixels are refused with a one-line error, read from the header and
  before any pixel is decoded. Downscaled decoding is cheap only for JPEG (``draft``); a PNG must be decoded in
  full first, which for a 20000x20000 RGB image means gigabytes of memory. Real radiographs are far below the
  limit (MURA: long side about 512 px; a full-resolution digital radiograph: about 3000x3500 = 10.5 MP).
* The whole image is decoded (``load()``) so that truncated files fail here and not later.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from . import dicom

MAX_PIXELS = 50_000_000
"""Largest image (width x height) :func:`read_radiograph` decodes: 50 megapixels, about 7000 x 7000."""

# Errors PIL and its codecs raise for files that are not images or are damaged.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)

# Modes with more than 8 bits per pixel, whose actual range is stretched to 0..255.
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def read_radiograph(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as a ``uint8`` grayscale array ``(H, W)``; raise DataError naming the file if not.

    ``max_pixels`` is the refusal limit described in the module docstring (lower it to test the check cheaply).
    """
    path = Path(path)
    _check_file(path)
    if dicom.looks_like_dicom(_header(path)):
        return _read_dicom(path, max_pixels)
    try:
        with Image.open(path) as img:
            _check_size(path, img.size, max_pixels)
            img.load()  # decode every pixel now: a truncated file fails here
            ImageOps.exif_transpose(img, in_place=True)  # honour a camera orientation tag
            gray = _to_gray(img)
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(_too_large_message(str(exc), max_pixels), path) from None
    except UnidentifiedImageError:
        raise DataError(
            "not an image file this project can read (expected PNG, JPEG, TIFF, BMP, DICOM, ...)", path
        ) from None
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot decode image ({type(exc).__name__}: {exc})", path) from None
    if gray.size == 0:
        raise DataError(f"image has zero size ({gray.shape[1]}x{gray.shape[0]} pixels)", path)
    return gray


def _read_dicom(path: Path, max_pixels: int) -> np.ndarray:
    """A DICOM file as ``uint8 (H, W)``: header checks, the pixel limit before decoding, then rendering."""
    ds = dicom.read_header(path)
    _check_size(path, dicom.image_size(ds), max_pixels)
    return dicom.render(ds, path)


def _header(path: Path) -> bytes:
    """The first 132 bytes (a DICOM preamble and its ``DICM``), enough to tell DICOM from the rest."""
    try:
        with path.open("rb") as stream:
            return stream.read(132)
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", path) from None


def _check_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file before PIL sees it, with a precise reason."""
    if not path.exists():
        raise DataError("file not found", path)
    if path.is_dir():
        raise DataError("is a folder, expected an image file", path)
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes), expected an image", path)


def _check_size(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width == 0 or height == 0:
        raise DataError(f"image has zero size ({width}x{height} pixels)", path)
    if width * height > max_pixels:
        raise DataError(
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:g} megapixels; downscale it first (radiographs need far less)",
            path,
        )


def _too_large_message(pil_message: str, max_pixels: int) -> str:
    """Rephrase PIL's decompression-bomb refusal (raised before the size is known to us) in our terms."""
    found = re.search(r"\((\d+) pixels\)", pil_message)
    size = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too many pixels"
    return (
        f"image has {size}, over the limit of {max_pixels / 1e6:g} megapixels; downscale it first "
        "(radiographs need far less)"
    )


def _to_gray(img: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image of any mode to a ``uint8 (H, W)`` luminance array (see module docstring)."""
    mode = img.mode
    if mode == "L":
        return np.array(img, dtype=np.uint8)
    if mode in _HIGH_DEPTH_MODES:
        return _stretch_to_uint8(np.asarray(img))
    has_alpha = mode in ("LA", "La", "RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return np.array(img.convert("RGB").convert("L") if mode == "P" else img.convert("L"), dtype=np.uint8)
    rgba = img.convert("RGBA")
    luma = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.uint32)
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.uint32)
    return ((luma * alpha + 127) // 255).astype(np.uint8)  # composite on black, rounded


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map the finite range min..max of a high-depth array linearly onto 0..255 (constant -> zeros)."""
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = values[finite].min(), values[finite].max()
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = np.where(finite, (values - low) * (255.0 / (high - low)), 0.0)
    return np.rint(scaled).astype(np.uint8)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Scale a ``uint8 (H, W)`` image to ``(size, size)``, as the paper scales every radiograph to 320 x 320.

    The aspect ratio is not kept (the paper and the MURA baseline stretch to the square). PIL's bilinear
    filter widens its support when shrinking, so downscaling is antialiased; the result is deterministic.
    """
    _check_gray(image, "image")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if image.shape == (size, size):
        return image.copy()
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(
        (int(size), int(size)), Image.Resampling.BILINEAR
    )
    return np.array(resized, dtype=np.uint8)


def to_model_input(gray: np.ndarray) -> np.ndarray:
    """Turn ``uint8`` ``(S, S)`` or ``(N, S, S)`` grayscale into the model's ``float32 (N, S, S, 3)`` input.

    Values stay in 0..255 and the gray channel is repeated three times (the DenseNet stem expects RGB);
    the models carry their own normalisation layer, so no scaling happens here.
    """
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 array of shape (S, S) or (N, S, S), got {_describe(gray)}")
    if gray.shape[-1] != gray.shape[-2]:
        raise ValueError(f"expected square images (S, S), got shape {gray.shape}")
    batch = gray[np.newaxis] if gray.ndim == 2 else gray
    return np.repeat(batch[..., np.newaxis].astype(np.float32), 3, axis=-1)


def load_for_model(path: str | Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``path`` and return ``(model input float32 (1, S, S, 3), resized grayscale uint8 (S, S))``."""
    gray = resize_square(read_radiograph(path), size)
    return to_model_input(gray), gray


def _check_gray(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name} must be a non-empty uint8 array of shape (H, W), got {_describe(image)}")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
