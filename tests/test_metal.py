"""The metal-hardware detector: each rule of data/metal.py, and its measured precision and recall."""

from __future__ import annotations

import numpy as np
import pytest

from densenet_interp.data import metal
from densenet_interp.data.metal import find_metal


def _limb(height: int = 320, width: int = 256, seed: int = 0) -> np.ndarray:
    """A noisy grey limb (value ~150) across the middle of a dark background, bone (~200) down its centre."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 20.0)
    image[:, width // 4 : 3 * width // 4] = 150
    image[:, 2 * width // 5 : 3 * width // 5] = 200
    image += rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _plate(image: np.ndarray, top: int, left: int, height: int = 60, width: int = 8, value: int = 255):
    out = image.copy()
    out[top : top + height, left : left + width] = value
    return out


def test_a_saturated_plate_inside_the_limb_is_metal_and_boxed():
    image = _plate(_limb(), 130, 124)
    found = find_metal(image)
    assert found.found and found.components == 1
    assert found.box == (130, 190, 124, 132)
    assert found.area_fraction == pytest.approx(60 * 8 / (320 * 256))
    assert not find_metal(_limb()).found and find_metal(_limb()).area_fraction == 0


def test_the_box_is_in_the_input_images_pixels_at_any_size():
    small = _plate(_limb(), 130, 124)
    large = np.kron(small, np.ones((4, 4), np.uint8))  # 1280 x 1024: analysed at 320 x 256
    assert find_metal(large).box == (520, 760, 496, 528)


@pytest.mark.parametrize(
    ("why", "top", "left", "height", "width", "value"),
    [
        ("a legend in the border band (centre in the outer 12 %)", 10, 124, 20, 8, 255),
        ("too small (under MIN_AREA of the image)", 150, 124, 10, 8, 255),
        ("bright but not saturated (dense bone approaches white, metal is beyond it)", 130, 124, 60, 8, 248),
    ],
)
def test_what_is_not_metal(why, top, left, height, width, value):
    assert not find_metal(_plate(_limb(), top, left, height, width, value)).found, why


def test_a_bright_legend_on_air_is_not_metal_however_central():
    image = _limb()
    image[140:200, 30:40] = 255  # in the dark background beside the limb, not in the border band
    assert not find_metal(image).found
    limb_around = _plate(_limb(), 140, 70, 60, 10)  # the same block in the soft tissue: metal
    assert find_metal(limb_around).found


def test_a_huge_bright_field_is_background_not_metal():
    image = _limb()
    image[60:260, 70:190] = 255  # 200 x 120 px: 29 % of the image, over MAX_AREA
    assert not find_metal(image).found


def test_a_faint_edge_is_not_metal():
    """The contrast rule: a saturated patch that barely stands out from bright surroundings is not metal."""
    image = _limb()
    image[100:220, 100:160] = 235  # very bright bone
    image[130:190, 124:132] = 255  # a saturated streak inside it: 20 grey levels above, under CONTRAST
    assert metal.CONTRAST > 20 and not find_metal(image).found


def test_bad_input_is_refused():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((32, 32), np.float32), np.zeros((32, 32, 3), np.uint8)):
        with pytest.raises(ValueError, match="expected a uint8"):
            find_metal(bad)


def test_the_detector_table_counts_precision_and_recall_against_the_annotations(monkeypatch):
    import pandas as pd

    from densenet_interp.evaluate import detectors

    # six validation images: metal truth / metal said, frame truth / frame said
    truth = [(True, True), (True, False), (False, False), (False, True), (True, True), (False, False)]
    said = [(True, True), (False, False), (True, False), (False, True), (True, True), (False, True)]
    images = pd.DataFrame({"path": [f"p{i}" for i in range(6)], "abs_path": [f"a{i}" for i in range(6)]})
    images["split"] = "valid"
    annotations = {
        f"p{i}": {
            "kind": "hardware" if m else "fracture",
            "lesion_visible": True,
            "frame_box": [0, 1, 0, 1] if f else None,
        }
        for i, (m, f) in enumerate(truth)
    }
    annotations["p1"]["lesion_visible"] = False  # hardware hidden in this view: not metal the image shows
    monkeypatch.setattr(detectors, "detect", lambda path: said[int(path[1:])])
    table = detectors.detector_table(images, annotations, workers=1).set_index("detector")
    metal_row, frame_row = table.loc["metal"], table.loc["frame"]
    # metal truth: p0, p4 (p1 hidden); said: p0, p2, p4 -> precision 2/3, recall 2/2
    assert (metal_row["with_it"], metal_row["detected"], metal_row["true_positives"]) == (2, 3, 2)
    assert metal_row["precision"] == pytest.approx(2 / 3) and metal_row["recall"] == 1.0
    # frame truth: p0, p3, p4; said: p0, p3, p4, p5 -> precision 3/4, recall 3/3
    assert (frame_row["with_it"], frame_row["detected"], frame_row["true_positives"]) == (3, 4, 3)
    assert frame_row["precision"] == pytest.approx(0.75) and frame_row["recall"] == 1.0
    for row in (metal_row, frame_row):
        assert row["precision_low"] < row["precision"] < row["precision_high"] <= 1.0
    with pytest.raises(ValueError, match="no phantom annotation"):
        detectors.detector_table(images, {"p0": annotations["p0"]}, workers=1)
