"""Orthopaedic hardware and foreign bodies: metal far denser than bone, with sharp edges.

Screws (threaded shaft and head), plates (with screws through the bone; a T-plate on the distal radius),
Kirschner wires and nails/pins (thin rods, crossing or intramedullary, often leaving the skin), intramedullary
nails with locking screws, a humeral head prosthesis, suture anchors, an olecranon tension band, a headless
scaphoid screw, and scattered metal fragments (the "foreign objects" of the paper's Fig. 1b). Everything is
added to ``anat.metal`` (rendered with the metal attenuation, so it saturates) and outlined in ``anat.marks``.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Anatomy, Bone
from .solids import Solid, ball, box, perpendicular_frame, rod, rotation

# hardware options per body part: ("<type>:<bone>" or a special name, weight); {ray} is the study's ray
HARDWARE_OPTIONS: dict[str, tuple[tuple[str, float], ...]] = {
    "XR_FINGER": (
        ("kwires:{ray}.proximal", 1.0),
        ("screws:{ray}.proximal", 0.5),
        ("screws:{ray}.middle", 0.4),
        ("plate:{ray}.proximal", 0.3),
    ),
    "XR_HAND": (
        ("kwires:{ray}.metacarpal", 1.0),
        ("plate:{ray}.metacarpal", 1.0),
        ("screws:{ray}.proximal", 0.4),
        ("foreign_body:hand", 0.3),
    ),
    "XR_WRIST": (
        ("plate:radius", 1.6),
        ("kwires:radius", 0.9),
        ("scaphoid_screw", 0.5),
        ("foreign_body:wrist", 0.5),
    ),
    "XR_FOREARM": (("plate:radius", 1.0), ("plate:ulna", 0.8), ("nail:ulna", 0.3), ("nail:radius", 0.2)),
    "XR_ELBOW": (("tension_band", 1.0), ("plate:humerus", 0.8), ("screws:radius", 0.6)),
    "XR_HUMERUS": (("nail:humerus", 1.0), ("plate:humerus", 1.0)),
    "XR_SHOULDER": (("prosthesis", 0.8), ("plate:humerus", 0.9), ("anchors", 0.5), ("plate:clavicle", 0.5)),
}

# where along a bone (fraction of its axis) hardware goes for the body part that shows it
PLACEMENT: dict[str, tuple[float, float]] = {
    "radius@XR_WRIST": (0.74, 0.97),
    "radius@XR_ELBOW": (0.02, 0.12),
    "humerus@XR_ELBOW": (0.72, 0.93),
    "humerus@XR_SHOULDER": (0.04, 0.3),
    "ulna@XR_ELBOW": (0.0, 0.3),
}
_DEFAULT_PLACEMENT = (0.25, 0.75)


def _perp(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    v -= (v @ d) * d
    return v / np.linalg.norm(v)


def screw(
    start, direction, length: float, radius: float, head: bool = True, pitch: float = 1.6
) -> list[Solid]:
    """A screw from ``start`` along ``direction``: core shaft, thread discs every ``pitch`` mm, optional head."""
    start = np.asarray(start, float)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    frame = perpendicular_frame(d)
    parts = [rod(start, start + d * length, radius)]
    for s in np.arange(pitch, length - 0.5, pitch):
        parts.append(ball(start + d * s, (1.4 * radius, 0.35, 1.4 * radius), frame))
    if head:
        parts.append(rod(start - d * 2.0, start + d * 0.2, 2.0 * radius))
    return parts


def _add(anat: Anatomy, solids: list[Solid], segment: str, outline: list[Solid] | None = None) -> None:
    """Add metal solids and their lesion outline (default: the solids themselves, a little enlarged)."""
    anat.metal += [(s, segment) for s in solids]
    anat.marks += [(s.scaled(1.15), segment) for s in (outline if outline is not None else solids)]


def add_hardware(anat: Anatomy, option: str, rng: np.random.Generator, ray: str, part: str = "") -> dict:
    """Add hardware ``option`` (a name from :data:`HARDWARE_OPTIONS`) and return its parameters.

    The returned dict has ``site`` (the bone or region) and counts/sizes for the annotation.
    """
    option = option.replace("{ray}", ray)
    kind, _, target = option.partition(":")
    if kind in ("plate", "kwires", "screws", "nail"):
        bone = anat.bone(target)
        lo, hi = PLACEMENT.get(f"{target}@{part}", _DEFAULT_PLACEMENT)
        builder = {"plate": _plate, "kwires": _kwires, "screws": _screws, "nail": _nail}[kind]
        return {"site": target, "type": kind, **builder(anat, bone, lo, hi, rng)}
    special = {
        "scaphoid_screw": _scaphoid_screw,
        "foreign_body": _foreign_body,
        "prosthesis": _prosthesis,
        "anchors": _anchors,
        "tension_band": _tension_band,
    }
    if kind not in special:
        raise ValueError(f"unknown hardware option {option!r}")
    return {"type": kind, **special[kind](anat, rng, target)}


def _plate(anat: Anatomy, bone: Bone, lo: float, hi: float, rng) -> dict:
    """A plate on the bone surface with screws through the bone; T-shaped on the distal radius."""
    d = bone.direction
    span = rng.uniform(0.6, 1.0) * (hi - lo)
    f0 = rng.uniform(lo, hi - span)
    side = np.array([0, 0, -1.0]) if bone.name == "radius" and lo > 0.5 else _perp(d, rng)
    side -= (side @ d) * d
    side /= np.linalg.norm(side)
    width = max(0.55 * bone.radius, 2.0)
    thick = max(0.12 * bone.radius, 0.7)
    offset = bone.radius * 1.05 + thick
    p0, p1 = bone.point(f0) + side * offset, bone.point(f0 + span) + side * offset
    length = float(np.linalg.norm(p1 - p0))
    frame = np.column_stack([np.cross(d, side), d, side])
    plates = [box((p0 + p1) / 2, (width, length / 2, thick), frame)]
    if bone.name == "radius" and lo > 0.5:  # volar locking plate: wide head near the joint
        plates.append(box(p1 - d * 4.0, (2.6 * width, 4.5, thick), frame))
    parts = list(plates)
    n_screws = max(2, int(length / (4.2 * width)) + 1)
    screws_r = max(0.22 * bone.radius, 0.6)
    shafts = []
    for s in np.linspace(0.1, 0.9, n_screws):
        start = p0 + (p1 - p0) * s + side * thick
        direction = -side + rng.uniform(0.15, 0.5) * d * rng.choice([-1, 1]) + 0.1 * rng.normal(size=3)
        parts += screw(start, direction, 2 * offset + 1.5, screws_r)
        shafts.append(rod(start, start - side * (2 * offset), 1.6 * screws_r))
    _add(anat, parts, bone.segment, plates + shafts)
    return {"length_mm": length, "screws": n_screws}


def _screws(anat: Anatomy, bone: Bone, lo: float, hi: float, rng) -> dict:
    """One to three lag screws across the bone."""
    d = bone.direction
    n = int(rng.integers(1, 4))
    parts = []
    outline = []
    for _ in range(n):
        p = bone.point(rng.uniform(lo, hi))
        across = _perp(d, rng)
        direction = across + rng.uniform(-0.6, 0.6) * d
        direction /= np.linalg.norm(direction)
        start = p - direction * bone.radius * 1.4
        length = bone.radius * 2.6
        r = max(0.25 * bone.radius, 0.6)
        parts += screw(start, direction, length, r)
        outline.append(rod(start - direction * 2, start + direction * length, 2.2 * r))
    _add(anat, parts, bone.segment, outline)
    return {"screws": n}


def _kwires(anat: Anatomy, bone: Bone, lo: float, hi: float, rng) -> dict:
    """Kirschner wires: crossing pins through the bone (one running along the ray for fingers and thumbs)."""
    d = bone.direction
    p = bone.point(rng.uniform(lo, hi))
    n = int(rng.integers(2, 4))
    r = float(np.clip(0.2 * bone.radius, 0.6, 1.1))
    parts = []
    longitudinal = bone.chain.startswith("ray")
    for i in range(n):
        if longitudinal and i == 0:  # intramedullary pin from the fingertip side down the ray
            a, b = p + d * rng.uniform(35, 50), p - d * rng.uniform(12, 25)
        else:
            direction = rotation(_perp(d, rng), rng.uniform(25, 50) * rng.choice([-1, 1])) @ d
            reach = bone.radius * rng.uniform(4, 7) + rng.uniform(8, 20)
            a, b = p - direction * reach * rng.uniform(0.5, 0.9), p + direction * reach
        parts.append(rod(a, b, r))
        parts.append(ball(a, r * 1.05))
    _add(anat, parts, bone.segment)
    return {"wires": n, "wire_radius_mm": r}


def _nail(anat: Anatomy, bone: Bone, lo: float, hi: float, rng) -> dict:
    """An intramedullary nail with two locking screws at each end."""
    d = bone.direction
    a, b = bone.point(0.06), bone.point(0.9)
    r = 0.5 * bone.radius
    parts = [rod(a, b, r), ball(b, r)]
    outline = [rod(a, b, r * 1.3)]
    side = _perp(d, rng)
    for f in (0.1, 0.16, 0.8, 0.86):
        p = a + (b - a) * f
        parts += screw(p - side * bone.radius * 1.5, side, bone.radius * 3.0, 0.25 * bone.radius)
    locks = [rod(a + (b - a) * f0, a + (b - a) * (f0 + 0.1), bone.radius * 1.6) for f0 in (0.08, 0.78)]
    _add(anat, parts, bone.segment, outline + locks)
    return {"length_mm": float(np.linalg.norm(b - a)), "screws": 4}


def _scaphoid_screw(anat: Anatomy, rng, _target: str) -> dict:
    """A headless compression screw along the scaphoid's long axis."""
    sc = anat.bone("scaphoid")
    a, b = sc.point(0.1), sc.point(0.9)
    parts = screw(a, b - a, float(np.linalg.norm(b - a)), 1.4, head=False, pitch=1.2)
    _add(anat, parts, sc.segment, [rod(a, b, 2.4)])
    return {"site": "scaphoid", "screws": 1}


def _foreign_body(anat: Anatomy, rng, target: str) -> dict:
    """Three to seven metal fragments (shards, pellets) scattered in the soft tissue of the wrist or hand."""
    center = anat.landmark("wrist" if target == "wrist" else "hand")
    n = int(rng.integers(3, 8))
    parts = []
    for _ in range(n):
        pos = center + rng.normal(0, [14.0, 14.0, 8.0])
        if rng.random() < 0.5:
            parts.append(ball(pos, rng.uniform(0.7, 2.2)))
        else:
            orient = rotation(rng.normal(size=3), rng.uniform(0, 180))
            parts.append(
                box(pos, (rng.uniform(0.4, 1.0), rng.uniform(1.5, 5.0), rng.uniform(0.4, 1.2)), orient)
            )
    _add(anat, parts, "lower", [p.scaled(1.6) for p in parts])
    return {"site": target, "fragments": n}


def _prosthesis(anat: Anatomy, rng, _target: str) -> dict:
    """A humeral head replacement: a metal head on a stem down the humeral shaft."""
    hum = anat.bone("humerus")
    head = anat.landmark("head")
    d = hum.direction  # from the head end towards the elbow
    stem_end = head + d * rng.uniform(110, 140)
    parts = [
        ball(head, 21.0),
        rod(head, head + d * 40, 7.0),
        rod(head + d * 38, stem_end, 4.5),
        ball(stem_end, 4.5),
    ]
    _add(anat, parts, hum.segment)
    return {"site": "humerus", "stem_mm": float(np.linalg.norm(stem_end - head))}


def _anchors(anat: Anatomy, rng, _target: str) -> dict:
    """Two or three suture anchors (small screws) in the greater tuberosity, aimed at the head's centre."""
    hum = anat.bone("humerus")
    head = anat.landmark("head")
    n = int(rng.integers(2, 4))
    parts = []
    outline = []
    for _ in range(n):
        entry = head + np.array([rng.uniform(16, 24), rng.uniform(-14, 6), rng.uniform(-8, 8)])
        direction = head - entry
        parts += screw(entry, direction, rng.uniform(10, 14), 1.8, head=False, pitch=1.5)
        outline.append(rod(entry, entry + 14 * direction / np.linalg.norm(direction), 3.5))
    _add(anat, parts, hum.segment, outline)
    return {"site": "humerus", "anchors": n}


def _tension_band(anat: Anatomy, rng, _target: str) -> dict:
    """Olecranon tension band: two parallel K-wires down the ulna and a figure-of-eight wire behind it."""
    ulna = anat.bone("ulna")
    top = ulna.point(0.02)
    d = ulna.direction
    parts = []
    for dx in (-3.0, 3.0):
        a = top + np.array([dx, 0, 0]) - d * 3
        parts += [rod(a, a + d * rng.uniform(55, 75), 0.9), ball(a, 1.1)]
    back = np.array([0, 0, -1.0]) * 10
    p1, p2 = top + d * 8 + back, top + d * 45 + back * 0.8
    parts += [rod(p1 + [-8, 0, 0], p2 + [8, 0, 0], 0.6), rod(p1 + [8, 0, 0], p2 + [-8, 0, 0], 0.6)]
    _add(anat, parts, ulna.segment)
    return {"site": "ulna", "wires": 4}
