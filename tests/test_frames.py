"""Frame detection and cropping on drawn frames, collimation boundaries and frameless radiograph-like images."""

from __future__ import annotations

import numpy as np
import pytest

from densenet_interp.data.frames import crop_frame, detect_frame


def radiograph(height: int = 320, width: int = 256, seed: int = 0, background: float = 15.0) -> np.ndarray:
    """A frameless radiograph-like image: dark background, a smooth soft-tissue blob, a brighter bone, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.45, 0.6)
    image = background + 150 * np.exp(-(((x - cx) / (width * 0.18)) ** 2 + ((y - cy) / (height * 0.35)) ** 2))
    image += 60 * np.exp(-(((x - cx * 0.9) / (width * 0.05)) ** 2 + ((y - cy * 0.9) / (height * 0.3)) ** 2))
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def draw_frame(image: np.ndarray, box: tuple[int, int, int, int], thickness: int, value: int) -> np.ndarray:
    """Draw a rectangle outline whose OUTER edge is ``box``; returns a copy."""
    framed = image.copy()
    top, bottom, left, right = box
    framed[top : top + thickness, left:right] = value
    framed[bottom - thickness : bottom, left:right] = value
    framed[top:bottom, left : left + thickness] = value
    framed[top:bottom, right - thickness : right] = value
    return framed


def assert_box_close(found, expected, tolerance: int = 2) -> None:
    assert found is not None, f"no frame found, expected {expected}"
    assert np.abs(np.subtract(found, expected)).max() <= tolerance, f"found {found}, expected {expected}"


@pytest.mark.parametrize("seed", range(12))
def test_no_frame_on_plain_radiographs(seed):
    image = radiograph(200 + 10 * seed, 300 - 5 * seed, seed=seed)
    assert detect_frame(image) is None
    cropped, box = crop_frame(image)
    assert box is None and cropped is image


def test_straight_bone_from_the_border_is_not_a_frame():
    image = radiograph().astype(np.float64)
    image[90:, 100:128] += 80  # an axis-aligned "shaft" entering from the bottom, 72 % of the height
    assert detect_frame(np.clip(image, 0, 255).astype(np.uint8)) is None


def test_limb_edge_on_a_uniform_background_is_not_collimation():
    image = radiograph(320, 256).astype(np.int64)
    image[:, 100:170] += 60  # a limb over the full height whose right edge is straight ...
    image[:, 170:] = 15 + np.random.default_rng(1).normal(0, 4, (320, 86)).round().astype(
        np.int64
    )  # ... then air
    # the band beyond the edge is uniform, but at the level of the air inside the box: not collimation
    assert detect_frame(image.clip(0, 255).astype(np.uint8)) is None


def test_straight_wire_from_the_border_is_not_a_frame_side():
    image = radiograph(320, 256)
    image[200:203, :210] = 250  # a nail across 82 % of the width, touching the left border only
    assert detect_frame(image) is None


@pytest.mark.parametrize("thickness", [1, 3, 6])
def test_bright_frame_lines(thickness):
    image = draw_frame(radiograph(), (30, 290, 25, 230), thickness, 255)
    inner = (30 + thickness, 290 - thickness, 25 + thickness, 230 - thickness)
    assert_box_close(detect_frame(image), inner)


def test_dark_frame_on_a_bright_background():
    image = (radiograph().astype(np.int64) + 100).clip(0, 255).astype(np.uint8)
    image = draw_frame(image, (12, 300, 40, 240), 2, 0)
    assert_box_close(detect_frame(image), (14, 298, 42, 238))


def test_collimation_with_a_constant_outside_on_all_sides():
    image = radiograph()
    image[:20], image[-30:], image[:, :15], image[:, -10:] = 200, 200, 200, 200
    assert_box_close(detect_frame(image), (20, 290, 15, 246))


def test_collimation_on_two_sides_only():
    image = radiograph(240, 320, seed=3)
    image[:, :40], image[:, -35:] = 180, 180
    assert_box_close(detect_frame(image), (0, 240, 40, 285))


def test_nested_frames_crop_inside_both():
    image = draw_frame(radiograph(), (10, 310, 10, 246), 2, 255)
    image = draw_frame(image, (40, 280, 35, 220), 2, 255)
    assert_box_close(detect_frame(image), (42, 278, 37, 218))


def test_crop_frame_applies_the_margin_and_returns_the_box():
    image = draw_frame(radiograph(), (30, 290, 25, 230), 3, 255)
    cropped, box = crop_frame(image, margin=4)
    top, bottom, left, right = detect_frame(image)
    assert box == (top + 4, bottom - 4, left + 4, right - 4)
    np.testing.assert_array_equal(cropped, image[box[0] : box[1], box[2] : box[3]])
    assert (
        not (cropped[[0, -1], :] == 255).all(axis=1).any()
        and not (cropped[:, [0, -1]] == 255).all(axis=0).any()
    )


def test_crop_frame_keeps_unframed_sides_at_the_border():
    image = radiograph(240, 320, seed=3)
    image[:, :40] = 180
    cropped, box = crop_frame(image, margin=2)
    assert box[0] == 0 and box[1] == 240 and box[3] == 320 and 41 <= box[2] <= 44
    assert cropped.shape == (240, 320 - box[2])


def test_large_images_are_detected_at_reduced_resolution():
    image = np.kron(draw_frame(radiograph(), (30, 290, 25, 230), 3, 255), np.ones((7, 7), dtype=np.uint8))
    assert image.shape == (2240, 1792)
    assert_box_close(detect_frame(image), (33 * 7, 287 * 7, 28 * 7, 227 * 7), tolerance=2 * 7)


def test_tiny_images_have_no_frame_and_bad_input_is_refused():
    assert detect_frame(np.zeros((1, 1), dtype=np.uint8)) is None
    assert crop_frame(np.full((5, 9), 7, dtype=np.uint8))[1] is None
    with pytest.raises(ValueError, match=r"expected a uint8 grayscale image \(H, W\), got float64 array"):
        detect_frame(np.zeros((64, 64)))
    with pytest.raises(ValueError, match=r"got uint8 array of shape \(64, 64, 3\)"):
        detect_frame(np.zeros((64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="margin must be a non-negative integer"):
        crop_frame(np.zeros((64, 64), dtype=np.uint8), margin=-1)


def _phantom():
    """The phantom generator (a plain import: its absence is a failure, never a skip)."""
    from densenet_interp import phantom

    return phantom


def test_phantom_framed_fingertip_is_cropped_inside_its_frame():
    phantom = _phantom()
    image, annotation = phantom.render_case(
        "fingertip_misaligned_frame", 320, seed=0
    )  # the Figure 10/11 image
    masks = phantom.masks_for(annotation, size=image.shape)
    assert masks["frame"].any()
    cropped, box = crop_frame(image)
    assert box is not None
    top, bottom, left, right = box
    x0, y0, x1, y1 = annotation["frame_box"]  # the inside of the frame line, in pixels
    assert_box_close(box, (y0, y1, x0, x1), tolerance=4)
    assert not masks["frame"][top:bottom, left:right].any()  # no frame pixel survives the crop
    lesion = masks["lesion"]
    assert lesion[top:bottom, left:right].sum() >= 0.9 * lesion.sum()  # the misaligned fingertip does


@pytest.mark.parametrize("seed", [0, 1])
def test_phantom_cases_without_a_frame_are_left_alone(seed):
    phantom = _phantom()
    for name in phantom.CASES:
        image, annotation = phantom.render_case(name, 320, seed=seed)
        if annotation["frame_style"] is None:
            assert detect_frame(image) is None, name
