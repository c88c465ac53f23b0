"""Per-image measures of a saliency map against ground-truth regions: maps in, numbers out.

Nothing here runs a model or reads a file; the batch runners of :mod:`densenet_interp.evaluate.localisation`
and :mod:`densenet_interp.evaluate.faithfulness`, and the case report, call these on maps they computed.

* :func:`evidence_mass`: the signed CAM read as a non-negative "mass", two ways (:data:`MASSES`):
  ``positive`` (the CAM clipped at 0: evidence *for* "abnormal"; none for a confidently normal image) and
  ``relative`` (the CAM minus its own spatial mean, clipped at 0: where the evidence is above the image's
  average, as the paper reads its min-max scaled maps).
* :func:`region_shares`: the share of a non-negative map's total inside each region; :func:`mass_shares`
  gives it for the phantom's :data:`~densenet_interp.phantom.masks.REGIONS` under each reading, beside each
  region's area share (its chance level: what a map that ignored the image would score), and
  :func:`enrichment` their ratio (share / chance; 1 = no preference).
* :func:`pointing_game` (Zhang et al. 2016): is the map's maximum inside the (dilated) lesion?
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.ndimage import binary_dilation

from ..phantom.masks import REGIONS

MASSES = ("relative", "positive")
"""The two readings of the signed CAM as a mass (module docstring); ``relative`` is the default."""
_MASS_EPS = (
    1e-12  # a mass whose mean per pixel is below this is "none" (float noise of a flat or negative CAM)
)


def share_column(region: str, mass: str) -> str:
    """Name of the per-image column holding ``region``'s share under the ``mass`` reading."""
    if mass not in MASSES:
        raise ValueError(f"mass must be one of {MASSES}, got {mass!r}")
    return f"{region}_share_{mass}"


def evidence_mass(cam: np.ndarray, mass: str) -> np.ndarray:
    """The non-negative mass of a signed CAM under one reading (``positive`` or ``relative``), float64."""
    cam = np.asarray(cam, dtype=np.float64)
    if mass == "positive":
        return np.clip(cam, 0.0, None)
    if mass == "relative":
        return np.clip(cam - cam.mean(), 0.0, None)
    raise ValueError(f"mass must be one of {MASSES}, got {mass!r}")


def region_shares(weights: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of the total of a non-negative map ``weights`` inside each boolean mask of ``masks``.

    nan for every mask when the map carries no mass (its mean per pixel is below float noise: a map that is
    0 everywhere). Masks must have the map's shape.
    """
    total = float(weights.sum())
    if total > _MASS_EPS * weights.size:
        return {name: float(weights[mask].sum() / total) for name, mask in masks.items()}
    return {name: math.nan for name in masks}


def mass_shares(cam: np.ndarray, masks: Mapping[str, np.ndarray], masses=MASSES) -> dict[str, float]:
    """Share of the CAM's mass inside each region of :data:`REGIONS`, beside the region's area share.

    Returns ``positive_mass`` (mean of the CAM clipped at 0), ``<region>_chance`` (the region's fraction of the
    image; 0 for a region the image lacks, whose share is then 0 too) and, for each reading in ``masses``,
    ``<region>_share_<mass>`` (nan when that mass is 0 everywhere: no positive value, or a flat CAM).
    """
    cam = np.asarray(cam)
    if cam.ndim != 2:
        raise ValueError(f"expected one CAM of shape (H, W), got shape {cam.shape}")
    region_masks = {region: _mask(masks, region, cam.shape) for region in REGIONS}
    out = {"positive_mass": float(np.clip(cam, 0.0, None).mean())}
    out.update({f"{region}_chance": float(mask.mean()) for region, mask in region_masks.items()})
    for mass in masses:
        shares = region_shares(evidence_mass(cam, mass), region_masks)
        out.update({share_column(region, mass): share for region, share in shares.items()})
    return out


def enrichment(heat: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of a non-negative map inside each region divided by the region's area share (1 = no preference).

    This is the map's mean inside the region over its mean over the image. Regions without pixels are left
    out; the others are nan when the map carries no mass (see :func:`region_shares`).
    """
    heat = np.asarray(heat, dtype=np.float64)
    masks = {name: _mask(masks, name, heat.shape) for name in masks}
    shares = region_shares(heat, masks)
    return {name: shares[name] / float(mask.mean()) for name, mask in masks.items() if mask.any()}


def pointing_game(cam: np.ndarray, lesion: np.ndarray, tolerance_px: int) -> tuple[float, float]:
    """``(hit, chance)``: is the CAM's argmax inside ``lesion`` dilated by ``tolerance_px`` pixels?

    The argmax of the signed CAM (the most abnormal-looking point) is defined even where no value is positive.

    ``hit`` is 1.0 or 0.0 and ``chance`` the dilated lesion's area share; both are nan without a lesion.
    Dilation uses a square of side ``2 * tolerance_px + 1`` (Chebyshev distance), the footprint of one
    feature-map cell around every lesion pixel.
    """
    cam = np.asarray(cam)
    lesion = np.asarray(lesion, dtype=bool)
    if cam.shape != lesion.shape or cam.ndim != 2:
        raise ValueError(f"CAM {cam.shape} and lesion mask {lesion.shape} must be 2-D and of the same shape")
    if not isinstance(tolerance_px, (int, np.integer)) or tolerance_px < 0:
        raise ValueError(f"tolerance_px must be a non-negative integer, got {tolerance_px!r}")
    if not lesion.any():
        return math.nan, math.nan
    zone = lesion
    if tolerance_px > 0:
        zone = binary_dilation(lesion, structure=np.ones((2 * tolerance_px + 1,) * 2, dtype=bool))
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return float(zone[row, col]), float(zone.mean())


def grid_tolerance(image_size: int, grid_size: int, cells: int = 1) -> int:
    """Pixels spanned by ``cells`` cells of a ``grid_size`` feature map upsampled to ``image_size`` (rounded up)."""
    if grid_size < 1 or image_size < grid_size:
        raise ValueError(f"expected 1 <= grid_size <= image_size, got grid {grid_size}, image {image_size}")
    return int(math.ceil(cells * image_size / grid_size))


def _mask(masks: Mapping[str, np.ndarray], region: str, shape: tuple[int, ...]) -> np.ndarray:
    if region not in masks:
        raise ValueError(
            f"masks lack region {region!r}; expected keys {', '.join(REGIONS)}, got {sorted(masks)}"
        )
    mask = np.asarray(masks[region], dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask {region!r} has shape {mask.shape}; expected the CAM's shape {shape}")
    return mask
