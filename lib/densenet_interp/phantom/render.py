"""From projected anatomy to a radiograph-like image: Beer-Lambert attenuation, exposure, blur and noise.

``attenuation`` sums ``mu * path_length`` over materials: soft tissue (one body: union of its solids), lung
air (negative: air replaces tissue), each bone as cortical shell plus marrow core (union of its parts; bones
add where they overlap in projection, as real overlapping bones do), metal. ``expose`` turns it into a display
image (air dark, bone bright, metal saturated) with a per-image exposure window, characteristic curve, gamma
and heel-effect gradient; ``blur_and_noise`` adds focal-spot blur and quantum-plus-electronic noise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from .anatomy import Anatomy
from .solids import Solid, path_lengths, pixel_bbox, silhouette

# linear attenuation per mm (relative units, tuned by eye so that the phantoms look like radiographs)
MU_SOFT = 0.010
MU_CORTEX = 0.110
MU_MARROW = 0.022
MU_METAL = 1.2
MU_LUNG = -0.009


def _union(solids: list[Solid], height: int, width: int):
    """Max-union of the solids' chords: ``(bbox, outer, core)`` over their joint bounding box, or None."""
    boxes = [(s, pixel_bbox(s, height, width)) for s in solids]
    boxes = [(s, b) for s, b in boxes if b is not None]
    if not boxes:
        return None
    r0 = min(b[0] for _, b in boxes)
    r1 = max(b[1] for _, b in boxes)
    c0 = min(b[2] for _, b in boxes)
    c1 = max(b[3] for _, b in boxes)
    outer = np.zeros((r1 - r0, c1 - c0), np.float32)
    core = np.zeros_like(outer)
    for s, (a0, a1, b0, b1) in boxes:
        o, c = path_lengths(s, np.arange(a0, a1, dtype=np.float32), np.arange(b0, b1, dtype=np.float32))
        sl = (slice(a0 - r0, a1 - r0), slice(b0 - c0, b1 - c0))
        np.maximum(outer[sl], o, out=outer[sl])
        if c is not None:
            np.maximum(core[sl], c, out=core[sl])
    return (slice(r0, r1), slice(c0, c1)), outer, core


def attenuation(
    anat: Anatomy,
    height: int,
    width: int,
    px_per_mm: float,
    beam: float,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(body, metal)``: attenuation ``sum mu * L`` per pixel of tissue and bone, and of metal.

    The anatomy must already be in the image frame (pixels); ``beam`` scales all coefficients. With ``rng``,
    marrow attenuation is modulated by a fine random texture standing in for trabecular bone.
    """
    mm = beam / px_per_mm  # path lengths come in pixels
    body = np.zeros((height, width), np.float32)
    marrow = np.zeros((height, width), np.float32)
    soft = _union([t.solid for t in anat.soft], height, width)
    if soft is not None:
        body[soft[0]] += MU_SOFT * mm * soft[1]
    for lung in anat.lung:
        got = _union([lung], height, width)
        if got is not None:
            body[got[0]] += MU_LUNG * mm * got[1]
    np.maximum(body, 0.0, out=body)
    for bone in anat.bones:
        got = _union(bone.parts, height, width)
        if got is not None:
            sl, outer, core = got
            body[sl] += (bone.density * mm * MU_CORTEX) * (outer - core)
            marrow[sl] += (bone.density * mm * MU_MARROW) * core
    if rng is not None:
        marrow *= trabecular_texture(rng, height, width)
    body += marrow
    metal = np.zeros((height, width), np.float32)
    for solid, _ in anat.metal:
        got = _union([solid], height, width)
        if got is not None:
            metal[got[0]] += MU_METAL * mm * got[1]
    return body, metal


def trabecular_texture(
    rng: np.random.Generator, height: int, width: int, amplitude: float = 0.2
) -> np.ndarray:
    """A multiplicative texture around 1: smoothed noise at half resolution, blocks later blurred away."""
    small = rng.standard_normal(((height + 1) // 2, (width + 1) // 2), dtype=np.float32)
    small = gaussian_filter(small, 1.0) * (amplitude / 0.28)  # the filter leaves a standard deviation ~0.28
    return 1.0 + np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)[:height, :width]


def expose(body: np.ndarray, metal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Attenuation to a display image in [0, 1], the way a digital radiography system processes it.

    The window is set from the histogram of tissue and bone (as automatic exposure processing does), so
    metal lies beyond it, near white; then a compressive characteristic curve, gamma and a heel-effect
    gradient.
    """
    h = body.shape[0]
    sample = body[::4, ::4]
    sample = sample[sample > 0.02]
    top = float(np.percentile(sample, 99.8)) if sample.size else 1.0
    top = max(top, 0.3) * rng.uniform(1.0, 1.2)
    curve = rng.uniform(0.2, 1.0)
    img = np.minimum((1.0 - np.exp(body * (-curve / top))) * (1.0 / (1.0 - math.exp(-curve))), 1.0)
    # metal: far beyond the window, yet a thin plate stays a shade below the screws through it
    img += (1.0 - img) * (1.0 - np.exp(-0.8 * metal))
    floor = rng.uniform(0.0, 0.06)
    heel = (rng.uniform(-0.10, 0.10) * np.linspace(-0.5, 0.5, h, dtype=np.float32))[:, None]
    return np.clip(floor + (1 - floor) * img * (1.0 + heel), 0.0, 1.0) ** rng.uniform(0.85, 1.3)


def blur_and_noise(
    img: np.ndarray, rng: np.random.Generator, noise_level: float, long_side: int
) -> np.ndarray:
    """Focal-spot and detector blur, then signal-dependent quantum noise plus electronic noise, in [0, 1]."""
    sigma = rng.uniform(0.5, 1.1) * long_side / 512
    img = gaussian_filter(img, sigma=max(sigma, 0.35), truncate=3.0)
    quantum = noise_level * rng.uniform(0.015, 0.035)
    electronic = noise_level * rng.uniform(0.003, 0.010)
    img += np.sqrt(quantum**2 * img + electronic**2) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


def outlines(
    solids: list[Solid], height: int, width: int, points: int = 20, decimals: int = 1
) -> list[list[list[float]]]:
    """Projected outlines (pixel polygons) of the solids that reach the image, clipped to it and rounded."""
    polys = []
    for s in solids:
        if pixel_bbox(s, height, width) is None:
            continue
        clipped = clip_convex(silhouette(s, points), width, height)
        if len(clipped) >= 3:
            rounded = np.round(clipped, decimals)
            polys.append(rounded.astype(int).tolist() if decimals == 0 else rounded.tolist())
    return polys


def clip_convex(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clipping of a convex polygon to the rectangle [0, width] x [0, height]."""
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_below in ((0, 0.0, False), (0, width, True), (1, 0.0, False), (1, height, True)):
        if not pts:
            break

        def inside(p, axis=axis, bound=bound, keep_below=keep_below):
            return p[axis] <= bound if keep_below else p[axis] >= bound

        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur) != inside(prev):
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if inside(cur):
                out.append(cur)
        pts = out
    return np.array(pts, float).reshape(-1, 2)
