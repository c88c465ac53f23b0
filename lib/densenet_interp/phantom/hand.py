"""The phantom hand: eight carpal bones in two rows, five rays (metacarpal and phalanges), soft tissue.

Measurements are adult averages in millimetres (hand-local frame: origin at the middle of the radiocarpal
joint, +y distal, +x radial, +z dorsal), jittered per patient by ``variation``. Ray 1 is the thumb (two
phalanges, angled radially and towards the palm); rays 2-5 are the fingers, fanning slightly. Each ray is a
chain (``ray1`` ... ``ray5``) ordered metacarpal 0, proximal 1, middle 2, distal 3 so that lesions can
move a finger tip or narrow a joint by moving the rest of the chain.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Anatomy, Joint, Tissue
from .bones import long_bone, round_bone
from .solids import ball, rod

# carpal: (centre x, centre y, centre z, radii x, y, z, in-plane tilt in degrees)
CARPALS = {
    "scaphoid": (12.5, 8.5, 1.0, 5.8, 10.0, 6.0, -38.0),
    "lunate": (0.5, 8.0, 0.0, 7.5, 6.5, 7.5, 0.0),
    "triquetrum": (-10.5, 11.0, -1.0, 6.0, 5.5, 6.0, 20.0),
    "pisiform": (-11.5, 10.5, -9.0, 4.0, 4.5, 4.0, 0.0),
    "trapezium": (20.5, 23.0, -1.0, 7.0, 6.0, 7.0, -25.0),
    "trapezoid": (10.5, 25.0, 0.0, 5.0, 5.8, 6.0, 0.0),
    "capitate": (0.0, 23.0, 0.0, 6.5, 9.8, 8.0, 0.0),
    "hamate": (-10.0, 22.0, 0.0, 6.5, 8.0, 7.5, 10.0),
}

# ray: (base x, base y, base z, metacarpal angle (deg, + radial), phalanx spread (deg), metacarpal length,
#       phalanx lengths, width scale)
RAYS = {
    "ray1": (23.5, 29.0, -3.0, 38.0, 6.0, 44.0, (31.0, 23.0), 1.12),
    "ray2": (10.0, 33.0, 0.0, 5.0, 3.0, 66.0, (40.0, 23.0, 17.0), 1.0),
    "ray3": (0.5, 35.0, 0.0, 0.0, 0.0, 63.0, (44.0, 27.0, 19.0), 1.03),
    "ray4": (-8.5, 33.5, 0.0, -5.5, -3.5, 57.0, (41.0, 25.0, 18.0), 0.96),
    "ray5": (-16.5, 31.0, 0.0, -12.0, -7.0, 52.0, (32.0, 18.0, 16.0), 0.88),
}

# (shaft, base, head) radii of metacarpal, proximal, middle, distal bones at width scale 1
_RADII = ((3.6, 5.0, 5.2), (3.0, 4.6, 3.9), (2.6, 3.8, 3.2), (2.0, 3.3, 2.6))
_PHALANX_NAMES = ("proximal", "middle", "distal")
JOINT_GAP = 1.6  # mm of joint space between neighbouring bones of a ray


def jitter(rng: np.random.Generator, variation: float, sd: float) -> float:
    """A multiplicative jitter around 1 (sd scaled by the anatomy-variation knob, clipped at 3 sd)."""
    return 1.0 + variation * sd * float(np.clip(rng.normal(), -3, 3))


def add_hand(anat: Anatomy, rng: np.random.Generator, variation: float, origin: np.ndarray) -> None:
    """Add carpals, rays, joints and hand soft tissue to ``anat``; hand-local (0, 0, 0) sits at ``origin``."""
    size = jitter(rng, variation, 0.06)
    o = np.asarray(origin, float)

    for name, (x, y, z, rx, ry, rz, tilt) in CARPALS.items():
        c = o + size * np.array([x, y, z]) + variation * rng.normal(0, 0.4, 3)
        radii = size * np.array([rx, ry, rz]) * jitter(rng, variation, 0.05)
        anat.bones.append(round_bone(name, c, radii, tilt + variation * rng.normal(0, 4), chain="carpus"))
    hook = anat.bone("hamate").parts[0].center + size * np.array([1.5, 1.0, -8.0])
    anat.bones[-1].parts.append(ball(hook, size * np.array([2.5, 3.5, 3.0]), core=0.7))

    spread = variation * rng.normal(0, 2.0)  # how far the fingers are fanned out
    for ray, (bx, by, bz, angle, fan, mc_len, phal, width) in RAYS.items():
        _add_ray(anat, rng, variation, o, size, ray, (bx, by, bz), angle, fan + spread, mc_len, phal, width)

    anat.set_landmark("wrist", o + size * np.array([3.0, 14.0, 0.0]))
    anat.set_landmark("hand", o + size * np.array([2.0, 62.0, 0.0]))
    _add_palm(anat, o, size)


def _add_ray(anat, rng, variation, o, size, ray, base, angle, fan, mc_len, phal, width) -> None:
    """One metacarpal and its phalanges along a fanning, slightly jittered line; soft tissue around them."""
    thumb = ray == "ray1"
    a = np.deg2rad(angle + variation * rng.normal(0, 2.0))
    direction = np.array([np.sin(a), np.cos(a), -0.35 if thumb else 0.0])
    direction /= np.linalg.norm(direction)
    start = o + size * np.asarray(base, float)
    lengths = [mc_len, *phal]
    names = ["metacarpal", *(_PHALANX_NAMES if not thumb else ("proximal", "distal"))]
    radii = _RADII if not thumb else (_RADII[0], _RADII[1], _RADII[3])
    finger_r = (8.8 if not thumb else 10.0) * size * width
    for order, (name, length, (rs, rb, rh)) in enumerate(zip(names, lengths, radii, strict=True)):
        length = size * length * jitter(rng, variation, 0.04)
        w = size * width * jitter(rng, variation, 0.04)
        end = start + direction * length
        bone_name = f"{ray}.{name}"
        anat.bones.append(long_bone(bone_name, start, end, rs * w, rb * w, rh * w, chain=ray, order=order))
        if order or thumb:  # finger soft tissue: a chain of capsules of slowly shrinking radius
            soft_r = finger_r * (1.0 - 0.06 * order) + (6.0 if not order else 0.0)
            depth = 0.85 if order else 0.8
            anat.soft.append(Tissue(rod(start, end, soft_r, depth), ray, order))
            anat.soft.append(Tissue(ball(end, (soft_r, soft_r, soft_r * depth)), ray, order))
            if order == 1:
                anat.soft.append(Tissue(ball(start, (soft_r, soft_r, soft_r * depth)), ray, order))
        if order:
            prev = anat.bones[-2]
            joint_name = (
                f"{ray}.{('mcp', 'pip', 'dip')[order - 1] if not thumb else ('mcp', 'ip')[order - 1]}"
            )
            center = start - direction * JOINT_GAP / 2
            anat.joints[joint_name] = Joint(
                joint_name, prev.name, bone_name, center, direction, JOINT_GAP, rb * w
            )
        start = end + direction * JOINT_GAP
        if order >= 1:  # fingers fan out a little more at each joint
            a2 = np.deg2rad(fan / 3 + variation * rng.normal(0, 1.5))
            direction = np.array(
                [
                    direction[0] * np.cos(a2) + direction[1] * np.sin(a2),
                    -direction[0] * np.sin(a2) + direction[1] * np.cos(a2),
                    direction[2],
                ]
            )
        elif not thumb:
            start = start + direction * 0.5
    if thumb:
        cmc = anat.bone("ray1.metacarpal").axis[0]
        anat.joints["ray1.cmc"] = Joint(
            "ray1.cmc", "trapezium", "ray1.metacarpal", cmc, direction, JOINT_GAP, 5.0
        )


def _add_palm(anat: Anatomy, o: np.ndarray, size: float) -> None:
    """Palm, thenar eminence and wrist: flat ellipsoids around the metacarpals and carpals."""
    s = size
    anat.soft.append(Tissue(ball(o + s * np.array([0, 50.0, -2.0]), s * np.array([39.0, 50.0, 15.0]))))
    anat.soft.append(Tissue(ball(o + s * np.array([-2.0, 78.0, -2.0]), s * np.array([40.0, 20.0, 14.0]))))
    anat.soft.append(Tissue(ball(o + s * np.array([19.0, 40.0, -7.0]), s * np.array([17.0, 27.0, 15.0]))))
    anat.soft.append(Tissue(ball(o + s * np.array([0, 12.0, -1.0]), s * np.array([33.0, 26.0, 19.0]))))
