"""Abnormalities of the paper's kinds, made in 3-D on a copy of the phantom limb.

- ``fracture``: the bone is cut by an oblique plane into two fragments with a gap (the dark fracture line);
  the distal fragment is displaced and angulated. Whether the line shows depends on the projection, as in
  real radiographs: it is sharp only when the beam runs along the fracture plane.
- ``degenerative``: the joint space narrows, osteophytes (small bone spurs) grow at the joint margins and
  the subchondral bone gets denser; at the wrist, a shifted and flexed scaphoid (as in the paper's Fig. 6).
- ``misalignment``: everything distal to a joint is angulated and shifted (a subluxated fingertip, a
  dislocated shoulder or radial head), or a long bone healed at an angle (malunion).
- ``hardware`` (screws, plates, wires, nails, prostheses, foreign bodies) lives in ``hardware.py``.

Each function edits the anatomy in place and adds ``marks``: solids whose projected outlines become the
ground-truth lesion polygons. ``magnitude`` (about 1; smaller is subtler) scales gaps, shifts and angles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .anatomy import Anatomy, Bone
from .bones import END_CORE
from .hardware import HARDWARE_OPTIONS, add_hardware
from .solids import ball, perpendicular_frame, rod, rotation

KINDS = ("fracture", "hardware", "degenerative", "misalignment")

# P(kind | abnormal study, body part): fingers lean to degenerative and misaligned joints, wrists to
# fractures and fixation hardware, long bones to fractures and nails/plates.
KIND_MIX: dict[str, dict[str, float]] = {
    "XR_FINGER": {"fracture": 0.30, "hardware": 0.12, "degenerative": 0.30, "misalignment": 0.28},
    "XR_HAND": {"fracture": 0.38, "hardware": 0.17, "degenerative": 0.27, "misalignment": 0.18},
    "XR_WRIST": {"fracture": 0.42, "hardware": 0.30, "degenerative": 0.16, "misalignment": 0.12},
    "XR_FOREARM": {"fracture": 0.50, "hardware": 0.38, "degenerative": 0.04, "misalignment": 0.08},
    "XR_ELBOW": {"fracture": 0.42, "hardware": 0.25, "degenerative": 0.20, "misalignment": 0.13},
    "XR_HUMERUS": {"fracture": 0.52, "hardware": 0.38, "degenerative": 0.04, "misalignment": 0.06},
    "XR_SHOULDER": {"fracture": 0.30, "hardware": 0.32, "degenerative": 0.23, "misalignment": 0.15},
}

# fracture sites: (bone, fraction range along its axis, weight); {ray} is the study's ray
FRACTURE_SITES: dict[str, tuple[tuple[str, float, float, float], ...]] = {
    "XR_FINGER": (
        ("{ray}.proximal", 0.3, 0.75, 1.0),
        ("{ray}.middle", 0.3, 0.7, 0.8),
        ("{ray}.distal", 0.35, 0.6, 0.5),
    ),
    "XR_HAND": (
        ("ray5.metacarpal", 0.6, 0.85, 1.0),
        ("{ray}.metacarpal", 0.3, 0.8, 1.0),
        ("{ray}.proximal", 0.25, 0.7, 0.7),
        ("scaphoid", 0.45, 0.55, 0.3),
    ),
    "XR_WRIST": (("radius", 0.86, 0.93, 3.0), ("scaphoid", 0.4, 0.6, 1.0), ("ulna", 0.9, 0.95, 0.5)),
    "XR_FOREARM": (("radius", 0.3, 0.75, 1.0), ("ulna", 0.3, 0.75, 1.0)),
    "XR_ELBOW": (("radius", 0.03, 0.1, 1.0), ("ulna", 0.06, 0.12, 0.7), ("humerus", 0.8, 0.88, 0.8)),
    "XR_HUMERUS": (("humerus", 0.25, 0.75, 1.0), ("humerus", 0.1, 0.15, 0.6)),
    "XR_SHOULDER": (("humerus", 0.1, 0.15, 1.0), ("clavicle", 0.35, 0.75, 0.9)),
}

# degenerative joints: (joint or special subtype, weight)
DEGENERATIVE_SITES: dict[str, tuple[tuple[str, float], ...]] = {
    "XR_FINGER": (("{ray}.dip", 1.0), ("{ray}.pip", 1.0)),
    "XR_HAND": (("ray1.cmc", 1.0), ("{ray}.dip", 0.7), ("{ray}.pip", 0.7), ("{ray}.mcp", 0.4)),
    "XR_WRIST": (("scaphoid_shift", 1.0), ("radiocarpal", 0.8), ("ray1.cmc", 0.5)),
    "XR_FOREARM": (("radiocarpal", 1.0), ("elbow.ulnohumeral", 1.0)),
    "XR_ELBOW": (("elbow.ulnohumeral", 1.0), ("elbow.radiocapitellar", 1.0)),
    "XR_HUMERUS": (("glenohumeral", 1.0), ("elbow.ulnohumeral", 0.5)),
    "XR_SHOULDER": (("glenohumeral", 1.0), ("acromioclavicular", 0.6)),
}

# misalignments: (joint, or "malunion:<bone>", or a special subtype, weight)
MISALIGNMENT_SITES: dict[str, tuple[tuple[str, float], ...]] = {
    "XR_FINGER": (("{ray}.dip", 1.0), ("{ray}.pip", 1.0), ("{ray}.mcp", 0.4)),
    "XR_HAND": (("{ray}.pip", 1.0), ("{ray}.mcp", 0.7), ("{ray}.dip", 0.7)),
    "XR_WRIST": (("lunate_dislocation", 1.0), ("distal_radioulnar", 0.7)),
    "XR_FOREARM": (("malunion:radius", 1.0), ("malunion:ulna", 0.7)),
    "XR_ELBOW": (("elbow.radiocapitellar", 1.0), ("elbow.ulnohumeral", 0.5)),
    "XR_HUMERUS": (("malunion:humerus", 1.0),),
    "XR_SHOULDER": (("glenohumeral", 1.0), ("acromioclavicular", 0.7)),
}

# lesion sizes at magnitude 1 (DifficultyKnobs.lesion_scale multiplies them; subtle studies use less)
FRACTURE_GAP_MM = (1.2, 2.5)  # the dark line
FRACTURE_SHIFT_RADII = (0.2, 0.7)  # sideways displacement of the distal fragment, in bone radii
FRACTURE_ANGLE_DEG = (4.0, 18.0)  # angulation of the distal fragment
OSTEOPHYTE_SIZE = (0.9, 1.6)  # spur radius in units of the joint's size scale (joint radius / 8)
SCAPHOID_SHIFT_MM = (2.5, 4.5)  # radial slide of the scaphoid
SCAPHOID_FLEXION_DEG = (18.0, 35.0)
SUBLUXATION_SHIFT_RADII = (0.3, 0.8)  # finger/hand joints: shift in articular radii
SUBLUXATION_ANGLE_DEG = (15.0, 40.0)
MALUNION_ANGLE_DEG = (10.0, 22.0)

# how far a misaligned joint shifts (fraction of its articular radius) and angulates (degrees), where the
# finger-joint defaults (0.2-0.6, 12-35 degrees) would swing a long bone out of the picture
_SUBLUXATION = {"glenohumeral": (0.8, 1.6), "acromioclavicular": (1.0, 2.0), "distal_radioulnar": (0.5, 0.9)}
_ANGULATION = {
    "glenohumeral": (2, 10),
    "acromioclavicular": (0, 4),
    "distal_radioulnar": (0, 2),
    "elbow.radiocapitellar": (3, 9),
    "elbow.ulnohumeral": (4, 12),
}


@dataclass
class Lesion:
    """What was done to the phantom: kind, subtype, site and parameters (JSON-friendly numbers)."""

    kind: str
    subtype: str
    site: str
    magnitude: float
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "subtype": self.subtype,
            "site": self.site,
            "magnitude": round(self.magnitude, 3),
            "params": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.params.items()},
        }


def _pick(rng: np.random.Generator, options, ray: str):
    """A weighted choice among ``(name, ..., weight)`` rows; ``{ray}`` and thumb joint names resolved."""
    weights = np.array([o[-1] for o in options], float)
    row = options[int(rng.choice(len(options), p=weights / weights.sum()))]
    name = row[0].replace("{ray}", ray)
    if name.startswith("ray1."):  # the thumb has an ip joint and no middle phalanx
        name = {"ray1.dip": "ray1.ip", "ray1.pip": "ray1.mcp", "ray1.middle": "ray1.proximal"}.get(name, name)
    return name, row


def _perpendicular(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= (v @ d) * d
    return v / np.linalg.norm(v)


def apply_lesion(
    anat: Anatomy,
    part: str,
    kind: str,
    rng: np.random.Generator,
    magnitude: float,
    ray: str,
    site: str | None = None,
) -> Lesion:
    """Add a ``kind`` abnormality typical for ``part`` to ``anat`` (in place) and return its description.

    ``ray`` is the finger ray the study shows (``ray1`` thumb ... ``ray5``); ``site`` forces a subtype
    (a bone for fractures, a joint or special name otherwise, a hardware option for hardware).
    """
    if kind == "fracture":
        if site is None:
            site, row = _pick(rng, FRACTURE_SITES[part], ray)
        else:  # a forced bone: the part's usual range along it, or its middle
            rows = [r for r in FRACTURE_SITES[part] if r[0].replace("{ray}", ray) == site]
            row = rows[0] if rows else (site, 0.3, 0.7, 1.0)
        return fracture(anat, site, rng.uniform(row[1], row[2]), rng, magnitude)
    if kind == "degenerative":
        site = site or _pick(rng, DEGENERATIVE_SITES[part], ray)[0]
        if site == "scaphoid_shift":
            return shift_scaphoid(anat, rng, magnitude)
        return degenerate_joint(anat, site, rng, magnitude)
    if kind == "misalignment":
        site = site or _pick(rng, MISALIGNMENT_SITES[part], ray)[0]
        if site.startswith("malunion:"):
            return malunion(anat, site.split(":", 1)[1], rng, magnitude)
        if site == "lunate_dislocation":
            return dislocate_lunate(anat, rng, magnitude)
        return misalign_joint(anat, site, rng, magnitude)
    if kind == "hardware":
        site = site or _pick(rng, HARDWARE_OPTIONS[part], ray)[0]
        params = add_hardware(anat, site, rng, ray, part)
        return Lesion("hardware", site, params.pop("site"), magnitude, params)
    raise ValueError(f"unknown abnormality kind {kind!r}; expected one of {KINDS}")


def split_bone(bone: Bone, point: np.ndarray, normal: np.ndarray, gap: float) -> tuple[Bone, Bone]:
    """Cut ``bone`` by the plane through ``point`` with ``normal`` into (proximal, distal) fragments."""
    off = float(normal @ point)
    prox = [p.clipped(normal, off - gap / 2) for p in bone.parts]
    dist = [p.clipped(-normal, -(off + gap / 2)) for p in bone.parts]
    a = Bone(
        bone.name,
        prox,
        (bone.axis[0], point),
        bone.radius,
        bone.chain,
        bone.order,
        bone.segment,
        bone.density,
    )
    b = Bone(
        f"{bone.name}.fragment",
        dist,
        (point, bone.axis[1]),
        bone.radius,
        bone.chain,
        bone.order,
        bone.segment,
        bone.density,
    )
    return a, b


def fracture(anat: Anatomy, name: str, fraction: float, rng: np.random.Generator, magnitude: float) -> Lesion:
    """Cut bone ``name`` at ``fraction`` of its length; displace and angulate the distal fragment."""
    bone = anat.bone(name)
    d = bone.direction
    point = bone.point(fraction)
    oblique = rng.uniform(0, 35)
    normal = rotation(_perpendicular(d, rng), oblique) @ d
    gap = magnitude * rng.uniform(*FRACTURE_GAP_MM)
    shift_mm = magnitude * rng.uniform(*FRACTURE_SHIFT_RADII) * bone.radius
    angle = magnitude * rng.uniform(*FRACTURE_ANGLE_DEG)
    prox, dist = split_bone(bone, point, normal, gap)
    dist = dist.moved(rotation(_perpendicular(d, rng), angle), point, shift_mm * _perpendicular(d, rng))
    anat.replace_bone(name, prox, dist)
    reach = bone.radius * 1.1 + gap + shift_mm
    anat.marks.append((rod(point - d * reach, point + d * reach, bone.radius * 1.6 + shift_mm), bone.segment))
    params = {"gap_mm": gap, "shift_mm": shift_mm, "angulation_deg": angle, "obliquity_deg": oblique}
    return Lesion(
        "fracture", "displaced" if shift_mm > 0.25 * bone.radius else "hairline", name, magnitude, params
    )


def degenerate_joint(anat: Anatomy, name: str, rng: np.random.Generator, magnitude: float) -> Lesion:
    """Narrow joint ``name``, add marginal osteophytes and subchondral sclerosis on both sides."""
    j = anat.joints[name]
    distal = anat.bone(j.distal)
    narrow = min(j.width * rng.uniform(0.55, 0.9) * magnitude, 0.92 * j.width)
    anat.move_chain(distal.chain, distal.order, np.eye(3), j.center, -j.direction * narrow)
    center = j.center - j.direction * narrow / 2
    side = np.cross(j.direction, [0, 0, 1.0])
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-6 else np.array([1.0, 0, 0])
    frame = perpendicular_frame(j.direction, side)
    scale = max(j.radius / 8, 0.6)

    def nub(label: str, solid, density: float) -> None:
        pos = solid.center
        anat.bones.append(
            Bone(
                f"{name}.{label}",
                [solid],
                (pos, pos + j.direction),
                1.0,
                distal.chain,
                distal.order,
                distal.segment,
                density,
            )
        )

    n_spurs = int(rng.integers(2, 5))
    for i in range(n_spurs):  # osteophytes: small spurs at the joint margins, pointing along the joint
        sgn = 1 if i % 2 == 0 else -1
        pos = (
            center
            + sgn * side * j.radius * rng.uniform(0.9, 1.1)
            + j.direction * rng.uniform(-1.5, 1.5) * j.width
        )
        size = magnitude * rng.uniform(*OSTEOPHYTE_SIZE) * scale
        nub(f"osteophyte{i + 1}", ball(pos, (size, 1.6 * size, size), frame, core=0.3), 1.2)
    for sgn in (-1, 1):  # sclerosis: a thin band of denser bone beneath both articular surfaces
        pos = center + sgn * j.direction * (j.width * 0.5 + 1.2 * scale)
        nub(
            f"sclerosis{sgn:+d}",
            ball(pos, (0.85 * j.radius, 1.2 * scale, 0.7 * j.radius), frame),
            0.12 * magnitude,
        )
    anat.marks.append((ball(center, 1.5 * j.radius + 1.0), distal.segment))
    return Lesion(
        "degenerative", "osteoarthritis", name, magnitude, {"narrowing_mm": narrow, "osteophytes": n_spurs}
    )


def shift_scaphoid(anat: Anatomy, rng: np.random.Generator, magnitude: float) -> Lesion:
    """Scapholunate dissociation: the scaphoid slides radially and flexes (the paper's Fig. 6, subtle)."""
    bone = anat.bone("scaphoid")
    c = bone.parts[0].center
    shift = magnitude * np.array(
        [rng.uniform(*SCAPHOID_SHIFT_MM), rng.uniform(-1.0, 1.5), rng.uniform(-1.5, 1.5)]
    )
    flex = magnitude * rng.uniform(*SCAPHOID_FLEXION_DEG)
    anat.replace_bone("scaphoid", bone.moved(rotation("x", flex), c, shift))
    anat.marks.append((ball(c + shift, 13.0), bone.segment))
    params = {"shift_mm": float(np.linalg.norm(shift)), "flexion_deg": flex}
    return Lesion("degenerative", "scaphoid_shift", "scaphoid", magnitude, params)


def misalign_joint(anat: Anatomy, name: str, rng: np.random.Generator, magnitude: float) -> Lesion:
    """Angulate and shift everything distal to joint ``name`` (subluxation or dislocation)."""
    j = anat.joints[name]
    distal = anat.bone(j.distal)
    axis = _perpendicular(j.direction, rng)
    angle = magnitude * rng.uniform(*_ANGULATION.get(name, SUBLUXATION_ANGLE_DEG)) * rng.choice([-1, 1])
    lo, hi = _SUBLUXATION.get(name, SUBLUXATION_SHIFT_RADII)
    shift = magnitude * rng.uniform(lo, hi) * j.radius * _perpendicular(j.direction, rng)
    anat.move_chain(distal.chain, distal.order, rotation(axis, angle), j.center, shift)
    anat.marks.append(
        (ball(j.center + shift / 2, 1.6 * j.radius + np.linalg.norm(shift) / 2 + 1.0), distal.segment)
    )
    params = {"angle_deg": float(angle), "shift_mm": float(np.linalg.norm(shift))}
    return Lesion("misalignment", "subluxation", name, magnitude, params)


def dislocate_lunate(anat: Anatomy, rng: np.random.Generator, magnitude: float) -> Lesion:
    """The lunate tips towards the palm and slides out of its row (best seen on the lateral view)."""
    bone = anat.bone("lunate")
    c = bone.parts[0].center
    tip = magnitude * rng.uniform(30, 60)
    shift = magnitude * np.array([rng.uniform(-1, 1), rng.uniform(-2, 0), -rng.uniform(4, 7)])
    anat.replace_bone("lunate", bone.moved(rotation("x", tip), c, shift))
    anat.marks.append((ball(c + shift / 2, 12.0), bone.segment))
    return Lesion(
        "misalignment",
        "lunate_dislocation",
        "lunate",
        magnitude,
        {"tilt_deg": tip, "shift_mm": float(np.linalg.norm(shift))},
    )


def malunion(anat: Anatomy, name: str, rng: np.random.Generator, magnitude: float) -> Lesion:
    """A long bone healed at an angle: no gap, an angulated distal part and a bulge of callus."""
    bone = anat.bone(name)
    d = bone.direction
    point = bone.point(rng.uniform(0.35, 0.7))
    prox, dist = split_bone(bone, point, d, 0.0)
    angle = magnitude * rng.uniform(*MALUNION_ANGLE_DEG)
    dist = dist.moved(rotation(_perpendicular(d, rng), angle), point)
    frame = perpendicular_frame(d)
    callus = ball(point, (1.45 * bone.radius, 2.2 * bone.radius, 1.45 * bone.radius), frame, core=END_CORE)
    anat.replace_bone(
        name,
        prox,
        dist,
        Bone(
            f"{name}.callus",
            [callus],
            (point - d, point + d),
            bone.radius,
            bone.chain,
            bone.order,
            bone.segment,
            0.7,
        ),
    )
    anat.marks.append(
        (rod(point - d * 2.5 * bone.radius, point + d * 2.5 * bone.radius, 2.0 * bone.radius), bone.segment)
    )
    return Lesion("misalignment", "malunion", name, magnitude, {"angle_deg": angle})
