"""Ground truth from the annotation file: load it, and rasterise its polygons into boolean masks.

Polygons are in pixel coordinates of the saved image, with pixel ``(row i, column j)`` covering
``[j, j + 1) x [i, i + 1)``. ``masks_for`` fills them at the image's shape or at any other ``size`` by
scaling coordinates, which is how CAMs at model resolution are compared with the ground truth.
:func:`resize_mask` scales a mask already rasterised (e.g. cut to a crop box) as images are scaled.

:data:`REGIONS` is the one list of ground-truth regions; every consumer (the case figures, the localisation
measures) imports it from here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DataError
from .dataset import ANNOTATIONS_FILE

REGIONS = ("lesion", "legend", "frame", "anatomy")
"""The ground-truth regions of every annotated image, in this order; "lesion" is the abnormality itself."""


def load_annotations(mura_root: str | Path) -> dict:
    """The phantom annotations of a dataset, keyed by image path as in the image CSVs.

    ``mura_root`` is the ``MURA-v1.1`` folder or the folder that contains it.
    """
    root = Path(mura_root)
    if root.name != "MURA-v1.1" and (root / "MURA-v1.1").is_dir():
        root = root / "MURA-v1.1"
    path = root / ANNOTATIONS_FILE
    if not path.is_file():
        raise DataError(f"no {ANNOTATIONS_FILE} here; expected a phantom MURA-v1.1 folder", path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the annotations as JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object keyed by image path, got {type(data).__name__}", path)
    return data


def _fill(polygons: list, shape: tuple[int, int], sx: float, sy: float) -> np.ndarray:
    """Union of the polygons scaled by (sx, sy), filled on a canvas of ``shape`` = (height, width)."""
    h, w = shape
    canvas = Image.new("1", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        pts = np.asarray(poly, float)
        if len(pts) < 3:
            continue
        # PIL puts pixel centres at integer coordinates; ours sit at +0.5
        draw.polygon([(x * sx - 0.5, y * sy - 0.5) for x, y in pts], fill=1, outline=1)
    return np.array(canvas, dtype=bool)  # a writable copy


def masks_for(annotation: dict, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks ``lesion``, ``legend``, ``frame`` and ``anatomy`` of one annotated image.

    ``size`` = (height, width) rasterises at another resolution by scaling coordinates (default: the image's
    own shape). Behind a collimation frame the anatomy and lesion are hidden, so their masks stop at the frame.
    """
    try:
        h, w = (int(v) for v in annotation["shape"])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"annotation has no valid 'shape' [height, width]: {annotation.get('shape')!r}"
        ) from None
    out_h, out_w = (h, w) if size is None else (int(size[0]), int(size[1]))
    if out_h < 1 or out_w < 1:
        raise ValueError(f"mask size must be positive (height, width), got {size}")
    sx, sy = out_w / w, out_h / h
    masks = {name: _fill(annotation.get(name) or [], (out_h, out_w), sx, sy) for name in REGIONS}
    box = annotation.get("frame_box")
    if box is not None and annotation.get("frame_style") == "collimation":
        inside = np.zeros((out_h, out_w), bool)
        x0, y0, x1, y1 = box
        inside[int(round(y0 * sy)) : int(round(y1 * sy)), int(round(x0 * sx)) : int(round(x1 * sx))] = True
        masks["anatomy"] &= inside
        masks["lesion"] &= inside
    return masks


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask scaled to ``(size, size)`` as images are (stretched); a pixel is in if half its area is.

    The mask is resampled bilinearly as an image of 0 and 255 and thresholded at 128, so an output pixel
    belongs to the region when at least half of it is covered by the region. Nearest neighbour would instead
    keep or drop a line thinner than the scale step depending on where the sampling grid falls (its phase),
    so a frame line or a thin fracture could vanish or thicken from one image size to the next.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"expected a non-empty 2-D mask, got shape {mask.shape}")
    if mask.shape == (size, size):
        return mask.copy()
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(scaled) >= 128
