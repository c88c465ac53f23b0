"""Find metal hardware (plates, screws, wires, nails, fragments) in a radiograph, without a model.

Metal is far denser than bone: on a radiograph it is the brightest thing there is, near white, with a sharp edge.
Legends (text, side markers) are near white too, but sit near the image border; dense bone approaches white
in a thin cortex or small patches. The rule, on the image scaled to a long side of :data:`WORK_SIDE` pixels:

1. **Candidates**: pixels at or above :data:`LEVEL` grey levels (of 255), grouped into 8-connected components.
2. **Not a legend**: a component whose bounding-box centre lies in the outer :data:`BORDER` of the image (on any
   side) is dropped: that is where legends and markers are placed.
3. **Not the background**: a component larger than :data:`MAX_AREA` of the image is dropped (an inverted
   image's background, an overexposed field).
4. **Metal, not bone**: a component is metal when its mean is at least :data:`CONTRAST` grey levels above the
   median of a ring around it (4 px wide, 1 px away), that ring is limb and not air (median at least
   :data:`INSIDE`: a legend on the background fails), at least :data:`SATURATED_SHARE` of it is saturated
   (:data:`SATURATED` or above: metal is beyond the exposure window, dense bone only approaches it) and its
   area is at least :data:`MIN_AREA` of the image.

The image has metal when any component passes; :attr:`MetalFinding.area_fraction` (the largest such area) ranks
images by how much metal they show (used to choose the paper's hardware figures on real MURA,
:mod:`densenet_interp.explain.cases`). The constants were chosen on the training split of the ``mini`` phantom
(ground truth: abnormality kind "hardware", visible in the view); the validation split measures them in
``results/<profile>/tables/detectors.csv`` (:mod:`densenet_interp.evaluate.detectors`). Thin wires in fingers
are the usual miss: at the working size they are a pixel or two wide and no brighter than cortex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

WORK_SIDE = 320  # the long side the rule works at, so that the constants mean the same at any resolution
LEVEL = 245  # grey levels: candidate pixels are at least this bright
BORDER = 0.12  # fraction of each side: components centred in this outer band are taken for legends
MAX_AREA = 0.05  # fraction of the image: larger bright components are background, not metal
MIN_AREA = 0.0013  # fraction of the image: the smallest metal component (about 107 px at 320 x 256)
CONTRAST = 30.0  # grey levels: a metal component's mean over the median of the ring around it
INSIDE = 80.0  # grey levels: the ring's median is at least this (limb around it, not air: a legend on air)
SATURATED, SATURATED_SHARE = 253, 0.25  # at least this share of a metal component is at this level or above
_RING_GAP, _RING_WIDTH = 1, 4  # px: the ring starts this far from the component and is this wide


@dataclass(frozen=True)
class MetalFinding:
    """What :func:`find_metal` found in one image."""

    found: bool
    area_fraction: float  # the largest metal component's area, as a fraction of the image (0 when none)
    box: tuple[int, int, int, int] | None  # its (top, bottom, left, right) in the input image's pixels
    components: int  # how many components passed


def _work_image(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image scaled so that its long side is :data:`WORK_SIDE` (never up), and the scale factor."""
    height, width = image.shape
    scale = min(1.0, WORK_SIDE / max(height, width))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX)), scale


def find_metal(image: np.ndarray) -> MetalFinding:
    """Apply the rule of the module docstring to a ``uint8 (H, W)`` radiograph."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2 or min(image.shape) < 8:
        raise ValueError(
            f"expected a uint8 (H, W) image of at least 8 x 8 pixels, got {image.dtype} {image.shape}"
        )
    work, scale = _work_image(image)
    height, width = work.shape
    labels, count = ndimage.label(work >= LEVEL, structure=np.ones((3, 3), bool))
    best, best_box, passed = 0, None, 0
    pixels = work.astype(np.float32)
    margin = _RING_GAP + _RING_WIDTH
    for number, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        rows, cols = found
        centre_y = (rows.start + rows.stop) / 2 / height
        centre_x = (cols.start + cols.stop) / 2 / width
        if min(centre_y, 1 - centre_y, centre_x, 1 - centre_x) < BORDER:
            continue
        window = (
            slice(max(rows.start - margin, 0), rows.stop + margin),
            slice(max(cols.start - margin, 0), cols.stop + margin),
        )
        component = labels[window] == number
        area = int(component.sum())
        if area > MAX_AREA * height * width or area < MIN_AREA * height * width:
            continue
        near = ndimage.binary_dilation(component, iterations=_RING_GAP)
        ring = ndimage.binary_dilation(near, iterations=_RING_WIDTH) & ~near
        if not ring.any():
            continue
        values = pixels[window]
        inside, surround = values[component], float(np.median(values[ring]))
        if inside.mean() - surround < CONTRAST or surround < INSIDE:
            continue
        if (inside >= SATURATED).mean() < SATURATED_SHARE:
            continue
        passed += 1
        if area > best:
            best = area
            best_box = tuple(int(round(v / scale)) for v in (rows.start, rows.stop, cols.start, cols.stop))
    return MetalFinding(
        found=passed > 0, area_fraction=best / (height * width), box=best_box, components=passed
    )
