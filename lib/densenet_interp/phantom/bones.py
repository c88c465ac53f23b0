"""Bone shapes from a few measurements: long bones (shaft plus two ends) and round bones (carpals, heads).

Shafts have a thick cortex (core ratio about 0.55: the bright "tram lines" of a radiograph); the wider ends
have a thin cortex over light cancellous bone (core about 0.85), as in real long bones.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Bone
from .solids import Solid, ball, perpendicular_frame, rod

SHAFT_CORE = 0.55
END_CORE = 0.87


def long_bone(
    name: str,
    p0,
    p1,
    shaft: float,
    base: float,
    head: float,
    chain: str = "",
    order: int = 0,
    segment: str = "lower",
    depth_ratio: float = 0.9,
    shaft_core: float = SHAFT_CORE,
) -> Bone:
    """A tubular bone from ``p0`` (proximal) to ``p1`` (distal): shaft radius and base/head radii in mm.

    The end balls touch ``p0`` and ``p1``; the shaft rod joins their centres. ``depth_ratio`` flattens the
    cross-section front to back (phalanges and metacarpals are a little flatter than wide).
    """
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    frame = perpendicular_frame(p1 - p0)
    d = frame[:, 1]
    length = float(np.linalg.norm(p1 - p0))
    parts = [
        rod(p0 + d * 0.2 * length, p1 - d * 0.2 * length, shaft, depth_ratio, core=shaft_core),
        flare(p0 + d * 0.3 * base, d, frame, 0.97 * base, shaft, 0.3 * length, depth_ratio),
        ball(p0 + d * 0.7 * base, (base, 0.7 * base, base * depth_ratio), frame, core=END_CORE),
        flare(p1 - d * 0.5 * head, -d, frame, 0.9 * head, shaft, 0.3 * length, depth_ratio),
        ball(p1 - d * 0.75 * head, (head, 0.75 * head, head * depth_ratio), frame, core=END_CORE),
    ]
    return Bone(name, parts, (p0, p1), shaft, chain, order, segment)


def flare(
    end, inward, frame, radius: float, shaft: float, reach: float, depth_ratio: float = 0.9, tilt=None
) -> Solid:
    """The widening end of a long bone: ``radius`` at ``end``, narrowing to ``shaft`` ``reach`` mm inwards.

    It is the tip region of a long ellipsoid whose centre lies beyond ``end``, cut flat at ``end`` (the cut
    plane's outward normal may be tilted, ``tilt``, for slanted articular surfaces): its profile narrows almost
    linearly into the shaft, like the metaphysis of a real bone, and overlaps the shaft beyond ``reach``.
    """
    end = np.asarray(end, float)
    inward = np.asarray(inward, float) / np.linalg.norm(inward)
    r = radius / 0.954  # the ellipsoid is 0.954 r wide where it is cut (0.3 semi-axes from its centre)
    meets = max(np.sqrt(max(1.0 - (shaft / r) ** 2, 0.0)), 0.45)  # where its width equals the shaft's
    semi = reach / (meets - 0.3)
    center = end - inward * 0.3 * semi
    axes = np.column_stack([frame[:, 0] * r, inward * semi, frame[:, 2] * r * depth_ratio])
    normal = -inward if tilt is None else np.asarray(tilt, float) / np.linalg.norm(tilt)
    return Solid("ball", center, axes, ((normal, float(normal @ end)),), END_CORE)


def round_bone(
    name: str,
    center,
    radii,
    tilt_deg: float = 0.0,
    chain: str = "",
    order: int = 0,
    segment: str = "lower",
    core: float = END_CORE,
) -> Bone:
    """A compact bone (carpal, sesamoid, joint head): an ellipsoid tilted in the x-y plane by ``tilt_deg``.

    Its axis runs along the ellipsoid's second semi-axis (the long one for an elongated scaphoid).
    """
    c = np.asarray(center, float)
    a = np.deg2rad(tilt_deg)
    frame = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    radii = np.asarray(radii, float)
    half = frame[:, 1] * radii[1]
    return Bone(
        name,
        [ball(c, radii, frame, core=core)],
        (c - half, c + half),
        float(min(radii)),
        chain,
        order,
        segment,
    )
