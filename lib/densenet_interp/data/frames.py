"""Find and crop the rectangular frame some radiographs carry (the paper's Figures 10 and 11).

Many MURA images sit inside an extra rectangle: a bright or dark frame line from digitisation, or a
collimation boundary beyond which the film has one constant intensity. The paper shows that such a frame takes
over the model's features (Figure 10) and that "simple image cropping" fixes it (Figure 11). This module does
that cropping without a model:

1. Edges are measured between neighbouring rows (for horizontal lines) and columns (for vertical lines) on the
   image smoothed *along* the line direction only, so steps stay sharp while noise averages out. An edge is a
   step larger than ``max(8, 5 x noise)`` grey levels, the noise estimated robustly (MAD of the steps).
2. A candidate side is a row (column) whose edges form a long straight run: at least 40 % of the width
   (height), tolerating 1 px of wobble and gaps of 3 px; rows in the outer 40 % of the image only. The edge
   sign may change along the run: a dark frame line is darker than the bone it crosses but brighter than the
   background beside it.
3. A side is kept only if its edges cover at least 75 % of the span between its neighbouring sides (the
   perpendicular sides found, or the image border where there is none): a straight bone edge or wire that
   starts at the border and stops in the image fails this test.
4. A side must also be *framed*: it meets a perpendicular side (a corner), or the band outside it is uniform
   (collimation) at a level unlike the usual background inside. The second rule rejects the long straight
   edge between a limb's soft tissue and a uniform background, which is not a frame. (Where the limb fills
   the whole rest of the image, the air beyond it passes as collimation and is cropped: a uniform band holds
   no anatomy, so nothing is lost.)
5. Of all consistent combinations (one to four sides), the smallest box is returned, so the crop lies inside
   every line of a frame drawn with some thickness, and inside nested frames.

Only axis-aligned frames are found (MURA's are); the result is conservative by a pixel or two. A dark line on a
dark background shows only where it crosses the limb and is usually missed (on the phantom: 10 of 16 framed
images cropped cleanly, 4 partly, 2 missed; no crop on 128 frameless images).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

Box = tuple[int, int, int, int]
"""``(top, bottom, left, right)`` in pixels, bottom and right exclusive: ``image[top:bottom, left:right]``."""

MIN_RUN = 0.4  # a candidate side's longest straight run, as a fraction of the image side
MIN_COVERAGE = 0.75  # an accepted side's edge coverage of the span between its neighbouring sides
OUTER_BAND = 0.4  # sides are searched in the outer 40 % of the image on each side
MIN_BOX = 0.3  # a box smaller than 30 % of the image in either direction is not a frame's inside
MAX_DETECT_SIDE = 1024  # larger images are block-averaged down first (the answer is scaled back)
MAX_CANDIDATES = 6  # innermost candidate lines kept per side (bounds the search on striped images)
BAND_SPREAD = 30  # grey levels: the 10-90 % spread under which the band outside a side counts as uniform
BAND_CONTRAST = 25  # grey levels: how far a uniform outside band must be from the background inside
_WOBBLE = 1  # px of tolerated line wobble across the line
_GAP = 3  # px of tolerated gaps along the line


@dataclass(frozen=True)
class _Side:
    position: int  # top/left: first row/column inside; bottom/right: exclusive end
    edges: np.ndarray  # bool along the side: where the line's edge was seen


MIN_SIDE = 16  # smaller images cannot show a frame around content; detect_frame returns None for them


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2:
        got = (
            f"{image.dtype} array of shape {image.shape}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise ValueError(f"expected a uint8 grayscale image (H, W), got {got}")


def _edge_rows(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean edge maps between rows ``r`` and ``r + 1`` (shape ``(H - 1, W)``), rising and falling."""
    smooth = ndimage.uniform_filter1d(image.astype(np.float32), size=5, axis=1)
    steps = np.diff(smooth, axis=0)
    deviation = np.median(np.abs(steps - np.median(steps)))
    threshold = max(8.0, 5.0 * 1.4826 * float(deviation))
    tolerant = np.ones((2 * _WOBBLE + 1, 1), dtype=bool)
    closing = np.ones((1, _GAP + 1), dtype=bool)
    maps = []
    for strong in (steps > threshold, steps < -threshold):
        strong = ndimage.binary_dilation(strong, structure=tolerant)
        maps.append(ndimage.binary_closing(strong, structure=closing, border_value=0) | strong)
    return maps[0], maps[1]


def _longest_runs(edges: np.ndarray) -> np.ndarray:
    """Length of the longest run of True in each row of a 2-D boolean array."""
    padded = np.pad(edges.astype(np.int8), ((0, 0), (1, 1)))
    change = np.diff(padded, axis=1)
    longest = np.zeros(len(edges), dtype=np.int64)
    rows_start, cols_start = np.nonzero(change == 1)
    _, cols_end = np.nonzero(change == -1)  # same row order as the starts, one end per start
    np.maximum.at(longest, rows_start, cols_end - cols_start)
    return longest


def _sides(image: np.ndarray) -> tuple[list[_Side], list[_Side]]:
    """Candidate top and bottom sides (horizontal lines), innermost per cluster of neighbouring rows."""
    height, width = image.shape
    rising, falling = _edge_rows(image)
    edges = rising | falling
    is_candidate = _longest_runs(edges) >= MIN_RUN * width
    boundaries = np.flatnonzero(is_candidate)  # boundary r lies between rows r and r + 1
    top = [r for r in boundaries if r < OUTER_BAND * height]
    bottom = [r for r in boundaries if r >= (1 - OUTER_BAND) * height]
    top_sides = [_Side(int(r) + 1, edges[r]) for r in _innermost(top, inner_is_larger=True)]
    bottom_sides = [_Side(int(r) + 1, edges[r]) for r in _innermost(bottom, inner_is_larger=False)]
    return top_sides, bottom_sides


def _innermost(boundaries: list[int], inner_is_larger: bool) -> list[int]:
    """One boundary per cluster of adjacent boundaries: the one nearest the image centre."""
    clusters: list[list[int]] = []
    for r in sorted(boundaries):
        if clusters and r - clusters[-1][-1] <= 2 * _WOBBLE + 1:
            clusters[-1].append(r)
        else:
            clusters.append([r])
    inner = [max(c) if inner_is_larger else min(c) for c in clusters]
    return inner[-MAX_CANDIDATES:] if inner_is_larger else inner[:MAX_CANDIDATES]


def _covers(side: _Side | None, low: int, high: int) -> bool:
    return side is None or bool(side.edges[low:high].mean() >= MIN_COVERAGE)


def _background_level(inside: np.ndarray) -> float:
    """The most common grey level (16-level bins) of the framed region: a radiograph's background."""
    counts = np.bincount(inside.ravel() // 16, minlength=16)
    return float(np.argmax(counts) * 16 + 8)


def _uniform_band(image: np.ndarray, box: Box, side: str) -> bool:
    """Is the band between ``side`` of ``box`` and the image border uniform and unlike the background inside?

    That is collimation (unexposed film: one flat level), not the edge of a limb on a uniform background.
    """
    top, bottom, left, right = box
    height, width = image.shape
    skip = 2 * _WOBBLE + 2  # leave out the line and its rim
    band = {
        "top": image[: max(top - skip, 0), left:right],
        "bottom": image[min(bottom + skip, height) :, left:right],
        "left": image[top:bottom, : max(left - skip, 0)],
        "right": image[top:bottom, min(right + skip, width) :],
    }[side]
    if band.size < 3 * max(bottom - top, right - left):  # thinner than 3 px: cannot tell
        return False
    low, middle, high = np.percentile(band, (10, 50, 90))
    background = _background_level(image[top:bottom, left:right])
    return bool(high - low <= BAND_SPREAD and abs(middle - background) >= BAND_CONTRAST)


def _framed(image: np.ndarray, box: Box, present: dict[str, _Side | None]) -> bool:
    """Every present side meets a perpendicular present side, or has a uniform collimation band outside."""
    perpendicular = {"top": ("left", "right"), "bottom": ("left", "right"), "left": ("top", "bottom")}
    perpendicular["right"] = perpendicular["left"]
    for name, side in present.items():
        if side is None or any(present[other] is not None for other in perpendicular[name]):
            continue
        if not _uniform_band(image, box, name):
            return False
    return True


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    height, width = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


def detect_frame(image_u8: np.ndarray) -> Box | None:
    """The inside of a rectangular frame or collimation boundary, or None if the image has none.

    Returns ``(top, bottom, left, right)`` (bottom/right exclusive); sides without a line are the image border.
    Images under ``MIN_SIDE`` px have none. See the module docstring for the method and its limits.
    """
    _check_image(image_u8)
    if min(image_u8.shape) < MIN_SIDE:
        return None
    factor = -(-max(image_u8.shape) // MAX_DETECT_SIDE)
    image = _block_mean(image_u8, factor) if factor > 1 else image_u8
    height, width = image.shape
    tops, bottoms = _sides(image)
    lefts, rights = _sides(image.T)
    best: tuple[int, Box] | None = None
    for top, bottom, left, right in itertools.product(
        [None, *tops], [None, *bottoms], [None, *lefts], [None, *rights]
    ):
        if top is bottom is left is right is None:
            continue
        box = (
            top.position if top else 0,
            bottom.position if bottom else height,
            left.position if left else 0,
            right.position if right else width,
        )
        rows, cols = box[1] - box[0], box[3] - box[2]
        if rows < MIN_BOX * height or cols < MIN_BOX * width:
            continue
        horizontal_ok = _covers(top, box[2], box[3]) and _covers(bottom, box[2], box[3])
        if not (horizontal_ok and _covers(left, box[0], box[1]) and _covers(right, box[0], box[1])):
            continue
        if not _framed(image, box, {"top": top, "bottom": bottom, "left": left, "right": right}):
            continue
        if best is None or rows * cols < best[0]:
            best = (rows * cols, box)
    if best is None:
        return None
    top, bottom, left, right = best[1]
    if factor > 1:  # back to full resolution, rounding inwards
        height_full, width_full = image_u8.shape
        bottom = height_full if bottom == height else bottom * factor
        right = width_full if right == width else right * factor
        top, left = top * factor, left * factor
    return int(top), int(bottom), int(left), int(right)


def crop_frame(image_u8: np.ndarray, margin: int = 2) -> tuple[np.ndarray, Box | None]:
    """Crop inside a detected frame, ``margin`` more pixels on each framed side; ``(image, None)`` if none.

    The margin removes the anti-aliased rim of a frame line. Sides that are the image border are not shrunk.
    Returns ``(cropped copy, box)`` with ``box`` the crop actually applied (see :data:`Box`).
    """
    if not isinstance(margin, (int, np.integer)) or margin < 0:
        raise ValueError(f"margin must be a non-negative integer, got {margin!r}")
    box = detect_frame(image_u8)
    if box is None:
        return image_u8, None
    height, width = image_u8.shape
    top, bottom, left, right = box
    top = top + margin if top > 0 else 0
    left = left + margin if left > 0 else 0
    bottom = bottom - margin if bottom < height else height
    right = right - margin if right < width else width
    box = (top, bottom, left, right)
    return image_u8[top:bottom, left:right].copy(), box
