"""The "what this run shows" paragraph of a case figure: a run's prediction and maps against the ground truth.

:func:`describe_run` (notebook ``40_case_figure``) compares one explained case image with its label and with
what the paper reports for that figure (:class:`~densenet_interp.explain.cases.Case`), and, on the phantom,
measures where the CAM and each stage's top maps concentrate: the ground-truth regions are moved as the image
was (:func:`~densenet_interp.explain.cases.aligned_masks`) and each map's
:func:`~densenet_interp.evaluate.measures.enrichment` per region is tabulated (1 = no preference).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..explain.cases import Case, aligned_masks
from ..explain.engine import STAGES
from ..explain.maps import top_channels
from ..models.inference import is_abnormal, verdict
from ..phantom.masks import REGIONS
from .measures import enrichment, evidence_mass


def _attention(maps: np.ndarray, size: int) -> np.ndarray:
    """A stage's top maps ``(h, w, k)`` as one non-negative map ``(S, S)``: each map scaled 0..1, averaged."""
    low = maps.min(axis=(0, 1), keepdims=True)
    span = np.maximum(maps.max(axis=(0, 1), keepdims=True) - low, 1e-12)
    mean = ((maps - low) / span).mean(axis=2).astype(np.float32)
    return np.asarray(Image.fromarray(mean, mode="F").resize((size, size), Image.Resampling.BILINEAR))


def describe_run(
    case: Case,
    explanation,
    index: int,
    annotation: dict | None,
    *,
    augmented_seed: int | None = None,
    image_size: int | None = None,
    crop_box: tuple[int, int, int, int] | None = None,
    image_shape: tuple[int, int] | None = None,
    top_k: int = 16,
    rank: str = "distinct",
) -> str:
    """Markdown: this run's prediction against the label and the paper, and where its maps concentrate.

    With a phantom ``annotation`` (ground truth) the CAM's positive part and each stage's top-``k`` maps are
    compared with the regions (lesion, legend, frame, anatomy, background) aligned by
    :func:`~densenet_interp.explain.cases.aligned_masks`: each map's
    :func:`~densenet_interp.evaluate.measures.enrichment` per region (its share inside the region over the
    region's area share). ``image_shape`` is the rendered image's ``(H, W)`` (default: the annotation's
    ``shape``).
    """
    probability = float(explanation.probability[index])
    label = annotation.get("label", case.label) if annotation else case.label
    outcome = {
        (1, 1): "true positive",
        (0, 1): "false negative",
        (1, 0): "false positive",
        (0, 0): "true negative",
    }
    predicted = int(is_abnormal(probability))
    lines = [
        f"**This run:** predicted {verdict(probability)} (p = {probability:.3f}); label {verdict(label)} "
        f"→ {outcome[(predicted, int(label))]}.",
        f"**The paper:** {'predicted ' + case.paper_prediction if case.paper_prediction else 'prediction not stated'}"
        f"; its CAM pointed at {('the ' + case.paper_cam_focus) if case.paper_cam_focus else 'no named region'}.",
    ]
    if not annotation:
        lines.append("No ground-truth masks (real MURA): compare the panels with the paper's caption by eye.")
        return "\n\n".join(lines)
    size = image_size or explanation.inputs.shape[1]
    shape = image_shape or tuple(annotation["shape"])
    masks = aligned_masks(case, annotation, shape, size, augmented_seed=augmented_seed, crop_box=crop_box)
    cam = evidence_mass(explanation.cam[index], "positive")
    rows = {"CAM (positive part)": enrichment(cam, masks)}
    for stage in STAGES:
        _, maps = top_channels(explanation.stages[stage][index], top_k, rank)  # the maps the figure shows
        rows[f"{stage} (top {top_k}, {rank})"] = enrichment(_attention(np.moveaxis(maps, 0, -1), size), masks)
    regions = list(masks)
    table = ["| map | " + " | ".join(regions) + " |", "|---" * (len(regions) + 1) + "|"]
    for name, values in rows.items():
        table.append(
            f"| {name} | " + " | ".join(f"{values.get(r, float('nan')):.2f}" for r in regions) + " |"
        )
    peak = np.unravel_index(int(np.argmax(explanation.cam[index])), cam.shape)
    peak_regions = [name for name in REGIONS if name in masks and masks[name][peak]] or ["background"]
    focus = case.paper_cam_focus
    if focus is None:
        comparison = "The paper names no region for its CAM here."
    elif focus not in masks:
        comparison = f"The paper's CAM pointed at the {focus}, but this image has no {focus} mask."
    else:
        agrees = focus in peak_regions
        comparison = (
            f"The paper's CAM pointed at the {focus}; here the CAM peak lies in the {', '.join(peak_regions)} "
            f"({'agrees' if agrees else 'differs'}), CAM enrichment on the {focus}: {rows['CAM (positive part)'][focus]:.2f}."
        )
    lines += [
        f"**CAM peak** in: {', '.join(peak_regions)}. {comparison}",
        "**Where the maps concentrate** (mean inside the region / mean over the image; > 1: the maps prefer it). "
        "Regions are the phantom's ground truth, cropped, resized and augmented like the image:",
        "\n".join(table),
    ]
    return "\n\n".join(lines)
