"""The 3-D phantom of one patient's upper limb: bones, joints, soft tissue and metal, and how to move them.

An :class:`Anatomy` is plain data in the world frame (millimetres): origin at the elbow joint, +y distal along
the forearm (towards the fingertips), +x radial (thumb side), +z dorsal. Builders live in ``hand.py`` and
``arm.py``; abnormalities (``lesions.py``, ``hardware.py``) edit a copy; ``views.py`` poses and projects it.

Bones are unions of solids (a shaft rod and two end balls, say) with a dense cortical shell and light marrow;
bones of one finger ray or limb segment share a ``chain`` and are ordered proximal to distal by ``order`` so
that a lesion can move "everything distal to this joint" at once (a subluxated fingertip, a narrowed joint).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .solids import Solid

# "lower": forearm and hand (flexes at the elbow); "arm": humerus (turns about its axis for a lateral view);
# "girdle": scapula, clavicle, ribs, thorax (moves only when the whole patient turns)
SEGMENTS = ("lower", "arm", "girdle")


@dataclass
class Bone:
    """One bone (or fragment): a max-union of solids; ``axis`` runs proximal to distal along the shaft."""

    name: str
    parts: list[Solid]
    axis: tuple[np.ndarray, np.ndarray]
    radius: float  # shaft radius in mm: sets fracture gaps, screw lengths, lesion regions
    chain: str = ""
    order: int = 0
    segment: str = "lower"  # one of SEGMENTS: what moves together when the camera poses the limb
    density: float = 1.0  # multiplies cortical and marrow attenuation (sclerosis, osteophytes)

    def moved(self, rot: np.ndarray, pivot: np.ndarray, shift: np.ndarray | None = None) -> Bone:
        """The bone after a rigid motion: rotation ``rot`` about ``pivot``, then translation ``shift``."""
        shift = np.zeros(3) if shift is None else np.asarray(shift, float)
        parts = [p.moved(rot, pivot, shift) for p in self.parts]
        axis = tuple(rot @ (a - pivot) + pivot + shift for a in self.axis)
        return Bone(self.name, parts, axis, self.radius, self.chain, self.order, self.segment, self.density)

    def point(self, fraction: float) -> np.ndarray:
        """The point at ``fraction`` (0 proximal, 1 distal) along the bone's axis."""
        return self.axis[0] + fraction * (self.axis[1] - self.axis[0])

    @property
    def direction(self) -> np.ndarray:
        d = self.axis[1] - self.axis[0]
        return d / np.linalg.norm(d)

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.axis[1] - self.axis[0]))


@dataclass
class Tissue:
    """A soft-tissue solid; follows its ``chain`` from ``order`` on when a lesion moves a ray."""

    solid: Solid
    chain: str = ""
    order: int = 0
    segment: str = "lower"


@dataclass
class Joint:
    """A joint between the distal end of ``proximal`` and the base of ``distal`` (bone names)."""

    name: str
    proximal: str
    distal: str
    center: np.ndarray
    direction: np.ndarray  # unit vector across the joint space, proximal to distal
    width: float  # joint space in mm
    radius: float  # half the width of the articular surface in mm


@dataclass
class Anatomy:
    """Everything that attenuates X-rays in one phantom limb, plus named landmarks for the cameras."""

    bones: list[Bone] = field(default_factory=list)
    soft: list[Tissue] = field(default_factory=list)
    lung: list[Solid] = field(default_factory=list)  # air inside the thorax (girdle): lowers attenuation
    metal: list[tuple[Solid, str]] = field(default_factory=list)  # (solid, segment)
    # lesion regions: not rendered, their projected outlines are the ground-truth lesion polygons
    marks: list[tuple[Solid, str]] = field(default_factory=list)  # (solid, segment)
    joints: dict[str, Joint] = field(default_factory=dict)
    landmarks: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)  # name -> (point, segment)

    def landmark(self, name: str) -> np.ndarray:
        return self.landmarks[name][0]

    def set_landmark(self, name: str, point, segment: str = "lower") -> None:
        self.landmarks[name] = (np.asarray(point, float), segment)

    def copy(self) -> Anatomy:
        """An independent copy (solids are immutable, so lists are copied and bones re-wrapped)."""
        return Anatomy(
            bones=[replace(b, parts=list(b.parts)) for b in self.bones],
            soft=list(self.soft),
            lung=list(self.lung),
            metal=list(self.metal),
            marks=list(self.marks),
            joints=dict(self.joints),
            landmarks=dict(self.landmarks),
        )

    def bone(self, name: str) -> Bone:
        for b in self.bones:
            if b.name == name:
                return b
        raise KeyError(f"no bone named {name!r}; have {', '.join(b.name for b in self.bones)}")

    def replace_bone(self, name: str, *new: Bone) -> None:
        """Swap the named bone for ``new`` (fragments, a moved copy, or nothing to remove it)."""
        i = next(i for i, b in enumerate(self.bones) if b.name == name)
        self.bones[i : i + 1] = list(new)

    def move_chain(
        self, chain: str, from_order: int, rot: np.ndarray, pivot: np.ndarray, shift: np.ndarray | None = None
    ) -> None:
        """Rigidly move every bone and soft-tissue piece of ``chain`` with ``order >= from_order``."""
        shift = np.zeros(3) if shift is None else np.asarray(shift, float)
        self.bones = [
            b.moved(rot, pivot, shift) if b.chain == chain and b.order >= from_order else b
            for b in self.bones
        ]
        self.soft = [
            Tissue(t.solid.moved(rot, pivot, shift), t.chain, t.order, t.segment)
            if t.chain == chain and t.order >= from_order
            else t
            for t in self.soft
        ]

    def mapped(self, linear: np.ndarray, shift: np.ndarray, segments: tuple[str, ...] = SEGMENTS) -> Anatomy:
        """A copy with every solid of ``segments`` mapped by ``p -> linear @ p + shift``; others unchanged."""
        return self.transformed({seg: (linear, shift) for seg in segments})

    def transformed(self, maps: dict[str, tuple[np.ndarray, np.ndarray]]) -> Anatomy:
        """A copy with each segment's solids mapped by its ``(linear, shift)``; segments not in ``maps`` stay.

        Joints describe the unposed phantom (for lesions), so the copy has none.
        """

        def move(solid: Solid, seg: str) -> Solid:
            return solid.mapped(*maps[seg]) if seg in maps else solid

        def point(p: np.ndarray, seg: str) -> np.ndarray:
            return maps[seg][0] @ p + maps[seg][1] if seg in maps else p

        out = Anatomy()
        for b in self.bones:
            if b.segment in maps:
                parts = [move(p, b.segment) for p in b.parts]
                b = Bone(
                    b.name,
                    parts,
                    tuple(point(a, b.segment) for a in b.axis),
                    b.radius,
                    b.chain,
                    b.order,
                    b.segment,
                    b.density,
                )
            out.bones.append(b)
        out.soft = [Tissue(move(t.solid, t.segment), t.chain, t.order, t.segment) for t in self.soft]
        out.lung = [move(s, "girdle") for s in self.lung]
        out.metal = [(move(s, seg), seg) for s, seg in self.metal]
        out.marks = [(move(s, seg), seg) for s, seg in self.marks]
        out.landmarks = {k: (point(v, seg), seg) for k, (v, seg) in self.landmarks.items()}
        return out
