"""The paper's named cases as phantom radiographs: the images behind Figures 1 and 4-11, on demand.

Each case is a one-image study with its choices pinned (body part, view, abnormality and site, legend,
frame, polarity); everything else (the patient's limb, exact positioning, noise) still comes from the seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserFacingError
from ..paths import atomic_path, write_text_atomic
from .radiograph import StudyRequest, render_study


@dataclass(frozen=True)
class CaseSpec:
    """The pinned choices of one named case (fields of :class:`StudyRequest` named ``force_*``)."""

    description: str
    part: str
    kind: str
    view: str
    site: str | None = None
    ray: str | None = None
    magnitude: float = 3.0  # as DifficultyKnobs.lesion_scale: a typical lesion of the dataset
    options: dict = field(default_factory=dict)  # further force_* fields: text legend, marker, frame, ...


_NO_EXTRAS = {
    "force_text_legend": False,
    "force_marker": True,
    "force_frame": "none",
    "force_inverted": False,
}

CASE_SPECS: dict[str, CaseSpec] = {
    "wrist_normal": CaseSpec(
        "Fig. 1a: a normal wrist, posterior-anterior view", "XR_WRIST", "normal", "PA", options=_NO_EXTRAS
    ),
    "wrist_foreign_object": CaseSpec(
        "Fig. 1b: foreign objects (metal fragments) at the wrist, lateral view",
        "XR_WRIST",
        "hardware",
        "LAT",
        site="foreign_body:wrist",
        options=_NO_EXTRAS,
    ),
    "thumb_nails": CaseSpec(
        "Figs. 1c and 9: nails (Kirschner wires) implanted in a thumb",
        "XR_FINGER",
        "hardware",
        "PA",
        site="kwires:ray1.proximal",
        ray="ray1",
        options=_NO_EXTRAS,
    ),
    "wrist_fracture": CaseSpec(
        "Figs. 1d and 4: a displaced fracture of the distal radius",
        "XR_WRIST",
        "fracture",
        "PA",
        site="radius",
        magnitude=2.6,
        options=_NO_EXTRAS,
    ),
    "wrist_degenerative": CaseSpec(
        "Fig. 1e: a degenerated wrist joint (narrowed radiocarpal space, osteophytes)",
        "XR_WRIST",
        "degenerative",
        "PA",
        site="radiocarpal",
        magnitude=3.0,
        options=_NO_EXTRAS,
    ),
    "finger_degenerative": CaseSpec(
        "Fig. 1f: a degenerated finger joint (narrowed proximal interphalangeal joint, osteophytes)",
        "XR_FINGER",
        "degenerative",
        "PA",
        site="ray3.pip",
        ray="ray3",
        magnitude=3.2,
        options=_NO_EXTRAS,
    ),
    "wrist_screw_legend": CaseSpec(
        "Figs. 5, 7, 8: screw fixation (plate and screws) of the distal radius with a prominent text legend",
        "XR_WRIST",
        "hardware",
        "PA",
        site="plate:radius",
        options={
            "force_text_legend": True,
            "force_marker": True,
            "force_frame": "none",
            "force_inverted": False,
        },
    ),
    "wrist_degenerative_scaphoid": CaseSpec(
        "Fig. 6: a shifted scaphoid at the wrist joint (subtle degenerative change)",
        "XR_WRIST",
        "degenerative",
        "PA",
        site="scaphoid_shift",
        magnitude=1.5,  # subtle, as drawn in the dataset at its default scale
        options=_NO_EXTRAS,
    ),
    "fingertip_misaligned_frame": CaseSpec(
        "Figs. 10 and 11: a misaligned fingertip inside a rectangular frame (Fig. 11 crops the frame away)",
        "XR_FINGER",
        "misalignment",
        "PA",
        site="ray3.dip",
        ray="ray3",
        magnitude=2.4,
        options={
            "force_text_legend": False,
            "force_marker": True,
            "force_frame": "border",
            "force_inverted": False,
        },
    ),
}

CASES: dict[str, str] = {name: spec.description for name, spec in CASE_SPECS.items()}
FIGURE1_CASES = (
    "wrist_normal",
    "wrist_foreign_object",
    "thumb_nails",
    "wrist_fracture",
    "wrist_degenerative",
    "finger_degenerative",
)


def render_case(name: str, long_side: int = 512, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Render the named case: ``(uint8 image (h, w), annotation dict)``; see :data:`CASES` for names."""
    if name not in CASE_SPECS:
        raise UserFacingError(f"unknown case {name!r}; expected one of {', '.join(CASE_SPECS)}")
    spec = CASE_SPECS[name]
    req = StudyRequest(
        part=spec.part,
        label=int(spec.kind != "normal"),
        n_images=1,
        entropy=(seed, 7_777, list(CASE_SPECS).index(name)),
        long_side=long_side,
        force_kind=spec.kind,
        force_site=spec.site,
        force_ray=spec.ray,
        force_magnitude=spec.magnitude if spec.kind != "normal" else None,
        force_views=(spec.view,),
        **spec.options,
    )
    img, ann = render_study(req)[0]
    return img, {**ann, "case": name, "description": spec.description}


def write_cases(out_dir: str | Path, long_side: int = 512, seed: int = 0) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.json`` (its annotation) for every named case; return the PNG paths."""
    from .dataset import check_long_side

    check_long_side(long_side)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CASE_SPECS:
        img, ann = render_case(name, long_side=long_side, seed=seed)
        with atomic_path(out / f"{name}.png") as tmp:
            Image.fromarray(img).save(tmp, format="PNG", compress_level=6)
        write_text_atomic(out / f"{name}.json", json.dumps(ann, indent=1) + "\n")
        written.append(out / f"{name}.png")
    return written
