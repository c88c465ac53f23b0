"""DICOM in, everywhere a radiograph comes in: recognition by content, the grayscale pipeline, refusals.

Every test states the rule it protects. The DICOM files are written here with pydicom (explicit VR little
endian, with and without the 128-byte preamble) or taken from the test files inside the pydicom wheel (only
files present on disk: nothing is downloaded). Expected renderings are computed independently with numpy from
the stored values, with the formulas of the DICOM standard, never with the code under test.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from densenet_interp.cli import main
from densenet_interp.data.images import load_for_model, read_radiograph, resize_square
from densenet_interp.errors import DataError
from dicom_support import cr_dataset as _dataset
from dicom_support import write_dicom as _write

BUNDLED = Path(pydicom.data.__file__).parent / "test_files"


# ------------------------------------------------------------------------------------------------ helpers
def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 (LINEAR) onto 0..255, written out here independently of pydicom."""
    x = values.astype(np.float64)
    low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    out = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.where(x <= low, 0.0, np.where(x > high, 255.0, out)))


def _stretch(values: np.ndarray) -> np.ndarray:
    """The actual range min..max onto 0..255, rounded."""
    x = values.astype(np.float64)
    return np.rint((x - x.min()) * 255.0 / (x.max() - x.min()))


def _assert_close(image: np.ndarray, expected: np.ndarray) -> None:
    """uint8 (H, W), within one grey level of ``expected`` (rounding of .5 may go either way)."""
    assert image.dtype == np.uint8 and image.shape == expected.shape
    assert np.abs(image.astype(np.int64) - expected.astype(np.int64)).max() <= 1


def _bundled(name: str) -> Path:
    """A test file shipped inside the pydicom wheel (never one pydicom would download)."""
    path = BUNDLED / name
    assert path.is_file(), f"{name} is not in the installed pydicom wheel"
    return path


def _phantom_display(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The *intended* display of a synthetic radiograph in 0..1 (dark background, grey soft tissue, bright
    bone shaft) and the bone mask."""
    rows, cols = np.mgrid[0:96, 0:80]
    tissue = ((rows - 48) / 44) ** 2 + ((cols - 40) / 26) ** 2 < 1
    bone = (np.abs(cols - 40 - (rows - 48) * 0.15) < 7) & (np.abs(rows - 48) < 40)
    display = np.where(bone, 0.9, np.where(tissue, 0.4, 0.05))
    display += np.random.default_rng(seed).normal(0, 0.02, display.shape)
    return np.clip(display, 0, 1), bone


# ---------------------------------------------------------------------------------------- the key rendering
def test_monochrome1_radiograph_shows_bone_bright(tmp_path):
    """A computed-radiography MONOCHROME1 file (10 bits stored in 16, preamble, first of two windows) is shown
    as intended: bone bright. The result follows an independent numpy rendering (window, then invert) and runs
    against the stored values, where bone is *low* (minimum is white in MONOCHROME1)."""
    display, bone = _phantom_display()
    stored = np.rint((1 - display) * 1023).astype(np.uint16)  # MONOCHROME1: dense = low value
    path = _write(
        tmp_path / "cr.dcm",
        _dataset(stored, "MONOCHROME1", 10, WindowCenter=[480, 200], WindowWidth=[900, 300]),
    )
    assert path.read_bytes()[128:132] == b"DICM"
    image = read_radiograph(path)
    expected = 255 - _window(stored, 480, 900)
    _assert_close(image, expected)
    assert np.corrcoef(image.ravel(), expected.ravel())[0, 1] > 0.9
    assert np.corrcoef(image.ravel(), stored.ravel().astype(np.float64))[0, 1] < -0.9
    assert image[bone].mean() > image[~bone].mean() + 100


def test_monochrome1_is_the_inverse_of_monochrome2(tmp_path):
    """The same stored values as MONOCHROME1 and MONOCHROME2 give exact complements (255 - value)."""
    stored = np.random.default_rng(2).integers(0, 4096, (20, 30)).astype(np.uint16)
    one = read_radiograph(_write(tmp_path / "one.dcm", _dataset(stored, "MONOCHROME1", 12)))
    two = read_radiograph(_write(tmp_path / "two.dcm", _dataset(stored, "MONOCHROME2", 12)))
    np.testing.assert_array_equal(one.astype(np.int64) + two, np.full(stored.shape, 255))
    _assert_close(two, _stretch(stored))


# ------------------------------------------------------------------------------------------ bits and signs
def _twelve_bit_two_complement(values: np.ndarray) -> np.ndarray:
    """Signed 12-bit values as written in 16 allocated bits *without* sign extension (bits 12-15 zero)."""
    return (values.astype(np.int64) & 0x0FFF).astype(np.uint16).view(np.int16)


@pytest.mark.parametrize(
    ("name", "values", "written", "bits_stored"),
    [
        ("8-bit unsigned", np.arange(40, 190, dtype=np.uint8), None, 8),
        ("12-bit unsigned, junk in bits 12-15", np.arange(100, 3100, 20, dtype=np.uint16), "junk", 12),
        ("12-bit signed", np.arange(-2000, 1500, 25, dtype=np.int16), "twelve", 12),
        ("16-bit unsigned above 32767", np.arange(30000, 65000, 250, dtype=np.uint16), None, 16),
        ("16-bit signed", np.arange(-30000, 20000, 500, dtype=np.int16), None, 16),
    ],
)
def test_bit_depths_and_signs_are_stretched_by_their_actual_range(
    tmp_path, name, values, written, bits_stored
):
    """Without window or VOI LUT, the actual min..max of the values (masked to Bits Stored, sign-extended when
    Pixel Representation is 1) is stretched to 0..255: bits above Bits Stored are ignored, negative values are
    the darkest, 16-bit values above 32767 are not read as negative."""
    values = np.random.default_rng(3).permutation(values).reshape(1, -1)
    stored = values
    if written == "junk":
        stored = values | np.uint16(0xA000)  # overlay bits above Bits Stored must not count
    elif written == "twelve":
        stored = _twelve_bit_two_complement(values)
    image = read_radiograph(_write(tmp_path / "bits.dcm", _dataset(stored, bits_stored=bits_stored)))
    _assert_close(image, _stretch(values))
    assert image[values == values.min()] == 0 and image[values == values.max()] == 255, name


# -------------------------------------------------------------------------------- Modality LUT and VOI
@pytest.mark.parametrize("slope", [0.5, -1.0])
def test_rescale_slope_and_intercept_come_before_the_window(tmp_path, slope):
    """The Modality LUT (Rescale Slope/Intercept) is applied first, and the window is read in rescaled units.
    A negative slope turns the image around: skipping the rescale would show it the other way round."""
    stored = np.random.default_rng(4).integers(0, 4096, (24, 24)).astype(np.uint16)
    intercept = -1000.0 if slope > 0 else 3000.0
    rescaled = stored * slope + intercept
    center, width = float(np.median(rescaled)), 600.0
    ds = _dataset(stored, bits_stored=12, RescaleSlope=slope, RescaleIntercept=intercept)
    ds.WindowCenter, ds.WindowWidth = center, width
    image = read_radiograph(_write(tmp_path / "rescaled.dcm", ds))
    expected = _window(rescaled, center, width)
    _assert_close(image, expected)
    assert np.abs(expected - _window(stored, center, width)).mean() > 50  # the rule matters for this data


def test_rescale_without_window_keeps_its_sign(tmp_path):
    """Without a window the stretch follows the rescaled values: a negative slope gives the inverse image."""
    stored = np.random.default_rng(5).integers(0, 1024, (10, 10)).astype(np.uint16)
    ds = _dataset(stored, bits_stored=10, RescaleSlope=-2, RescaleIntercept=0)
    image = read_radiograph(_write(tmp_path / "negative.dcm", ds))
    _assert_close(image, 255 - _stretch(stored))


def test_modality_lut_sequence_replaces_the_rescale(tmp_path):
    """A Modality LUT Sequence maps stored values through its table (first mapped value, clamping included)."""
    stored = np.random.default_rng(6).integers(0, 300, (16, 16)).astype(np.uint16)
    first, entries = 50, ((np.arange(200) / 199.0) ** 2 * 4000).astype(np.uint16)  # a non-linear table
    item = Dataset()
    item.add_new(0x00283002, "US", [len(entries), first, 16])  # LUT Descriptor
    item.add_new(0x00283006, "OW", entries.astype("<u2").tobytes())  # LUT Data
    item.ModalityLUTType = "US"
    ds = _dataset(stored, bits_stored=9, ModalityLUTSequence=[item])
    image = read_radiograph(_write(tmp_path / "mlut.dcm", ds))
    _assert_close(image, _stretch(entries[np.clip(stored.astype(np.int64) - first, 0, len(entries) - 1)]))


def test_the_first_of_several_windows_is_used(tmp_path):
    """With multi-valued Window Center/Width the first window is shown (the others are alternative views)."""
    stored = np.random.default_rng(7).integers(0, 4096, (30, 30)).astype(np.uint16)
    ds = _dataset(stored, bits_stored=12, WindowCenter=[1000, 3000], WindowWidth=[800, 2000])
    image = read_radiograph(_write(tmp_path / "windows.dcm", ds))
    first, second = _window(stored, 1000, 800), _window(stored, 3000, 2000)
    assert np.abs(first - second).mean() > 50
    _assert_close(image, first)


def _voi_lut_item(first: int, entries: np.ndarray) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(entries), first, 16])  # LUT Descriptor: 16 bits per entry
    item.add_new(0x00283006, "OW", entries.astype("<u2").tobytes())  # LUT Data
    return item


def test_voi_lut_sequence_wins_over_the_window_and_is_stretched_by_its_entries(tmp_path):
    """The first VOI LUT of the VOI LUT Sequence is applied (before any window, and not the second LUT); its
    output is stretched by the LUT's own entries (here 12-bit values under a 16-bit descriptor), not 0..65535."""
    stored = np.random.default_rng(8).integers(0, 4096, (32, 32)).astype(np.uint16)
    first = 100
    domain = np.arange(4096 - first)
    square_root = np.rint(np.sqrt(domain / domain.max()) * 4095).astype(np.uint16)
    inverse = (4095 - domain * 4095 // domain.max()).astype(np.uint16)
    ds = _dataset(stored, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.VOILUTSequence = [_voi_lut_item(first, square_root), _voi_lut_item(first, inverse)]
    image = read_radiograph(_write(tmp_path / "voilut.dcm", ds))
    looked_up = square_root[np.clip(stored.astype(np.int64) - first, 0, len(domain) - 1)]
    expected = np.rint(looked_up * 255.0 / 4095)
    _assert_close(image, expected)
    assert np.abs(expected - _window(stored, 2048, 4096)).mean() > 20  # the window would look different


# --------------------------------------------------------------------------------- recognition by content
def test_preamble_less_and_misnamed_files_are_recognised_by_content(tmp_path):
    """DICOM is recognised by its bytes, never by its name: with the preamble, without it (with file meta, or
    a raw implicit-VR dataset), named .dcm, without suffix, or even named .png, all read the same."""
    display, _ = _phantom_display(1)
    stored = np.rint(display * 4095).astype(np.uint16)
    expected = _stretch(stored)
    files = {
        "with_preamble.dcm": dict(preamble=True),
        "IM000001": dict(preamble=True),
        "no_preamble.dcm": dict(preamble=False),
        "no_preamble_no_meta": dict(preamble=False, meta=False),
        "actually_dicom.png": dict(preamble=False, meta=False),
    }
    for name, how in files.items():
        path = _write(tmp_path / name, _dataset(stored, bits_stored=12), **how)
        data = path.read_bytes()
        assert (data[128:132] == b"DICM") == how["preamble"]
        if not how["preamble"]:  # file meta (group 0002) first, or the raw dataset (group 0008)
            assert data[:2] == (b"\x02\x00" if how.get("meta", True) else b"\x08\x00")
        _assert_close(read_radiograph(path), expected)


def _tiff_preamble(rows: int, cols: int, pixel_offset: int) -> bytes:
    """A 128-byte preamble holding a 16-bit grayscale TIFF header whose strip is the DICOM pixel data (the
    "dual personality" files some CR systems write, which PIL reads as a TIFF)."""
    short, long_ = 3, 4
    entries = [
        (256, long_, cols),  # ImageWidth
        (257, long_, rows),  # ImageLength
        (258, short, 16),  # BitsPerSample
        (259, short, 1),  # Compression: none
        (262, short, 1),  # PhotometricInterpretation: BlackIsZero
        (273, long_, pixel_offset),  # StripOffsets
        (277, short, 1),  # SamplesPerPixel
        (278, long_, rows),  # RowsPerStrip
        (279, long_, rows * cols * 2),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        field = struct.pack("<H2x", value) if kind == short else struct.pack("<I", value)  # left-justified
        ifd += struct.pack("<HHI", tag, kind, 1) + field
    header = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    assert len(header) <= 128
    return header.ljust(128, b"\0")


def test_dicom_with_a_tiff_in_its_preamble_is_read_as_dicom(tmp_path):
    """DICOM is recognised before any other reader: a MONOCHROME1 file whose preamble is a TIFF header (PIL
    reads it as a 16-bit TIFF of the stored values, grey levels inverted) is rendered as DICOM, bone bright."""
    display, bone = _phantom_display(4)
    stored = np.rint((1 - display) * 1023).astype(np.uint16)
    path = _write(tmp_path / "dual.dcm", _dataset(stored, "MONOCHROME1", 10))
    data = path.read_bytes()
    pixel_offset = data.index(b"\xe0\x7f\x10\x00OW\x00\x00") + 12
    path.write_bytes(_tiff_preamble(*stored.shape, pixel_offset) + data[128:])
    with Image.open(path) as img:  # what PIL alone makes of it: the stored values, bone dark
        assert img.format == "TIFF"
        np.testing.assert_array_equal(np.asarray(img).astype(np.uint16), stored)
    image = read_radiograph(path)
    _assert_close(image, 255 - _stretch(stored))
    assert image[bone].mean() > image[~bone].mean() + 100


def _with_dicm_at_128(make: Callable[[int], bytes]) -> bytes:
    """The bytes ``make(padding)`` returns, with the padding grown until ``DICM`` sits at offset 128."""
    data = make(0)
    data = make(128 - data.index(b"DICM"))
    assert data[128:132] == b"DICM"
    return data


def test_png_and_jpeg_holding_dicm_at_byte_128_are_not_dicom(tmp_path):
    """PNG and JPEG files are recognised by their magic number first: ``DICM`` at byte 128 (here in a PNG text
    chunk and a JPEG comment) does not make them DICOM."""
    from io import BytesIO

    from PIL.PngImagePlugin import PngInfo

    pixels = np.random.default_rng(9).integers(0, 256, (40, 50), dtype=np.uint8)

    def png(padding: int) -> bytes:
        info = PngInfo()
        info.add_text("Comment", "x" * (60 + padding) + "DICM")
        buffer = BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()

    def jpeg(padding: int) -> bytes:
        buffer = BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", comment=b"x" * (40 + padding) + b"DICM")
        return buffer.getvalue()

    (tmp_path / "a.png").write_bytes(_with_dicm_at_128(png))
    (tmp_path / "a.jpg").write_bytes(_with_dicm_at_128(jpeg))
    np.testing.assert_array_equal(read_radiograph(tmp_path / "a.png"), pixels)
    with Image.open(tmp_path / "a.jpg") as img:
        np.testing.assert_array_equal(read_radiograph(tmp_path / "a.jpg"), np.asarray(img.convert("L")))


def test_text_named_dcm_is_not_an_image(tmp_path):
    """A file named .dcm that is not DICOM (nor any image) is refused as such, in one line."""
    path = tmp_path / "notes.dcm"
    path.write_text("this is not an image\n")
    with pytest.raises(DataError, match="not an image file"):
        read_radiograph(path)


# ---------------------------------------------------------------------------------------------- refusals
def _encapsulated(path: Path, syntax: str, junk: bytes) -> Path:
    ds = _dataset(np.zeros((8, 8), np.uint16), bits_stored=12)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([junk])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return _write(path, ds)


def _refusals(folder: Path) -> dict[str, tuple[Path, str]]:
    """``{case: (file, words the one-line problem must hold)}`` for DICOM files that must be refused."""
    rng = np.random.default_rng(10)
    frames = rng.integers(0, 4096, (2, 16, 16)).astype(np.uint16)
    multi = _dataset(frames, bits_stored=12, NumberOfFrames=2)
    rgb = _dataset(rng.integers(0, 256, (16, 16), dtype=np.uint8))
    rgb.SamplesPerPixel, rgb.PhotometricInterpretation, rgb.PlanarConfiguration = 3, "RGB", 0
    rgb.PixelData = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8).tobytes()
    no_pixels = _dataset(np.zeros((16, 16), np.uint16))
    del no_pixels.PixelData
    unknown = _dataset(np.zeros((16, 16), np.uint16), bits_stored=12)
    unknown.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.2.1143.999"  # no transfer syntax pydicom knows
    full = _write(
        folder / "full.dcm", _dataset(rng.integers(0, 4096, (64, 64)).astype(np.uint16), bits_stored=12)
    )
    data = full.read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) - 3000])
    (folder / "cut_in_header.dcm").write_bytes(data[:200])
    return {
        "multi-frame": (_write(folder / "multi.dcm", multi), "multi-frame DICOM (2 frames)"),
        "rgb": (_write(folder / "rgb.dcm", rgb), "colour DICOM (Photometric Interpretation RGB"),
        "no pixel data": (_write(folder / "sr.dcm", no_pixels), "no pixel data"),
        "truncated": (folder / "truncated.dcm", "truncated or corrupt DICOM pixel data"),
        "cut in header": (folder / "cut_in_header.dcm", "no pixel data"),
        "unknown transfer syntax": (_write(folder / "unknown.dcm", unknown), "is not one pydicom knows"),
        "JPEG-LS without decoder": (
            _encapsulated(folder / "jls.dcm", JPEGLSLossless, b"\xff\xd8 junk " * 20),
            "compressed DICOM (transfer syntax JPEG-LS Lossless Image Compression) needs a decoder that is not "
            "installed",
        ),
        "JPEG 2000 junk": (
            _encapsulated(folder / "j2k.dcm", JPEG2000Lossless, b"not a codestream " * 20),
            "cannot decode the compressed DICOM pixel data (transfer syntax JPEG 2000",
        ),
    }


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")  # pydicom on the unknown syntax
def test_what_cannot_be_one_grayscale_image_is_refused_in_one_line(tmp_path):
    """Multi-frame, colour, no pixel data, truncated files, unknown transfer syntaxes and compressed data
    without a (working) decoder are refused with one DataError line naming the file and the reason."""
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here; this project does not install one")
    for case, (path, problem) in _refusals(tmp_path).items():
        with pytest.raises(DataError) as info:
            read_radiograph(path)
        assert info.value.path == str(path), case
        assert problem in info.value.problem and "\n" not in str(info.value), (case, info.value.problem)


def test_the_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    """Rows x Columns from the header are checked against the pixel limit before any pixel is decoded (the
    pixel data here is far too short, so decoding first would report a truncated file instead)."""
    ds = _dataset(np.zeros((4, 4), np.uint16), bits_stored=12)
    ds.Rows, ds.Columns = 3000, 2000
    path = _write(tmp_path / "large.dcm", ds)
    with pytest.raises(DataError) as info:
        read_radiograph(path, max_pixels=5_000_000)
    assert "2000x3000 = 6.0 megapixels, over the limit of 5 megapixels" in info.value.problem


# --------------------------------------------------------------------------- pydicom's bundled test files
def test_bundled_ct_is_rescaled_and_stretched():
    """CT_small.dcm (signed 16-bit, Rescale Intercept -1024, no window): the stretched Hounsfield values."""
    ds = pydicom.dcmread(_bundled("CT_small.dcm"))
    assert ds.PixelRepresentation == 1 and "WindowCenter" not in ds
    hounsfield = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    _assert_close(read_radiograph(_bundled("CT_small.dcm")), _stretch(hounsfield))


@pytest.mark.parametrize(
    "encoding",
    ["MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"],
)
def test_bundled_mr_is_windowed_the_same_in_every_encoding(encoding):
    """MR_small.dcm is shown through its window (600/1600); the same image big-endian, implicit VR, RLE or
    JPEG 2000 lossless (decoders pydicom or Pillow bring) reads identically."""
    reference = read_radiograph(_bundled("MR_small.dcm"))
    ds = pydicom.dcmread(_bundled("MR_small.dcm"))
    _assert_close(reference, _window(ds.pixel_array, float(ds.WindowCenter), float(ds.WindowWidth)))
    np.testing.assert_array_equal(read_radiograph(_bundled(encoding)), reference)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("MR_truncated.dcm", "truncated or corrupt DICOM pixel data"),
        ("SC_rgb_small_odd.dcm", "colour DICOM"),
        ("rtdose.dcm", "multi-frame DICOM (15 frames)"),
        ("rtplan.dcm", "no pixel data"),
        ("MR_small_jpeg_ls_lossless.dcm", "needs a decoder that is not installed"),
    ],
)
def test_bundled_files_that_are_not_one_grayscale_image_are_refused(name, problem):
    """pydicom's own truncated, colour, multi-frame, non-image and JPEG-LS files are refused in one line."""
    from pydicom.pixels import get_decoder

    if name.endswith("jpeg_ls_lossless.dcm") and get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(DataError) as info:
        read_radiograph(_bundled(name))
    assert problem in info.value.problem and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------- model input and CLI
def test_load_for_model_takes_a_dicom(tmp_path):
    """load_for_model reads a DICOM through read_radiograph: model input (1, S, S, 3) and the gray image."""
    display, _ = _phantom_display(2)
    stored = np.rint((1 - display) * 1023).astype(np.uint16)
    path = _write(tmp_path / "CR0001", _dataset(stored, "MONOCHROME1", 10), preamble=False)
    model_input, gray = load_for_model(path, 64)
    assert model_input.shape == (1, 64, 64, 3) and model_input.dtype == np.float32
    np.testing.assert_array_equal(gray, resize_square(read_radiograph(path), 64))
    np.testing.assert_array_equal(model_input[0, ..., 1], gray.astype(np.float32))
    assert np.corrcoef(gray.ravel(), resize_square((display * 255).astype(np.uint8), 64).ravel())[0, 1] > 0.9


def test_explain_takes_dicom_files_with_or_without_suffix(tmp_path, tiny_model, capsys):
    """``densenet-interp explain`` explains DICOM files (``.dcm`` or no suffix), writes their figures and
    arrays, and refuses a multi-frame DICOM in one line while explaining the others (exit status 1)."""
    model = tmp_path / "model.keras"
    tiny_model(64).save(model)
    display, _ = _phantom_display(3)
    stored = np.rint((1 - display) * 1023).astype(np.uint16)
    good = _write(
        tmp_path / "wrist.dcm", _dataset(stored, "MONOCHROME1", 10, WindowCenter=500, WindowWidth=1000)
    )
    bare = _write(tmp_path / "IM000002", _dataset(stored, "MONOCHROME1", 10), preamble=False, meta=False)
    multi = _write(
        tmp_path / "cine.dcm", _dataset(np.stack([stored, stored]), bits_stored=10, NumberOfFrames=2)
    )
    out = tmp_path / "out"
    args = [str(good), str(multi), str(bare), "--model", str(model), "--out", str(out), "--save-arrays"]
    status = main(["-q", "explain", *args])
    captured = capsys.readouterr()
    assert status == 1 and "explained 2 of 3 image(s)" in captured.out
    assert captured.err == f"{multi}: multi-frame DICOM (2 frames) is not supported; expected one image\n"
    assert sorted(p.name for p in out.iterdir()) == [
        "IM000002.npz", "IM000002.png", "predictions.csv", "wrist.npz", "wrist.png"
    ]  # fmt: skip
    for path in (good, bare):
        with np.load(out / f"{path.name.removesuffix('.dcm')}.npz", allow_pickle=False) as arrays:
            np.testing.assert_array_equal(arrays["input"], load_for_model(path, 64)[0][0])
            assert str(arrays["source"]) == str(path)
