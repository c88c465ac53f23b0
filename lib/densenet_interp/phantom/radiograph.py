"""One study, rendered: a patient's limb, its abnormality, several views, confounders and annotations.

:func:`render_study` is the single place where a study's random choices are made, in a fixed order from one
:class:`numpy.random.SeedSequence` (so the result depends only on the study's entropy, never on which worker
renders it). All images of a study show the same 3-D limb and the same lesion from different views; some
views of an abnormal study are rendered without the lesion (see ``knobs.DifficultyKnobs``).
Named cases (``cases.py``) use the same path with some choices forced through :class:`StudyRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arm import build_limb
from .confounders import Confounders, add_frame, burn_text
from .knobs import DifficultyKnobs, legend_probabilities
from .lesions import KIND_MIX, Lesion, apply_lesion
from .render import attenuation, blur_and_noise, expose, outlines
from .views import (
    FRAMING,
    finger_center,
    flexion,
    isolate_digit,
    make_camera,
    pose,
    posed_landmark,
    project,
    view_names,
)

RAYS = ("ray1", "ray2", "ray3", "ray4", "ray5")
RAY_WEIGHTS = (0.2, 0.22, 0.22, 0.18, 0.18)  # finger studies: thumb to little finger


@dataclass(frozen=True)
class StudyRequest:
    """What to render. ``label`` is the CSV label; the ``force_*`` fields pin choices for named cases."""

    part: str
    label: int
    n_images: int
    entropy: tuple[int, ...]
    long_side: int = 512
    knobs: DifficultyKnobs = field(default_factory=DifficultyKnobs)
    legend_correlation: float | None = None
    force_kind: str | None = None  # "normal" or an abnormality kind (skips label noise)
    force_site: str | None = None  # a site/subtype understood by lesions.apply_lesion
    force_ray: str | None = None
    force_magnitude: float | None = None
    force_views: tuple[str, ...] | None = None
    force_text_legend: bool | None = None
    force_marker: bool | None = None
    force_frame: str | None = None  # a frame style, or "none"
    force_inverted: bool | None = None
    force_side: str | None = None
    legend_scale: float = 1.0  # text legend size multiplier (named cases with a prominent legend)


def _probability(forced, rng: np.random.Generator, p: float) -> bool:
    """A forced flag, or a fresh Bernoulli draw (always drawn, so forcing never shifts later draws)."""
    draw = rng.random() < p
    return draw if forced is None else bool(forced)


def render_study(req: StudyRequest) -> list[tuple[np.ndarray, dict]]:
    """Render all images of one study: ``[(uint8 image (h, w), annotation dict), ...]`` in image order.

    The annotation holds the view, label, rendered kind, lesion/legend/frame/anatomy polygons (pixels of the
    saved image) and the study-level lesion description; the dataset adds paths and split.
    """
    seeds = np.random.SeedSequence(list(req.entropy)).spawn(req.n_images + 1)
    rng = np.random.default_rng(seeds[0])
    knobs = req.knobs

    label_noise = rng.random() < knobs.label_noise and req.force_kind is None
    abnormal = bool(req.label) != label_noise
    mix = KIND_MIX[req.part]
    kind_draw = str(rng.choice(list(mix), p=np.array(list(mix.values())) / sum(mix.values())))
    kind = req.force_kind or (kind_draw if abnormal else "normal")
    ray_draw = str(rng.choice(RAYS, p=RAY_WEIGHTS))
    ray = req.force_ray or ray_draw
    side_draw = "L" if rng.random() < 0.5 else "R"
    side = req.force_side or side_draw

    limb = build_limb(rng, knobs.anatomy_variation)
    subtle = kind not in ("normal", "hardware") and rng.random() < knobs.subtle_fraction
    magnitude = knobs.lesion_scale * (knobs.subtle_scale if subtle else 1.0) * rng.uniform(0.85, 1.15)
    if req.force_magnitude is not None:
        magnitude, subtle = req.force_magnitude, req.force_magnitude < 0.7
    lesion: Lesion | None = None
    lesioned = limb
    if kind != "normal":
        lesioned = limb.copy()
        lesion = apply_lesion(lesioned, req.part, kind, rng, magnitude, ray, req.force_site)

    views = list(req.force_views) if req.force_views else view_names(req.part, req.n_images)
    if len(views) != req.n_images:
        raise ValueError(f"{len(views)} forced views for a study of {req.n_images} images")
    p_hide = knobs.hardware_hidden_probability if kind == "hardware" else knobs.hidden_view_probability
    hidden = [rng.random() < p_hide for _ in views]
    if lesion is None or req.force_kind is not None:
        hidden = [False] * len(views)
    elif all(hidden):
        hidden[int(rng.integers(len(views)))] = False
    p_legend_abnormal, p_legend_normal = legend_probabilities(req.legend_correlation, knobs.legend_base_rate)
    p_legend = p_legend_abnormal if req.label else p_legend_normal

    study_info = {
        "body_part": req.part,
        "label": int(req.label),
        "kind": kind,
        "label_noise": bool(label_noise),
        "subtle": bool(subtle),
        "ray": ray if req.part in ("XR_FINGER", "XR_HAND") else None,
        "side": side,
        "lesion_info": lesion.to_dict() if lesion else None,
    }
    out = []
    for i, view in enumerate(views):
        image_rng = np.random.default_rng(seeds[i + 1])
        anat = lesioned if not hidden[i] else limb
        img, ann = _render_view(req, image_rng, anat, view, ray, side, p_legend)
        ann["lesion_visible"] = bool(ann["lesion"])
        out.append((img, {**study_info, "view": view, **ann}))
    return out


def _render_view(req: StudyRequest, rng, anat, view: str, ray: str, side: str, p_legend: float):
    """One image of the study: pose, camera, attenuation, exposure, frame, noise, text, polarity."""
    knobs = req.knobs
    if req.part == "XR_FINGER" and view != "PA":
        anat = isolate_digit(anat, ray)
    posture = pose(anat, req.part, view, flexion(req.part, view, rng))
    if req.part == "XR_FINGER":
        center = finger_center(anat, posture, ray)
    else:
        center = posed_landmark(anat, posture, FRAMING[req.part].landmark)
    cam = make_camera(req.part, view, rng, req.long_side, center, side == "L", knobs.anatomy_variation)
    seen = project(anat, posture, cam)
    h, w = cam.height, cam.width

    body, metal = attenuation(seen, h, w, cam.px_per_mm, cam.beam, rng)
    img = expose(body, metal, rng)
    lesion_polys = outlines([s for s, _ in seen.marks], h, w)
    anatomy_polys = outlines([t.solid for t in seen.soft], h, w, points=16, decimals=0)

    framed = _probability(
        None if req.force_frame is None else req.force_frame != "none", rng, knobs.frame_probability
    )
    conf = Confounders()
    if framed:
        keep = _bbox(lesion_polys, h, w)
        style = req.force_frame if req.force_frame not in (None, "none") else None
        img, conf = add_frame(img, rng, keep, style)
    img = blur_and_noise(img, rng, knobs.noise_level, req.long_side)
    text_legend = _probability(req.force_text_legend, rng, p_legend)
    marker = _probability(req.force_marker, rng, knobs.marker_probability)
    img = burn_text(img, rng, conf, view, side, text_legend, marker, req.legend_scale)
    inverted = _probability(req.force_inverted, rng, knobs.inverted_probability)
    if inverted:
        img = 1.0 - img
    pixels = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    ann = {
        "inverted": bool(inverted),
        "shape": [h, w],
        "text_legend": bool(text_legend),
        "lesion": lesion_polys,
        "legend": conf.legend,
        "legend_texts": conf.legend_texts,
        "legend_kinds": conf.legend_kinds,
        "frame": conf.frame,
        "frame_box": conf.frame_box,
        "frame_style": conf.frame_style,
        "anatomy": anatomy_polys,
    }
    return pixels, ann


def _bbox(polys: list, h: int, w: int) -> tuple[float, float, float, float] | None:
    """Bounding box of polygons clipped to the image, or None when there are none."""
    if not polys:
        return None
    pts = np.concatenate([np.asarray(p, float) for p in polys])
    x0, y0 = np.clip(pts.min(0), 0, [w, h])
    x1, y1 = np.clip(pts.max(0), 0, [w, h])
    return float(x0), float(y0), float(x1), float(y1)
