"""Are the explanations faithful? Every registered saliency method checked against CAM and against the model.

The paper explains its models with CAM only. Two questions it leaves open are answered here, for every method
of the registry :data:`densenet_interp.explain.methods.METHODS` (CAM, Grad-CAM, Grad-CAM++, random; a method
registered there is evaluated here without further edits):

* **Do other explainers agree?** Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhyay et al. 2018),
  computed by :mod:`densenet_interp.explain.methods` on the same final layer, are compared with CAM: their rank
  correlation with the CAM, and their share of mass in the phantom's lesion and legend (the measures
  of :mod:`densenet_interp.evaluate.localisation`). For a global-average-pooling head, Grad-CAM on the logit at the final
  layer *is* ReLU(CAM) up to a positive factor, so a disagreement there would reveal a bug, not a finding.
* **Does the model use what the map highlights?** Deletion and insertion curves (Petsiuk et al. 2018): pixels
  are removed from the image (replaced by the image's mean grey) or revealed on a blurred copy, most salient
  first, in ``steps`` equal steps; the probability of "abnormal" is recorded after each step and the area under
  the curve summarises it. A faithful map makes the probability fall fast on deletion (low AUC) and rise fast on
  insertion (high AUC), compared with a random order of the pixels (the ``random`` method). All steps of one
  image and one method go through the model in ONE batched forward pass.

Costs are bounded by explaining at most ``max_images`` abnormal validation images per model set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

from ..explain import methods
from .measures import mass_shares, share_column
from .stats import bootstrap_mean

BASELINES = ("mean", "blur")
BLUR_SIGMA_FRACTION = 1 / 16  # the blurred start of insertion: Gaussian sigma = image side / 16


# ----------------------------------------------------------------------------------------------------------
# saliency maps


def saliency_maps(explainer, explanation, seed: int = 0) -> dict[str, np.ndarray]:
    """Every registered method's map ``(N, S, S)`` for one explained batch, plus the probabilities.

    ``cam`` is the signed CAM of the explain pass; ``gradcam`` and ``gradcam++`` are computed on the logit at
    the final layer (the one CAM weighs) and upsampled to the input size as the CAM is; ``random`` is uniform
    noise from ``seed`` (the baseline order); see :mod:`densenet_interp.explain.methods`. Key ``probability``
    holds ``(N,)``.
    """
    maps = {"probability": np.asarray(explanation.probability)}
    for name in methods.METHODS:
        maps[name] = methods.saliency(name, explainer, explanation, seed=seed)
    return maps


# ----------------------------------------------------------------------------------------------------------
# deletion and insertion


def _predictor(model) -> Callable[[np.ndarray], np.ndarray]:
    """``batch float32 (N, S, S, 3) -> probabilities (N,)`` for a Keras model or a plain callable."""
    if hasattr(model, "predict_on_batch"):
        return lambda batch: np.asarray(model.predict_on_batch(batch)).reshape(len(batch))
    if callable(model):
        return lambda batch: np.asarray(model(batch)).reshape(len(batch))
    raise TypeError(f"model must be a Keras model or a callable on batches, got {type(model).__name__}")


def baseline_image(image_u8: np.ndarray, kind: str) -> np.ndarray:
    """What removed pixels become: the image's mean grey (``mean``) or a Gaussian blur of it (``blur``)."""
    image = image_u8.astype(np.float32)
    if kind == "mean":
        return np.full_like(image, image.mean())
    if kind == "blur":
        return gaussian_filter(image, sigma=max(1.0, image.shape[0] * BLUR_SIGMA_FRACTION), mode="nearest")
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


def saliency_order(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most salient first; ties broken in a seeded random order (so flat maps are random)."""
    saliency = np.asarray(saliency, dtype=np.float64).ravel()
    if not np.isfinite(saliency).all():
        raise ValueError("saliency map has non-finite values; expected finite numbers")
    tie_break = np.random.default_rng(seed).permutation(saliency.size)
    return np.lexsort((tie_break, -saliency))


def deletion_insertion(
    model,
    image_u8: np.ndarray,
    saliency: np.ndarray,
    steps: int = 16,
    *,
    deletion_baseline: str = "mean",
    insertion_baseline: str = "blur",
    seed: int = 0,
) -> dict:
    """Deletion and insertion curves of one image for one saliency map (Petsiuk et al. 2018).

    After step ``k`` of ``steps``, the ``k / steps`` most salient pixels are removed (deletion: set to the
    ``deletion_baseline`` image) or revealed (insertion: copied onto the ``insertion_baseline`` image). The
    ``2 * (steps + 1)`` images go through ``model`` in one batch.

    Args:
        model: a Keras model (``predict_on_batch``) or a callable, on float32 ``(N, S, S, 3)`` pixels 0..255,
            returning the probability of "abnormal" ``(N,)`` or ``(N, 1)``.
        image_u8: ``uint8 (S, S)`` model-size image.
        saliency: ``(S, S)`` map; higher is more salient.
        steps: number of equal steps from 0 to all pixels.

    Returns ``fractions`` ``(steps + 1,)``, ``deletion`` and ``insertion`` probabilities, ``deletion_auc`` and
    ``insertion_auc`` (trapezoid over fractions 0..1).
    """
    from ..data.images import to_model_input

    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 2:
        raise ValueError(f"image_u8 must be a uint8 (S, S) image, got {image_u8.dtype} {image_u8.shape}")
    if np.shape(saliency) != image_u8.shape:
        raise ValueError(
            f"saliency has shape {np.shape(saliency)}; expected the image's shape {image_u8.shape}"
        )
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    order = saliency_order(saliency, seed)
    fractions = np.arange(steps + 1) / steps
    counts = np.rint(fractions * order.size).astype(np.int64)
    # rank[p] = position of pixel p in the order; pixel p is affected at step k iff rank[p] < counts[k]
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    affected = (rank[np.newaxis, :] < counts[:, np.newaxis]).reshape(steps + 1, *image_u8.shape)
    image = image_u8.astype(np.float32)
    deleted = np.where(affected, baseline_image(image_u8, deletion_baseline), image)
    inserted = np.where(affected, image, baseline_image(image_u8, insertion_baseline))
    batch = np.clip(np.rint(np.concatenate([deleted, inserted])), 0, 255).astype(np.uint8)
    probabilities = _predictor(model)(to_model_input(batch))
    deletion, insertion = probabilities[: steps + 1], probabilities[steps + 1 :]
    return {
        "fractions": fractions,
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": float(np.trapezoid(deletion, fractions)),
        "insertion_auc": float(np.trapezoid(insertion, fractions)),
    }


# ----------------------------------------------------------------------------------------------------------
# per image, per method


def select_abnormal(images: pd.DataFrame, max_images: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``max_images`` abnormal images, a seeded random sample in index order (the cap bounds the cost)."""
    abnormal = images[images["label"] == 1]
    if len(abnormal) > max_images:
        abnormal = abnormal.sample(n=max_images, random_state=seed).sort_index()
    return abnormal


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def faithfulness_per_image(
    model,
    images_u8: np.ndarray,
    images: pd.DataFrame,
    *,
    model_set: str,
    annotations: Mapping[str, dict] | None = None,
    masks_for: Callable[..., dict[str, np.ndarray]] | None = None,
    steps: int = 16,
    seed: int = 0,
    batch_size: int = 16,
    mass: str = "relative",
) -> pd.DataFrame:
    """One row per (image, method): deletion/insertion AUCs, rank correlation with CAM, lesion/legend shares.

    ``images`` holds the rows of ``images_u8`` (``path``, ``patient``, ``label``). With ``annotations`` (the
    phantom's) each method's mass share in the lesion and legend is measured too, under the ``mass`` reading of
    :mod:`densenet_interp.evaluate.localisation` (default: above the map's own mean). Saliency maps are
    computed ``batch_size`` images at a time (the random map of the batch from ``start`` is drawn with seed
    ``seed + start``); each (image, method) then costs one batched forward pass.
    """
    from ..explain.engine import explainer_for

    if len(images) != len(images_u8):
        raise ValueError(f"{len(images)} image rows but {len(images_u8)} arrays; expected one row per array")
    if annotations is not None and masks_for is None:
        from ..phantom import masks_for
    explainer = explainer_for(model)
    maps = _maps_in_batches(explainer, np.asarray(images_u8), batch_size, seed)
    names = list(methods.METHODS)
    rows = []
    for i, (image, row) in enumerate(zip(images_u8, images.itertuples(index=False), strict=True)):
        masks = masks_for(annotations[row.path], size=image.shape) if annotations is not None else None
        for method in names:
            saliency = maps[method][i]
            curves = deletion_insertion(model, image, saliency, steps, seed=seed + i)
            out = {
                "model_set": model_set,
                "path": row.path,
                "patient": row.patient,
                "label": int(row.label),
                "probability": float(maps["probability"][i]),
                "method": method,
                "deletion_auc": curves["deletion_auc"],
                "insertion_auc": curves["insertion_auc"],
                "rank_correlation_with_cam": _rank_correlation(saliency, maps["cam"][i]),
            }
            if masks is not None:
                shares = mass_shares(saliency, masks, masses=(mass,))
                for region in ("lesion", "legend"):
                    out[f"{region}_share"] = shares[share_column(region, mass)]
                    out[f"{region}_chance"] = shares[f"{region}_chance"]
            rows.append(out)
    return pd.DataFrame(rows)


def _maps_in_batches(explainer, images_u8: np.ndarray, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """:func:`saliency_maps` of all images, ``batch_size`` at a time, concatenated per key."""
    from ..explain.engine import iter_explanations

    parts = [
        saliency_maps(explainer, explanation, seed=seed + start)
        for start, explanation in iter_explanations(explainer, images_u8, batch_size)
    ]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]} if parts else {}


SUMMARY_MEASURES = (
    "deletion_auc",
    "insertion_auc",
    "rank_correlation_with_cam",
    "lesion_share",
    "legend_share",
)


def faithfulness_table(per_image: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean of each measure per model set and method, with 95 % patient-bootstrap intervals.

    Columns: ``model_set``, ``method``, ``n_images``, then ``<measure>``, ``<measure>_low``, ``<measure>_high``
    for the measures present among :data:`SUMMARY_MEASURES`. Methods keep the registry's order
    (:data:`densenet_interp.explain.methods.METHODS`); methods no longer registered follow as they come.
    """
    measures = [m for m in SUMMARY_MEASURES if m in per_image.columns]
    present = list(pd.unique(per_image["method"]))
    order = [m for m in methods.METHODS if m in present] + [m for m in present if m not in methods.METHODS]
    rows = []
    for model_set in pd.unique(per_image["model_set"]):
        for method in order:
            frame = per_image[(per_image["model_set"] == model_set) & (per_image["method"] == method)]
            out = {"model_set": model_set, "method": method, "n_images": len(frame)}
            for measure in measures:
                values = frame[measure].to_numpy(float)
                out[measure], out[f"{measure}_low"], out[f"{measure}_high"] = bootstrap_mean(
                    values, frame["patient"].to_numpy(), n_boot, seed
                )
            rows.append(out)
    return pd.DataFrame(rows)


def faithfulness_markdown(table: pd.DataFrame, data_label: str, steps: int) -> str:
    """The summary as Markdown, one table per model set, each mean with its 95 % interval."""
    measures = [m for m in SUMMARY_MEASURES if m in table.columns]
    lines = [
        f"Faithfulness: deletion AUC (lower is better) and insertion AUC (higher is better) of the probability of "
        f"'abnormal' over {steps} steps (Petsiuk et al. 2018; deletion fills the image mean, insertion starts "
        "from a blur), rank correlation with CAM, and mass share (above the map's mean) in lesion/legend, on abnormal "
        "validation images. Means with 95 % percentile-bootstrap intervals resampling patients.",
        "",
    ]
    for model_set in pd.unique(table["model_set"]):
        lines += [
            f"### {model_set}",
            "",
            "| method | images | " + " | ".join(measures) + " |",
            "| --- | ---: |" + " ---: |" * len(measures),
        ]
        for _, row in table[table["model_set"] == model_set].iterrows():
            cells = [
                "n/a"
                if not np.isfinite(row[m])
                else f"{row[m]:.3f} [{row[f'{m}_low']:.3f}, {row[f'{m}_high']:.3f}]"
                for m in measures
            ]
            lines.append(f"| {row['method']} | {int(row['n_images'])} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Data: {data_label}.")
    return "\n".join(lines) + "\n"
