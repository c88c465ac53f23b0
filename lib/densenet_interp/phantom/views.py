"""Cameras: which part of the phantom limb a MURA body part shows, from which side, at what size.

A study's images are different projections of the same 3-D limb: the camera poses it (elbow flexion), turns it
about the limb's long axis (PA 0 degrees, oblique 45, lateral 90, AP 180), tilts, shifts and zooms it a little
(patient positioning is never exact), mirrors it for the other side, and maps millimetres to pixels with +y
pointing down the image. Projection is orthographic along the image frame's +z (see ``solids.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import Anatomy
from .solids import rotation

# view name -> (turn of the whole patient about the limb's long axis, turn of the arm about the humerus), degrees
VIEWS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "XR_FINGER": (("PA", 0.0, 0.0), ("LAT", 90.0, 0.0), ("OBL", 45.0, 0.0)),
    "XR_HAND": (("PA", 0.0, 0.0), ("OBL", 45.0, 0.0), ("LAT", 90.0, 0.0)),
    "XR_WRIST": (("PA", 0.0, 0.0), ("LAT", 90.0, 0.0), ("OBL", 45.0, 0.0)),
    "XR_FOREARM": (("AP", 180.0, 0.0), ("LAT", 90.0, 0.0)),
    "XR_ELBOW": (("AP", 180.0, 0.0), ("LAT", 90.0, 0.0), ("OBL", 135.0, 0.0)),
    "XR_HUMERUS": (("AP", 180.0, 0.0), ("LAT", 190.0, 90.0)),
    "XR_SHOULDER": (("AP", 180.0, 0.0), ("GRASHEY", 215.0, 0.0), ("Y", 245.0, 0.0)),
}


@dataclass(frozen=True)
class PartFraming:
    """How a body part is framed: the landmark at the image centre, field of view, orientation."""

    landmark: str
    fov_mm: float  # long side of the field of view
    distal_up: float  # probability that the distal end points up in the image
    landscape: float  # probability of a landscape image
    beam: float  # attenuation multiplier standing in for the tube voltage chosen for this part's thickness


FRAMING: dict[str, PartFraming] = {
    "XR_FINGER": PartFraming("finger", 92.0, 1.0, 0.0, 1.25),
    "XR_HAND": PartFraming("hand", 225.0, 1.0, 0.1, 1.0),
    "XR_WRIST": PartFraming("wrist", 125.0, 1.0, 0.05, 0.95),
    "XR_FOREARM": PartFraming("forearm", 335.0, 0.6, 0.0, 0.8),
    "XR_ELBOW": PartFraming("elbow", 185.0, 0.15, 0.15, 0.7),
    "XR_HUMERUS": PartFraming("humerus", 400.0, 0.0, 0.0, 0.55),
    "XR_SHOULDER": PartFraming("shoulder", 265.0, 0.0, 0.45, 0.42),
}


@dataclass(frozen=True)
class Camera:
    """One image's projection: ``image_point = linear @ world_point + shift`` (pixels, +z into the detector)."""

    part: str
    view: str
    height: int
    width: int
    px_per_mm: float
    linear: np.ndarray
    shift: np.ndarray
    beam: float


def view_names(part: str, n_images: int) -> list[str]:
    """The views of a study with ``n_images`` images: the part's standard series, repeated when longer."""
    names = [v[0] for v in VIEWS[part]]
    return [names[i % len(names)] for i in range(n_images)]


def flexion(part: str, view: str, rng: np.random.Generator) -> float:
    """Elbow flexion: bent for lateral elbow and humerus views, nearly straight otherwise."""
    if part == "XR_ELBOW" and view == "LAT":
        return float(rng.uniform(75, 100))
    if part == "XR_HUMERUS" and view == "LAT":
        return float(rng.uniform(40, 80))
    return float(rng.uniform(0, 8))


def make_camera(
    part: str,
    view: str,
    rng: np.random.Generator,
    long_side: int,
    center: np.ndarray,
    mirrored: bool,
    variation: float = 1.0,
) -> Camera:
    """A jittered camera for ``view`` of ``part`` centred on ``center`` (world mm) with long side in pixels."""
    framing = FRAMING[part]
    angle = _view(part, view)[1] + variation * rng.normal(0, 5)
    aspect = rng.uniform(0.74, 0.92)
    landscape = rng.random() < framing.landscape
    h, w = (round(long_side * aspect), long_side) if landscape else (long_side, round(long_side * aspect))
    fov = framing.fov_mm * (1 + variation * rng.normal(0, 0.05))
    s = long_side / fov

    tilt = variation * rng.normal(0, 4.0)
    if part == "XR_ELBOW" and view == "LAT":
        tilt += rng.choice([-1, 1]) * rng.uniform(25, 50)
    if rng.random() >= framing.distal_up:
        tilt += 180.0
    if landscape and part in ("XR_HAND", "XR_WRIST", "XR_FOREARM"):
        tilt += 90.0
    flip = np.diag([-1.0 if mirrored else 1.0, -1.0, 1.0])  # +y distal -> up the image; mirror for side
    linear = s * flip @ rotation("z", tilt) @ rotation("y", angle)
    offset = np.array([w / 2, h / 2, 0.0]) + variation * rng.normal(0, 0.035, 3) * np.array([w, h, 0.0])
    shift = offset - linear @ np.asarray(center, float)
    return Camera(part, view, h, w, s, linear, shift, framing.beam)


def _view(part: str, view: str) -> tuple[str, float, float]:
    for v in VIEWS[part]:
        if v[0] == view:
            return v
    raise ValueError(f"unknown view {view!r} for {part}; expected one of {[v[0] for v in VIEWS[part]]}")


Pose = dict[str, tuple[np.ndarray, np.ndarray]]  # segment -> (linear, shift) in the world frame


def pose(anat: Anatomy, part: str, view: str, flexion_deg: float) -> Pose:
    """How ``view`` poses each segment: forearm bent forward about the elbow, arm turned about the humerus."""
    flex = rotation("x", -flexion_deg)
    zero = np.zeros(3)
    turn = _view(part, view)[2]
    arm = rotation(anat.landmark("head"), turn) if turn else np.eye(3)  # the humerus runs elbow -> head
    return {"lower": (arm @ flex, zero), "arm": (arm, zero), "girdle": (np.eye(3), zero)}


def posed_landmark(anat: Anatomy, posture: Pose, name: str) -> np.ndarray:
    point, segment = anat.landmarks[name]
    linear, shift = posture[segment]
    return linear @ point + shift


def project(anat: Anatomy, posture: Pose, camera: Camera) -> Anatomy:
    """The anatomy posed and mapped into the camera's image frame (pixels), in one mapping per solid."""
    maps = {
        seg: (camera.linear @ lin, camera.linear @ sh + camera.shift) for seg, (lin, sh) in posture.items()
    }
    return anat.transformed(maps)


def isolate_digit(anat: Anatomy, ray: str) -> Anatomy:
    """A copy without the phalanges of the other rays (they are bent away for a lateral finger view)."""
    out = anat.copy()
    out.bones = [b for b in out.bones if not (b.chain.startswith("ray") and b.chain != ray and b.order > 0)]
    out.soft = [t for t in out.soft if not (t.chain.startswith("ray") and t.chain != ray and t.order > 0)]
    return out


def finger_center(anat: Anatomy, posture: Pose, ray: str) -> np.ndarray:
    """Where a finger radiograph of ``ray`` is centred: near the distal end of the proximal phalanx."""
    linear, shift = posture["lower"]
    return linear @ anat.bone(f"{ray}.proximal").point(0.85) + shift
