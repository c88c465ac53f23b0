"""DICOM radiographs: recognised by their content, rendered as the display they were meant for.

:func:`~densenet_interp.data.images.read_radiograph` asks :func:`looks_like_dicom` first, before PIL sees
the file, and hands DICOM files to :func:`read_header` and :func:`render` (pydicom). The result is what every
other image becomes: a ``uint8`` grayscale array ``(H, W)``, bone bright; every refusal is one
:class:`~densenet_interp.errors.DataError` line naming the file.

Decisions:

* Recognition by content, never by file name (``.dcm`` or no suffix at all). A file is DICOM if it carries
  ``DICM`` at byte 128 (after the preamble), unless it starts with the magic number of a PNG, JPEG, GIF, BMP
  or WebP file (which may happen to hold those bytes in a text chunk or comment). A file without the preamble
  is taken for DICOM if its first bytes are a DICOM data element of group ``0002`` (file meta) or ``0008``
  (every image dataset starts there: SOP Class UID is mandatory), in either byte order and with either an
  explicit VR or a short implicit length; pydicom's forced parse (``dcmread(force=True)``) must then yield
  pixel data, else the file is refused as a DICOM file without pixel data. Only such files are ever given to
  the forced parse, so no PNG, JPEG, TIFF, BMP or text file can be mistaken for DICOM. A preamble-less file
  without file meta gets its transfer syntax from the encoding pydicom detected (implicit/explicit VR, byte
  order).
* Refused with one line: no pixel data (also what a file cut inside its header looks like); float pixel data;
  colour (Samples per Pixel not 1, or Photometric Interpretation not ``MONOCHROME1``/``MONOCHROME2``);
  multi-frame (Number of Frames above 1); over ``max_pixels`` (Rows x Columns from the header, before any
  pixel is decoded, with the same message as other images); a compressed transfer syntax whose decoder is not
  installed (pydicom decodes RLE itself and JPEG baseline / JPEG 2000 with Pillow; JPEG-LS, JPEG lossless and
  HTJ2K need ``pylibjpeg`` or ``gdcm``, which this project does not install); pixel data that is truncated,
  corrupt or that the decoder rejects; an invalid window or VOI LUT.
* Rendering, in the order of the DICOM grayscale pipeline (PS3.4 N.2.1):

  1. stored values as pydicom decodes them: bits above Bits Stored masked off, signed values (Pixel
     Representation 1) sign-extended;
  2. the Modality LUT: the Modality LUT Sequence if present, else Rescale Slope/Intercept
     (``pydicom.pixels.apply_modality_lut``);
  3. the VOI transform (``pydicom.pixels.apply_voi_lut``, index 0, ``prefer_lut=True``): the *first* VOI LUT
     of the VOI LUT Sequence if present, else the *first* window of Window Center/Width (further values are
     alternative views and are ignored; the VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID is honoured).
     The VOI output is mapped linearly onto 0..255 by its own output range: for a window, the values pydicom
     gives below and above the window (so the window's lower edge is black and its upper edge white); for a
     VOI LUT, the smallest and largest entry of that LUT (not the nominal 2^bits range, which many writers
     overstate, e.g. 12-bit entries under a 16-bit descriptor);
  4. without a VOI LUT or window, the *actual* range min..max of the Modality LUT output is stretched to
     0..255 (not the nominal Bits Stored range), as for 16-bit PNG/TIFF files in
     :mod:`~densenet_interp.data.images`; a constant image becomes all zeros before step 5;
  5. ``MONOCHROME1`` (minimum value is white, the convention of computed radiography) is inverted,
     ``255 - value``, so that bone (dense) is bright as in ``MONOCHROME2``. Presentation LUT Shape is not
     applied on top: in DX and CR files ``INVERSE`` only restates ``MONOCHROME1``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

# Magic numbers of other formats read_radiograph accepts: such a file is never DICOM, even with "DICM" at 128.
_OTHER_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"RIFF")

# The group of the first data element of a preamble-less DICOM file, little- and big-endian.
_FIRST_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")

_VRS = frozenset(
    (
        b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW "
        b"PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV"
    ).split()
)

# What pydicom (and the codecs it calls) raise for files it cannot parse or decode.
_PYDICOM_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
)


def looks_like_dicom(header: bytes) -> bool:
    """True if a file starting with ``header`` (its first 132 bytes or fewer) is DICOM by content.

    See the module docstring: ``DICM`` after the 128-byte preamble (but never for PNG/JPEG/GIF/BMP/WebP magic
    numbers), or a first data element of group 0002 or 0008 for files without the preamble.
    """
    if header.startswith(_OTHER_MAGIC):
        return False
    if header[128:132] == b"DICM":
        return True
    if len(header) < 8 or header[:2] not in _FIRST_GROUPS:
        return False
    if header[4:6] in _VRS:  # explicit VR
        return True
    little = header[:2] in (b"\x02\x00", b"\x08\x00")
    (length,) = struct.unpack("<I" if little else ">I", header[4:8])  # implicit VR: a short first value
    return length < 1024


def read_header(path: Path):
    """Parse a DICOM file (pydicom ``Dataset``) and refuse what :func:`render` cannot render, before decoding.

    The pixel data stays encoded; the caller checks ``image_size`` against its pixel limit, then calls
    :func:`render`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, force=True)
    except (InvalidDicomError, *_PYDICOM_ERRORS) as exc:
        raise DataError(f"cannot parse DICOM file ({_one_line(exc)})", path) from None
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise DataError("DICOM float pixel data is not supported (expected integer pixel data)", path)
        raise DataError("DICOM file has no pixel data (not an image, or the file is truncated)", path)
    samples = _int(ds, "SamplesPerPixel", 1, path)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if samples == 1 and not photometric:
        raise DataError("DICOM header lacks Photometric Interpretation (expected MONOCHROME1 or 2)", path)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(
            f"colour DICOM (Photometric Interpretation {photometric or 'missing'}, Samples per Pixel "
            f"{samples}) is not supported; expected a grayscale MONOCHROME1 or MONOCHROME2 radiograph",
            path,
        )
    frames = _int(ds, "NumberOfFrames", 1, path)
    if frames > 1:
        raise DataError(f"multi-frame DICOM ({frames} frames) is not supported; expected one image", path)
    if "Rows" not in ds or "Columns" not in ds:
        raise DataError("DICOM header lacks Rows or Columns", path)
    _ensure_transfer_syntax(ds)
    return ds


def image_size(ds) -> tuple[int, int]:
    """``(width, height)`` from the header (Columns, Rows), without decoding a pixel."""
    return int(ds.Columns), int(ds.Rows)


def render(ds, path: Path) -> np.ndarray:
    """Decode the (single, grayscale) frame of ``ds`` and render it as ``uint8 (H, W)`` (module docstring)."""
    from pydicom.pixels import apply_modality_lut

    stored = _decode(ds, path)
    try:
        values = apply_modality_lut(stored, ds)
        shown, low, high = _apply_voi(values, ds)
    except _PYDICOM_ERRORS as exc:
        raise DataError(
            f"cannot apply the DICOM Modality LUT, window or VOI LUT ({_one_line(exc)})", path
        ) from None
    gray = _stretch(shown, low, high)
    if str(ds.PhotometricInterpretation).strip().upper() == "MONOCHROME1":
        gray = 255 - gray  # minimum is white: invert so that bone is bright, as in MONOCHROME2
    return gray


def _decode(ds, path: Path) -> np.ndarray:
    """The stored values of the one frame, ``(Rows, Columns)``; one-line DataError for whatever fails."""
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_transfer_syntax:
        raise DataError(f"DICOM transfer syntax {syntax!s} is not one pydicom knows", path)
    if syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise DataError(f"DICOM transfer syntax {_syntax_name(syntax)} is not supported", path) from None
        if not decoder.is_available:
            raise DataError(
                f"compressed DICOM (transfer syntax {_syntax_name(syntax)}) needs a decoder that is not "
                "installed (pylibjpeg or gdcm); decompress it first, e.g. with dcmtk's dcmdjpeg",
                path,
            )
    try:
        stored = ds.pixel_array
    except _PYDICOM_ERRORS as exc:
        if syntax.is_compressed:  # corrupt data, or a decoder that lacks this variant (e.g. 12-bit JPEG)
            problem = (
                f"cannot decode the compressed DICOM pixel data (transfer syntax {_syntax_name(syntax)})"
            )
        else:
            problem = "truncated or corrupt DICOM pixel data"
        raise DataError(f"{problem}: {_one_line(exc)}", path) from None
    if stored.ndim != 2 or stored.shape != (int(ds.Rows), int(ds.Columns)):
        raise DataError(
            f"DICOM pixel data decodes to shape {stored.shape}, expected one frame of "
            f"{int(ds.Rows)}x{int(ds.Columns)}",
            path,
        )
    return stored


def _apply_voi(values: np.ndarray, ds) -> tuple[np.ndarray, float, float]:
    """``(VOI output, value shown black, value shown white)``; without a VOI, the actual min..max."""
    from pydicom.pixels import apply_voi_lut

    lut = _first_voi_lut(ds)
    if lut is not None:
        first, entries = lut
        # the LUT is indexed by integers: round, and clip to its domain here (pydicom's uint16 index wraps)
        index = np.clip(np.rint(values), first, first + len(entries) - 1).astype(np.int64)
        return apply_voi_lut(index, ds, index=0, prefer_lut=True), float(entries.min()), float(entries.max())
    if _present(ds, "WindowCenter") and _present(ds, "WindowWidth"):
        shown = apply_voi_lut(values, ds, index=0, prefer_lut=True)
        # the window's output range: what pydicom makes of values below and above the window
        low, high = apply_voi_lut(np.array([-np.inf, np.inf]), ds, index=0, prefer_lut=True)
        return shown, float(low), float(high)
    finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    if finite.size == 0:
        return values, 0.0, 0.0
    return values, float(finite.min()), float(finite.max())


def _first_voi_lut(ds) -> tuple[int, np.ndarray] | None:
    """``(first input value mapped, every entry)`` of the first VOI LUT, or None if there is no usable one."""
    from pydicom.pixels import apply_voi

    sequence = ds.get("VOILUTSequence")
    if not sequence or sequence[0].get("LUTDescriptor") is None or sequence[0].get("LUTData") is None:
        return None  # the same test as pydicom's apply_voi_lut: otherwise the window (if any) applies
    count, first = int(sequence[0].LUTDescriptor[0]) or 2**16, int(sequence[0].LUTDescriptor[1])
    return first, apply_voi(np.arange(first, first + count, dtype=np.int64), ds, index=0)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low`` to 0 and ``high`` to 255 linearly, clipped and rounded (``low == high``: zeros)."""
    if high == low or not (np.isfinite(low) and np.isfinite(high)):
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    scaled = np.where(np.isfinite(scaled), scaled, 0.0)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _ensure_transfer_syntax(ds) -> None:
    """Give a file without (a transfer syntax in its) file meta the syntax pydicom detected while parsing."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if meta.get("TransferSyntaxUID"):
        return
    implicit, little = ds.original_encoding
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian


def _present(ds, keyword: str) -> bool:
    """The element is there and not empty (an empty Window Center means: no window)."""
    value = ds.get(keyword)
    if value is None or isinstance(value, str | bytes):
        return bool(value)
    return not hasattr(value, "__len__") or len(value) > 0  # a number, or a non-empty multi-value


def _int(ds, keyword: str, default: int, path: Path) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"DICOM {keyword} is not a number ({value!r})", path) from None


def _syntax_name(syntax) -> str:
    return getattr(syntax, "name", str(syntax)) or str(syntax)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
