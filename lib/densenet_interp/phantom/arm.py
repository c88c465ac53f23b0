"""The phantom upper limb from shoulder to fingertips: one consistent 3-D body per patient.

Every body part of MURA is a camera on this one limb (``views.py``): a finger radiograph zooms on a ray of the
hand, an elbow radiograph on the joint of humerus, radius and ulna, a shoulder radiograph on the humeral head
with glenoid, acromion, clavicle and ribs. World frame: origin at the elbow joint, +y distal along the forearm,
+x radial, +z dorsal (see ``anatomy.py``). Segments (``lower``, ``arm``, ``girdle``) are what a camera may pose:
a lateral elbow view bends the forearm, a lateral humerus view turns the arm about its axis.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Anatomy, Bone, Joint, Tissue
from .bones import END_CORE, flare
from .hand import add_hand, jitter
from .solids import ball, perpendicular_frame, rod, rotation

FOREARM_LENGTH = 245.0  # radius length in mm
HUMERUS_LENGTH = 310.0
_Y = np.array([0, 1.0, 0])


def build_limb(rng: np.random.Generator, variation: float) -> Anatomy:
    """A new random adult upper limb (bones, joints, soft tissue, landmarks) in the world frame."""
    anat = Anatomy()
    lf = FOREARM_LENGTH * jitter(rng, variation, 0.06)
    lh = HUMERUS_LENGTH * jitter(rng, variation, 0.06)
    _add_forearm(anat, rng, variation, lf)
    add_hand(anat, rng, variation, np.array([0.0, lf, 0.0]))
    _add_humerus(anat, rng, variation, lh)
    _add_girdle(anat, rng, variation, anat.landmark("head"))
    return anat


def _add_forearm(anat: Anatomy, rng, variation: float, lf: float) -> None:
    """Radius (lateral, flaring distal end) and ulna (medial, olecranon proximally), forearm soft tissue."""
    w = jitter(rng, variation, 0.06)
    bow = variation * rng.normal(0, 1.5)
    frame = np.eye(3)
    radius = Bone("radius", [], (np.array([12.0, 6.0, 0]), np.array([9.0, lf - 1.0, 0])), 7.0 * w, "radius")
    radius.parts = [
        ball((12.0, 11.0, 0), np.array([10.5, 4.8, 10.5]) * w, core=0.8),  # radial head (a rounded disc)
        rod((12.0, 13.0, 0), (12.5, 32.0, 0), 6.6 * w, 0.95, core=0.55),  # neck
        ball((8.5, 38.0, -3.0), np.array([4.5, 7.0, 5.0]) * w, core=0.7),  # radial tuberosity
        rod((12.5, 30.0, 0), (15.5 + bow, 0.5 * lf, 1.0), 6.6 * w, 0.85, core=0.52),
        rod((15.5 + bow, 0.5 * lf, 1.0), (11.0, lf - 30.0, 0), 7.2 * w, 0.8, core=0.52),
        flare(
            (10.0, lf - 1.5, 0), -_Y, frame, 16.0 * w, 7.2 * w, 38.0, 0.6, tilt=(-0.33, 1.0, 0)
        ),  # distal end
        ball((24.0 * w, lf - 5.0, 0), np.array([3.8, 6.5, 4.5]) * w, core=0.7),  # radial styloid
    ]
    ulna = Bone("ulna", [], (np.array([-4.0, -24.0, -14.0]), np.array([-13.0, lf - 3.0, 0])), 6.0 * w, "ulna")
    ulna.parts = [
        ball((-4.0, -10.0, -16.0), np.array([10.0, 15.0, 8.5]) * w, core=0.8),  # olecranon
        ball((-4.0, 7.0, 6.0), np.array([8.5, 6.0, 7.5]) * w, core=0.8),  # coronoid process
        flare((-5.0, -2.0, -4.0), _Y, frame, 10.0 * w, 7.0 * w, 25.0, 0.9),
        rod((-4.0, 12.0, -3.0), (-8.0, 80.0, 0), 7.0 * w, 0.9, core=0.5),
        rod((-8.0, 78.0, 0), (-13.0, lf - 12.0, 0), 5.4 * w, 0.9, core=0.5),
        flare((-13.0, lf - 8.0, 0), -_Y, frame, 7.0 * w, 5.4 * w, 14.0, 0.95),
        ball((-13.0, lf - 8.5, 0), np.array([7.2, 6.0, 7.0]) * w, core=END_CORE),  # ulnar head
        ball((-18.5 * w, lf - 5.5, -1.0), np.array([2.6, 4.5, 2.6]) * w, core=0.6),  # ulnar styloid
    ]
    anat.bones += [radius, ulna]
    anat.soft += [  # long ellipsoids taper naturally towards the wrist
        Tissue(ball((0, 0.42 * lf, -2.0), np.array([41.0, 0.75 * lf, 34.0]) * w)),
        Tissue(ball((0, 0.85 * lf, 0), np.array([31.0, 0.3 * lf, 21.0]) * w)),
        Tissue(ball((0, 0.0, -6.0), np.array([42.0, 60.0, 40.0]) * w)),
    ]
    joints = [
        Joint("radiocarpal", "radius", "scaphoid", np.array([7.0, lf + 1.0, 0]), _Y, 2.0, 14.0),
        Joint(
            "distal_radioulnar",
            "radius",
            "ulna",
            np.array([-7.0, lf - 8.0, 0]),
            np.array([-1.0, 0, 0]),
            2.0,
            6.0,
        ),
        Joint("elbow.radiocapitellar", "humerus", "radius", np.array([12.0, 5.0, 0]), _Y, 2.0, 10.0),
        Joint("elbow.ulnohumeral", "humerus", "ulna", np.array([-6.0, 2.0, 0]), _Y, 2.0, 12.0),
    ]
    anat.joints.update({j.name: j for j in joints})
    anat.set_landmark("forearm", (1.0, 0.5 * lf, 0))
    anat.set_landmark("elbow", (0.0, -8.0, 0))


def _add_humerus(anat: Anatomy, rng, variation: float, lh: float) -> None:
    """Humerus from the elbow (condyles, epicondyles, fossa) to the head and greater tuberosity."""
    w = jitter(rng, variation, 0.06)
    head_c = np.array([-12.0, -lh + 24.0, -4.0])
    frame = np.eye(3)
    axis = (np.array([-3.0, -lh, 0]), np.array([0.0, -2.0, 0]))
    humerus = Bone("humerus", [], axis, 11.0 * w, "humerus", 0, "arm")
    humerus.parts = [
        ball((12.0, -5.0, 3.0), 9.0 * w, core=END_CORE),  # capitellum
        ball((-6.0, -7.0, 0), np.array([12.0, 10.0, 11.0]) * w, core=END_CORE),  # trochlea
        ball((-25.0 * w, -18.0, -2.0), np.array([6.5, 8.0, 7.0]) * w, core=0.75),  # medial epicondyle
        ball((21.0 * w, -15.0, 0), np.array([5.0, 7.0, 6.0]) * w, core=0.75),  # lateral epicondyle
        # flat, wide distal metaphysis: thin in depth, so the olecranon fossa region stays lucent
        flare((-2.0, -14.0, -1.0), -_Y, frame, 27.0 * w, 10.0 * w, 45.0, 0.42),
        rod((-3.0, -40.0, -1.0), (-3.0, -0.6 * lh, 0), 10.0 * w, 0.95, core=0.6),
        rod((-3.0, -0.55 * lh, 0), (-5.0, -lh + 65.0, 0), 11.0 * w, 0.95, core=0.6),
        flare((-6.0, -lh + 26.0, -2.0), _Y, frame, 21.0 * w, 11.5 * w, 50.0, 0.95),  # neck, tuberosities
        ball(head_c, 23.5 * w, core=0.88),  # head
        ball(
            (8.0 * w, -lh + 30.0, 2.0), np.array([11.0, 15.0, 12.0]) * w, core=END_CORE
        ),  # greater tuberosity
    ]
    anat.bones.append(humerus)
    anat.soft += [
        Tissue(ball((-3.0, -0.5 * lh, -4.0), np.array([43.0, 0.62 * lh, 41.0]) * w), "humerus", 0, "arm"),
        Tissue(
            ball(head_c + np.array([6.0, 14.0, 0]), np.array([46.0, 62.0, 46.0]) * w), "humerus", 0, "arm"
        ),
    ]
    anat.set_landmark("head", head_c, "arm")
    anat.set_landmark("humerus", (-3.0, -0.5 * lh, 0), "arm")
    anat.set_landmark("shoulder", head_c + np.array([-22.0, 8.0, 0]), "girdle")


def _add_girdle(anat: Anatomy, rng, variation: float, head: np.ndarray) -> None:
    """Glenoid and scapula, acromion and spine, coracoid, clavicle, ribs, thorax soft tissue and lung air."""
    h = np.asarray(head, float)
    w = jitter(rng, variation, 0.05)

    def at(x, y, z):
        return h + w * np.array([x, y, z], float)

    tilt = rotation("y", -35.0 + variation * rng.normal(0, 4))  # the scapular plane faces forward and out
    scap = Bone("scapula", [], (at(-35, 0, 0), at(-110, 120, -40)), 5.0, "scapula", 0, "girdle")
    scap.parts = [
        ball(at(-30.5, 2, 2), w * np.array([4.5, 18.0, 12.5]), core=0.6),  # glenoid rim
        ball(at(-42, 10, -4), w * np.array([10.0, 17.0, 12.0]), core=0.75),  # scapular neck
        ball(at(-88, 58, -30), w * np.array([46.0, 72.0, 5.0]), tilt, core=0.4),  # blade
        rod(at(-38, 18, -8), at(-78, 125, -34), 5.5 * w, core=0.5),  # lateral border
        rod(at(-125, -8, -50), at(-20, -37, -18), 5.5 * w, 0.8, core=0.5),  # spine
        ball(at(2, -39, -8), w * np.array([22.0, 7.0, 16.0]), core=0.75),  # acromion
        rod(at(-36, -16, 8), at(-20, -22, 32), 5.5 * w, core=0.65),  # coracoid
    ]
    clav = Bone("clavicle", [], (at(-160, -34, 25), at(-4, -44, 8)), 7.5, "clavicle", 0, "girdle")
    clav.parts = [
        ball(at(-4, -44, 8), w * np.array([8.0, 6.0, 8.0]), core=0.7),
        rod(at(-4, -44, 8), at(-62, -48, 22), 7.0 * w, 0.9, core=0.55),
        rod(at(-62, -48, 22), at(-160, -36, 25), 8.0 * w, 0.95, core=0.55),
    ]
    anat.bones += [scap, clav]
    for i in range(6):  # ribs: level at the back, falling steeply towards the front (fainter there)
        y0 = 20.0 + 32.0 * i
        back = np.deg2rad(np.linspace(-120, 0, 6))
        front = np.deg2rad(np.linspace(22, 110, 5))
        pts = [at(-178 + 110 * np.cos(p), y0 + 8 * np.sin(p), 95 * np.sin(p)) for p in back]
        pts += [at(-178 + 110 * np.cos(p), y0 + 60 * np.sin(p), 95 * np.sin(p)) for p in front]
        rib = Bone(f"rib{i + 1}", [], (pts[0], pts[-1]), 4.5, f"rib{i + 1}", 0, "girdle", density=0.55)
        rib.parts = [rod(p, q, 4.4 * w, 0.7, core=0.6) for p, q in zip(pts[:-1], pts[1:], strict=True)]
        rib.parts += [
            ball(p, 4.4 * w * np.array([1, 1, 0.7]), perpendicular_frame(q - p), core=0.6)
            for p, q in zip(pts[1:-1], pts[2:], strict=True)
        ]
        anat.bones.append(rib)
    anat.soft.append(
        Tissue(ball(at(-178, 110, 0), w * np.array([128.0, 230.0, 104.0])), "thorax", 0, "girdle")
    )
    anat.lung.append(ball(at(-183, 120, 0), w * np.array([98.0, 185.0, 80.0])))
    anat.joints["glenohumeral"] = Joint(
        "glenohumeral", "scapula", "humerus", at(-27, 2, 0), np.array([1.0, 0, 0]), 3.0, 16.0
    )
    anat.joints["acromioclavicular"] = Joint(
        "acromioclavicular", "scapula", "clavicle", at(-8, -42, 4), np.array([-1.0, 0, 0]), 3.0, 7.0
    )
