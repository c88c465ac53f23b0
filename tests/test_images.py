"""Tests for densenet_interp.data.images: every pixel mode becomes uint8 grayscale; bad files fail with the path."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from densenet_interp.data.images import (
    MAX_PIXELS,
    load_for_model,
    read_radiograph,
    resize_square,
    to_model_input,
)
from densenet_interp.errors import DataError


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, rounded: what PIL's RGB -> L conversion computes (to within one grey level)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return np.rint(r * 0.299 + g * 0.587 + b * 0.114)


@pytest.fixture
def rgb_pixels() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


def test_grayscale_png_round_trips_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(9, 13), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "g.png")
    out = read_radiograph(tmp_path / "g.png")
    assert out.dtype == np.uint8 and out.shape == (9, 13)
    np.testing.assert_array_equal(out, pixels)


def test_rgb_png_becomes_luminance(tmp_path, rgb_pixels):
    Image.fromarray(rgb_pixels).save(tmp_path / "c.png")
    out = read_radiograph(tmp_path / "c.png")
    assert out.shape == (12, 17)
    assert np.abs(out.astype(int) - _luma(rgb_pixels)).max() <= 1


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_radiograph(tmp_path / "a.png")
    np.testing.assert_array_equal(out, [[0, 128, 255], [255, 255, 255]])


def test_la_is_composited_on_black(tmp_path):
    la = Image.merge("LA", [Image.new("L", (2, 1), 200), Image.frombytes("L", (2, 1), bytes([255, 0]))])
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_radiograph(tmp_path / "la.png"), [[200, 0]])


def test_palette_image_uses_palette_colours(tmp_path, rgb_pixels):
    pal = Image.fromarray(rgb_pixels).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    expected = _luma(np.asarray(pal.convert("RGB")))
    out = read_radiograph(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_palette_with_transparency_is_composited(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    pal.putdata([0, 1])
    pal.info["transparency"] = 0  # white entry transparent
    pal.save(tmp_path / "pt.png", transparency=0)
    np.testing.assert_array_equal(read_radiograph(tmp_path / "pt.png"), [[0, 0]])


def test_bilevel_image(tmp_path):
    Image.frombytes("L", (2, 1), bytes([0, 255])).convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_radiograph(tmp_path / "b.png"), [[0, 255]])


def test_16_bit_png_range_is_stretched(tmp_path):
    values = np.array([[1000, 2000], [3000, 1500]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I;16")
    out = read_radiograph(tmp_path / "d.png")
    np.testing.assert_array_equal(out, [[0, 128], [255, 64]])  # (v - 1000) * 255 / 2000, rounded


@pytest.mark.parametrize(("dtype", "mode"), [(np.int32, "I"), (np.float32, "F")])
def test_32_bit_tiff_range_is_stretched(tmp_path, dtype, mode):
    values = np.array([[-50, 0], [150, 100]], dtype=dtype)
    Image.fromarray(values).save(tmp_path / "d.tif")
    assert Image.open(tmp_path / "d.tif").mode == mode
    np.testing.assert_array_equal(read_radiograph(tmp_path / "d.tif"), [[0, 64], [255, 191]])


def test_constant_16_bit_image_is_zero(tmp_path):
    Image.fromarray(np.full((3, 3), 777, dtype=np.uint16)).save(tmp_path / "c16.png")
    np.testing.assert_array_equal(read_radiograph(tmp_path / "c16.png"), np.zeros((3, 3), np.uint8))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_jpeg(tmp_path, mode):
    Image.new(mode, (40, 30), 120 if mode == "L" else (120, 120, 120)).save(tmp_path / "j.jpg", quality=95)
    out = read_radiograph(tmp_path / "j.jpg")
    assert out.shape == (30, 40) and np.abs(out.astype(int) - 120).max() <= 2


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("L", (40, 20), 90).save(tmp_path / "o.jpg", exif=exif.tobytes())
    assert read_radiograph(tmp_path / "o.jpg").shape == (40, 20)


def test_one_by_one_image(tmp_path):
    Image.new("L", (1, 1), 42).save(tmp_path / "one.png")
    out = read_radiograph(tmp_path / "one.png")
    np.testing.assert_array_equal(out, [[42]])
    np.testing.assert_array_equal(resize_square(out, 3), np.full((3, 3), 42, np.uint8))


def test_truncated_png_fails_with_path(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as info:
        read_radiograph(tmp_path / "cut.png")
    assert str(tmp_path / "cut.png") in str(info.value)
    assert "cannot decode" in info.value.problem


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.png", b"this is not an image\n", "not an image"),
        ("empty.png", b"", "empty file"),
        ("absent.png", None, "file not found"),
    ],
)
def test_bad_files_fail_with_path(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_radiograph(path)
    assert info.value.path == str(path) and problem in info.value.problem
    assert "\n" not in str(info.value)


def test_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_radiograph(tmp_path)


def test_constant_png_helper_writes_a_decodable_png(tmp_path, constant_png):
    constant_png(tmp_path / "small.png", 301, 203)
    np.testing.assert_array_equal(read_radiograph(tmp_path / "small.png"), np.zeros((203, 301), np.uint8))
    stream = constant_png(tmp_path / "small.png", 301, 203)
    assert zlib.decompress(stream) == bytes(203 * 302)  # zlib verifies the Adler-32 checksum


def test_image_over_our_limit_is_refused_before_decoding(tmp_path, constant_png):
    side = int((MAX_PIXELS * 1.3) ** 0.5)  # above our limit, below PIL's decompression-bomb warning
    constant_png(tmp_path / "big.png", side, side)
    with pytest.raises(DataError) as info:
        read_radiograph(tmp_path / "big.png")
    assert f"{side}x{side}" in info.value.problem and "megapixels" in info.value.problem


def test_huge_20000_square_png_is_refused_in_one_line(tmp_path, constant_png):
    constant_png(tmp_path / "huge.png", 20000, 20000)
    assert (tmp_path / "huge.png").stat().st_size < 2_000_000
    with pytest.raises(DataError) as info:
        read_radiograph(tmp_path / "huge.png")
    assert info.value.path == str(tmp_path / "huge.png")
    assert "400.0 megapixels" in info.value.problem and "\n" not in info.value.problem


def test_limit_is_a_parameter(tmp_path):
    Image.new("L", (20, 20)).save(tmp_path / "s.png")
    assert read_radiograph(tmp_path / "s.png").shape == (20, 20)
    with pytest.raises(DataError, match="20x20"):
        read_radiograph(tmp_path / "s.png", max_pixels=399)


def test_resize_square_is_deterministic_and_antialiased():
    checker = (np.indices((64, 48)).sum(axis=0) % 2 * 255).astype(np.uint8)
    first = resize_square(checker, 16)
    assert first.shape == (16, 16) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, resize_square(checker, 16))
    # nearest-neighbour would give pure 0/255; an antialiased filter averages the checkerboard to mid grey
    assert np.abs(first.astype(int) - 127).max() <= 2


def test_resize_square_upscales_non_square():
    image = np.zeros((10, 30), np.uint8)
    image[:, 15:] = 200
    out = resize_square(image, 20)
    assert out.shape == (20, 20)
    assert out[:, 0].max() == 0 and out[:, -1].min() == 200


@pytest.mark.parametrize(
    ("image", "size"),
    [(np.zeros((4, 4), np.float32), 2), (np.zeros((4, 4, 3), np.uint8), 2), (np.zeros((4, 4), np.uint8), 0)],
)
def test_resize_square_rejects_bad_input(image, size):
    with pytest.raises(ValueError):
        resize_square(image, size)


def test_to_model_input_shapes_and_values():
    single = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = to_model_input(single)
    assert out.shape == (1, 4, 4, 3) and out.dtype == np.float32
    for channel in range(3):
        np.testing.assert_array_equal(out[0, ..., channel], single.astype(np.float32))
    batch = np.stack([single, 255 - single])
    out = to_model_input(batch)
    assert out.shape == (2, 4, 4, 3) and out.max() == 255.0 and out.min() == 0.0


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 5), np.uint8), np.zeros((1, 2, 4, 4), np.uint8)]
)
def test_to_model_input_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        to_model_input(bad)


def test_load_for_model(tmp_path, rgb_pixels):
    Image.fromarray(rgb_pixels).save(tmp_path / "c.png")
    batch, gray = load_for_model(tmp_path / "c.png", 8)
    assert batch.shape == (1, 8, 8, 3) and gray.shape == (8, 8) and gray.dtype == np.uint8
    np.testing.assert_array_equal(batch[0, ..., 1], gray.astype(np.float32))
    np.testing.assert_array_equal(gray, resize_square(read_radiograph(tmp_path / "c.png"), 8))
