"""Where the model looks, measured against the phantom's ground truth: CAM mass in the lesion, legend, frame, anatomy.

The paper judges its class activation maps by eye on a handful of cases (its Figures 4-11). The phantom MURA
knows, for every image, where the lesion, the text legend, the frame and the anatomy are, so the same judgement
can be made on every validation image, with numbers:

* **mass share**: the CAM is turned into a non-negative "mass" and normalised to sum 1; the share of that mass
  inside a region is reported beside the region's share of the image area, which is what a map that ignored
  the image would score (the chance level). A share above chance means the model looks there. Two readings of
  the signed CAM are measured from the same forward pass (:data:`MASSES`):

  - ``positive``: the CAM clipped at 0, i.e. only evidence *for* "abnormal". Undefined for an image whose CAM
    is negative everywhere (a confidently normal image), which is common for models that call most images
    normal.
  - ``relative``: the CAM minus its own spatial mean, clipped at 0, i.e. where the evidence is above the
    image's average. This is how the paper reads its maps ("all other regions are regarded as abnormal in
    relative terms", Figure 6; the jet overlay is min-max scaled), it ignores a constant offset, and it is
    defined for every image whose CAM is not flat. Since ``logit = mean(cam) + bias``, it marks the pixels
    that pull the logit above the map's average.
* **pointing game** (Zhang et al. 2016): is the CAM's maximum inside the lesion, dilated by one cell of the
  final feature map (the CAM's own resolution)? Its chance level is the dilated lesion's area share.
* **aggregates**: means per model set (per abnormality kind for the lesion) with percentile-bootstrap 95 %
  intervals that resample *patients*, since images of one patient are not independent.

The paper's qualitative claims are then tested on these numbers (:func:`claims_report`); each claim gets a
verdict computed from a bootstrap interval, whichever way it comes out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from scipy.ndimage import binary_dilation

REGIONS = ("lesion", "legend", "frame", "anatomy")
POINTING = "pointing"
THRESHOLD = 0.5  # the paper: a probability above 0.5 is "abnormal"
MIN_PATIENTS = 5  # below this a patient bootstrap has too few distinct resamples to decide a claim
LEVEL = 0.95
MASSES = ("relative", "positive")
"""The two readings of the signed CAM as a mass (module docstring); ``relative`` is the default."""
_MASS_EPS = (
    1e-12  # a mass whose mean per pixel is below this is "none" (float noise of a flat or negative CAM)
)


# ----------------------------------------------------------------------------------------------------------
# one image


def share_column(region: str, mass: str) -> str:
    """Name of the per-image column holding ``region``'s share under the ``mass`` reading."""
    if mass not in MASSES:
        raise ValueError(f"mass must be one of {MASSES}, got {mass!r}")
    return f"{region}_share_{mass}"


def evidence_mass(cam: np.ndarray, mass: str) -> np.ndarray:
    """The non-negative mass of a signed CAM under one reading (``positive`` or ``relative``), float64."""
    cam = np.asarray(cam, dtype=np.float64)
    if mass == "positive":
        return np.clip(cam, 0.0, None)
    if mass == "relative":
        return np.clip(cam - cam.mean(), 0.0, None)
    raise ValueError(f"mass must be one of {MASSES}, got {mass!r}")


def mass_shares(cam: np.ndarray, masks: Mapping[str, np.ndarray], masses=MASSES) -> dict[str, float]:
    """Share of the CAM's mass inside each region of :data:`REGIONS`, beside the region's area share.

    Returns ``positive_mass`` (mean of the CAM clipped at 0), ``<region>_chance`` (the region's fraction of the
    image; 0 for a region the image lacks, whose share is then 0 too) and, for each reading in ``masses``,
    ``<region>_share_<mass>`` (nan when that mass is 0 everywhere: no positive value, or a flat CAM).
    """
    cam = np.asarray(cam)
    if cam.ndim != 2:
        raise ValueError(f"expected one CAM of shape (H, W), got shape {cam.shape}")
    region_masks = {region: _mask(masks, region, cam.shape) for region in REGIONS}
    out = {"positive_mass": float(np.clip(cam, 0.0, None).mean())}
    out.update({f"{region}_chance": float(mask.mean()) for region, mask in region_masks.items()})
    for mass in masses:
        weights = evidence_mass(cam, mass)
        total = float(weights.sum())
        for region, mask in region_masks.items():
            share = float(weights[mask].sum() / total) if total > _MASS_EPS * weights.size else math.nan
            out[share_column(region, mass)] = share
    return out


def pointing_game(cam: np.ndarray, lesion: np.ndarray, tolerance_px: int) -> tuple[float, float]:
    """``(hit, chance)``: is the CAM's argmax inside ``lesion`` dilated by ``tolerance_px`` pixels?

    The argmax of the signed CAM (the most abnormal-looking point) is defined even where no value is positive.

    ``hit`` is 1.0 or 0.0 and ``chance`` the dilated lesion's area share; both are nan without a lesion.
    Dilation uses a square of side ``2 * tolerance_px + 1`` (Chebyshev distance), the footprint of one
    feature-map cell around every lesion pixel.
    """
    cam = np.asarray(cam)
    lesion = np.asarray(lesion, dtype=bool)
    if cam.shape != lesion.shape or cam.ndim != 2:
        raise ValueError(f"CAM {cam.shape} and lesion mask {lesion.shape} must be 2-D and of the same shape")
    if not isinstance(tolerance_px, (int, np.integer)) or tolerance_px < 0:
        raise ValueError(f"tolerance_px must be a non-negative integer, got {tolerance_px!r}")
    if not lesion.any():
        return math.nan, math.nan
    zone = lesion
    if tolerance_px > 0:
        zone = binary_dilation(lesion, structure=np.ones((2 * tolerance_px + 1,) * 2, dtype=bool))
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return float(zone[row, col]), float(zone.mean())


def grid_tolerance(image_size: int, grid_size: int, cells: int = 1) -> int:
    """Pixels spanned by ``cells`` cells of a ``grid_size`` feature map upsampled to ``image_size`` (rounded up)."""
    if grid_size < 1 or image_size < grid_size:
        raise ValueError(f"expected 1 <= grid_size <= image_size, got grid {grid_size}, image {image_size}")
    return int(math.ceil(cells * image_size / grid_size))


def _mask(masks: Mapping[str, np.ndarray], region: str, shape: tuple[int, ...]) -> np.ndarray:
    if region not in masks:
        raise ValueError(
            f"masks lack region {region!r}; expected keys {', '.join(REGIONS)}, got {sorted(masks)}"
        )
    mask = np.asarray(masks[region], dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask {region!r} has shape {mask.shape}; expected the CAM's shape {shape}")
    return mask


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask scaled to ``(size, size)`` as images are (stretched); a pixel is in if half its area is."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"expected a non-empty 2-D mask, got shape {mask.shape}")
    if mask.shape == (size, size):
        return mask.copy()
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(scaled) >= 128


# ----------------------------------------------------------------------------------------------------------
# many images


def image_rows(
    cams: np.ndarray,
    probabilities: np.ndarray,
    masks: Iterable[Mapping[str, np.ndarray]],
    tolerance_px: int,
) -> list[dict[str, float]]:
    """Shares, pointing game and probability for each CAM of a batch (one dict per image)."""
    rows = []
    for cam, probability, image_masks in zip(cams, probabilities, masks, strict=True):
        row = {"probability": float(probability), **mass_shares(cam, image_masks)}
        row["pointing_hit"], row["pointing_chance"] = pointing_game(cam, image_masks["lesion"], tolerance_px)
        rows.append(row)
    return rows


def localisation_table(
    explainer,
    images_u8: np.ndarray,
    annotations: Mapping[str, dict],
    images: pd.DataFrame,
    *,
    model_set: str,
    masks_for: Callable[..., dict[str, np.ndarray]] | None = None,
    tolerance_cells: int = 1,
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per image: where the model's CAM puts its positive mass, against the phantom's masks.

    Args:
        explainer: a :class:`densenet_interp.explain.Explainer`; one ``explain`` pass per batch. The pointing
            tolerance comes from the resolution of its ``cam_lowres``.
        images_u8: ``uint8 (N, S, S)`` model-size images (e.g. ``ImageCache.arrays_for(images.path)``).
        annotations: the phantom's ground truth, ``{relative path: annotation}`` (``phantom.load_annotations``).
        images: the N images' rows (``path``, ``patient``, ``label``; ``body_part``, ``study_key`` if present),
            in the order of ``images_u8``.
        model_set: written into every row.
        masks_for: ``(annotation, size=(S, S)) -> masks``; default ``densenet_interp.phantom.masks_for``.
        tolerance_cells: pointing-game tolerance in cells of the final feature map.
        batch_size: images per forward pass.

    Columns: ``model_set, path, patient, study_key, body_part, kind, label, probability, correct,
    positive_mass``, ``<region>_chance`` for each region, ``pointing_hit``,
    ``pointing_chance``, ``tolerance_px``; ``<region>_share_<mass>`` for both readings of :data:`MASSES`.
    """
    from .images import to_model_input

    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8 or images_u8.ndim != 3 or images_u8.shape[1] != images_u8.shape[2]:
        raise ValueError(f"images_u8 must be uint8 (N, S, S), got {images_u8.dtype} {images_u8.shape}")
    _require_columns(images, ("path", "patient", "label"), "images")
    if len(images) != len(images_u8):
        raise ValueError(f"{len(images)} image rows but {len(images_u8)} arrays; expected one row per array")
    masks_for = masks_for or _phantom_masks_for()
    size = images_u8.shape[1]
    paths = images["path"].tolist()
    image_annotations = [_annotation(annotations, path) for path in paths]
    rows: list[dict[str, float]] = []
    tolerance = 0
    for start in range(0, len(paths), batch_size):
        stop = min(start + batch_size, len(paths))
        explanation = explainer.explain(to_model_input(images_u8[start:stop]))
        tolerance = grid_tolerance(size, np.shape(explanation.cam_lowres)[1], tolerance_cells)
        batch_masks = [masks_for(a, size=(size, size)) for a in image_annotations[start:stop]]
        rows += image_rows(
            np.asarray(explanation.cam), np.asarray(explanation.probability), batch_masks, tolerance
        )
    return _with_identity(
        pd.DataFrame(rows), images.reset_index(drop=True), image_annotations, model_set, tolerance
    )


def _with_identity(
    measured: pd.DataFrame, images: pd.DataFrame, annotations: list[dict], model_set: str, tolerance: int
) -> pd.DataFrame:
    """Prefix measured rows with who they are about (model set, image, patient, kind, label)."""
    ident = pd.DataFrame(
        {
            "model_set": model_set,
            "path": images["path"].to_numpy(),
            "patient": images["patient"].to_numpy(),
            "study_key": images["study_key"].to_numpy()
            if "study_key" in images
            else images["path"].to_numpy(),
            "body_part": images["body_part"].to_numpy() if "body_part" in images else "",
            "kind": [a.get("kind", "unknown") for a in annotations],
            "label": images["label"].to_numpy(dtype=np.int64),
        }
    )
    table = pd.concat([ident, measured.reset_index(drop=True)], axis=1)
    table.insert(ident.shape[1] + 1, "correct", (table["probability"] > THRESHOLD) == (table["label"] == 1))
    table["tolerance_px"] = tolerance
    return table


def _annotation(annotations: Mapping[str, dict], path: str) -> dict:
    try:
        return annotations[path]
    except KeyError:
        raise ValueError(
            f"no phantom annotation for {path!r}; localisation needs the phantom generator's ground-truth masks "
            f"(phantom_annotations.json), which real MURA does not have"
        ) from None


def _phantom_masks_for():
    from .phantom import masks_for

    return masks_for


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


# ----------------------------------------------------------------------------------------------------------
# bootstrap over patients


def bootstrap_mean(
    values, groups, n_boot: int = 1000, seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile-bootstrap interval resampling groups.

    Each resample draws as many groups (patients) as there are, with replacement, and averages all values of
    the drawn groups (a group drawn twice counts twice). Non-finite values are left out first. Deterministic
    for a given ``seed``; ``(nan, nan, nan)`` without values.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    if values.shape != groups.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and groups {groups.shape} must be 1-D of equal length")
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    if values.size == 0:
        return math.nan, math.nan, math.nan
    codes, _ = pd.factorize(groups)
    n_groups = int(codes.max()) + 1
    sums = np.bincount(codes, weights=values, minlength=n_groups)
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    offsets = (np.arange(n_boot) * n_groups)[:, np.newaxis]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_groups).reshape(n_boot, n_groups)
    means = (counts @ sums) / (counts @ sizes)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def paired_difference(
    per_image: pd.DataFrame,
    column: str,
    model_a: str,
    model_b: str,
    paths: Iterable[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of ``column`` for ``model_a`` minus ``model_b`` on the images both saw, with a patient bootstrap.

    Pairs are matched by ``path`` (both models explained the same image), optionally restricted to ``paths``.
    Returns ``a``, ``b``, ``diff``, ``diff_low``, ``diff_high``, ``n_images`` and ``n_patients``.
    """
    _require_columns(per_image, ("model_set", "path", "patient", column), "per-image table")
    a = per_image[per_image["model_set"] == model_a].set_index("path")
    b = per_image[per_image["model_set"] == model_b].set_index("path")
    common = a.index.intersection(b.index)
    if paths is not None:
        common = common.intersection(pd.Index(list(paths)))
    va, vb = a.loc[common, column].to_numpy(float), b.loc[common, column].to_numpy(float)
    both = np.isfinite(va) & np.isfinite(vb)
    patients = a.loc[common, "patient"].to_numpy()[both]
    diff, low, high = bootstrap_mean(va[both] - vb[both], patients, n_boot, seed)
    mean_a = float(va[both].mean()) if both.any() else math.nan
    mean_b = float(vb[both].mean()) if both.any() else math.nan
    return {
        "a": mean_a,
        "b": mean_b,
        "diff": diff,
        "diff_low": low,
        "diff_high": high,
        "n_images": int(both.sum()),
        "n_patients": int(pd.unique(patients).size),
    }


# ----------------------------------------------------------------------------------------------------------
# aggregates

SUMMARY_COLUMNS = (
    "model_set",
    "mass",
    "region",
    "subset",
    "n_images",
    "n_patients",
    "share",
    "share_low",
    "share_high",
    "chance",
    "chance_low",
    "chance_high",
    "excess",
    "excess_low",
    "excess_high",
)


def _subsets(per_image: pd.DataFrame, region: str, by_kind: bool) -> list[tuple[str, pd.DataFrame]]:
    """The images a region's share is averaged over: those that have the region (and each kind for lesions)."""
    chance = "pointing_chance" if region == POINTING else f"{region}_chance"
    present = per_image[per_image[chance] > 0]
    subsets = [
        ("all" if region == "anatomy" else f"with {region if region != POINTING else 'lesion'}", present)
    ]
    if by_kind:
        subsets += [
            (f"kind={kind}", present[present["kind"] == kind]) for kind in sorted(present["kind"].unique())
        ]
    return subsets


def summary_row(frame: pd.DataFrame, share: str, chance: str, n_boot: int, seed: int) -> dict[str, float]:
    """Mean share, chance and excess (share minus chance, per image) with patient-bootstrap intervals."""
    rows = frame[np.isfinite(frame[share].to_numpy(float))]
    patients = rows["patient"].to_numpy()
    out: dict[str, float] = {"n_images": len(rows), "n_patients": int(rows["patient"].nunique())}
    for name, values in (
        ("share", rows[share]),
        ("chance", rows[chance]),
        ("excess", rows[share] - rows[chance]),
    ):
        out[name], out[f"{name}_low"], out[f"{name}_high"] = bootstrap_mean(
            values.to_numpy(float), patients, n_boot, seed
        )
    return out


def summarise(per_image: pd.DataFrame, n_boot: int = 1000, seed: int = 0, masses=MASSES) -> pd.DataFrame:
    """Per model set, mass reading and region: mean mass share beside chance, 95 % patient-bootstrap intervals.

    Regions are averaged over the images that have them (lesion: abnormal images with a lesion mask; legend,
    frame: images showing one; anatomy: all). Lesion shares and the pointing game are also broken down by
    abnormality kind. The pointing game (the same for every reading: the CAM's argmax) appears once per model
    set, as region ``pointing`` with mass ``argmax`` (share = hit rate). Model sets keep their order.
    """
    _require_columns(
        per_image, ("model_set", "patient", "kind", "pointing_hit", "pointing_chance"), "per-image"
    )
    rows = []
    for model_set in pd.unique(per_image["model_set"]):
        frame = per_image[per_image["model_set"] == model_set]
        readings = [(mass, region) for mass in masses for region in REGIONS] + [("argmax", POINTING)]
        for mass, region in readings:
            share = "pointing_hit" if region == POINTING else share_column(region, mass)
            chance = "pointing_chance" if region == POINTING else f"{region}_chance"
            for subset, rows_of in _subsets(frame, region, by_kind=region in ("lesion", POINTING)):
                stats = summary_row(rows_of, share, chance, n_boot, seed)
                rows.append(
                    {"model_set": model_set, "mass": mass, "region": region, "subset": subset, **stats}
                )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def format_interval(value: float, low: float = math.nan, high: float = math.nan, signed: bool = False) -> str:
    """``0.412 [0.301, 0.520]`` (3 decimals; ``+`` signs with ``signed``); ``n/a`` for a missing value."""
    spec = "+.3f" if signed else ".3f"
    if value is None or not np.isfinite(value):
        return "n/a"
    value, low, high = (round(float(v), 3) + 0.0 for v in (value, low, high))  # + 0.0: no "-0.000"
    text = f"{value:{spec}}"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{low:{spec}}, {high:{spec}}]"
    return text


def _row_name(row: pd.Series) -> str:
    whole = row["subset"] == "all" or row["subset"].startswith("with")
    return row["region"] if whole else f"{row['region']} ({row['subset']})"


def localisation_markdown(summary: pd.DataFrame, data_label: str) -> str:
    """The summary as Markdown: one table per model set (rows: region and mass reading), 95 % intervals."""
    lines = [
        "Localisation: share of the CAM's mass inside each ground-truth region, beside the region's area share "
        "(chance); excess = share minus chance per image. Mass readings: *relative* = CAM above its own spatial "
        "mean (as the paper reads its maps), *positive* = CAM above 0 (evidence for 'abnormal'; undefined where "
        "the CAM is negative everywhere, so fewer images). Pointing game (*argmax*): CAM maximum inside the "
        "lesion dilated by one final-feature-map cell (share = hit rate, chance = dilated lesion area). "
        "Means with 95 % percentile-bootstrap intervals resampling patients.",
        "",
    ]
    header = ["region", "mass", "images", "patients", "share", "chance", "excess"]
    for model_set in pd.unique(summary["model_set"]):
        lines += [f"### {model_set}", "", "| " + " | ".join(header) + " |", "| --- | --- |" + " ---: |" * 5]
        rows = summary[summary["model_set"] == model_set]
        for _, row in rows.sort_values(["region", "subset"], key=_region_order, kind="stable").iterrows():
            cells = [_row_name(row), row["mass"], str(int(row["n_images"])), str(int(row["n_patients"]))] + [
                format_interval(row[c], row[f"{c}_low"], row[f"{c}_high"])
                for c in ("share", "chance", "excess")
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Data: {data_label}.")
    return "\n".join(lines) + "\n"


def _region_order(column: pd.Series) -> pd.Series:
    """Sort key: regions in :data:`REGIONS` order then pointing; subsets 'all'/'with ...' before kinds."""
    if column.name == "region":
        return column.map({region: i for i, region in enumerate((*REGIONS, POINTING))})
    return column.str.startswith("kind=").astype(int)


def plot_localisation(summary: pd.DataFrame, mass: str = "relative") -> Figure:
    """Bars of mean mass share per region (95 % intervals) beside the chance level, one panel per model set."""
    share_column("lesion", mass)  # validates ``mass``
    model_sets = list(pd.unique(summary["model_set"]))
    if not model_sets:
        raise ValueError("the summary is empty; expected rows from summarise()")
    regions = [*REGIONS, POINTING]
    fig = Figure(figsize=(3.4 * len(model_sets), 3.6), layout="constrained")
    axes = fig.subplots(1, len(model_sets), sharey=True, squeeze=False)[0]
    x = np.arange(len(regions))
    for ax, model_set in zip(axes, model_sets, strict=True):
        main = summary[
            (summary["model_set"] == model_set)
            & summary["mass"].isin([mass, "argmax"])
            & ~summary["subset"].str.startswith("kind=")
        ]
        main = main.set_index("region").reindex(regions)
        share, chance = main["share"].to_numpy(float), main["chance"].to_numpy(float)
        errors = np.abs(np.vstack([share - main["share_low"], main["share_high"] - share]).astype(float))
        ax.bar(x - 0.2, np.nan_to_num(share), 0.4, yerr=np.nan_to_num(errors), capsize=3, label="CAM mass share",
               color="tab:red")  # fmt: skip
        ax.bar(x + 0.2, np.nan_to_num(chance), 0.4, label="chance (area share)", color="0.7")
        ax.set_xticks(x, [r if r != POINTING else "pointing\ngame" for r in regions], fontsize=8)
        ax.set_title(model_set, fontsize=10)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(f"share of CAM mass ({mass})")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


# ----------------------------------------------------------------------------------------------------------
# the frame experiment (paper Figures 10-11): the same images as they are and with the frame cropped


def frame_crop_table(
    explainer,
    images: pd.DataFrame,
    annotations: Mapping[str, dict],
    image_size: int,
    *,
    crop: Callable[[np.ndarray], tuple[np.ndarray, object]] | None = None,
    masks_for: Callable[..., dict[str, np.ndarray]] | None = None,
    read: Callable[[str], np.ndarray] | None = None,
    tolerance_cells: int = 1,
    model_set: str = "finger_pretrained",
    batch_size: int = 16,
) -> pd.DataFrame:
    """Explain each image twice, as it is and auto-cropped, and measure both against the re-mapped masks.

    ``images`` needs ``path``, ``abs_path``, ``patient``, ``label``. The full-resolution image is read, cropped
    with ``crop`` (default :func:`densenet_interp.frames.crop_frame`, returning ``(cropped, box)``; box None
    when no frame was found), both versions are resized to ``image_size`` as the pipeline does, and the masks
    (rasterised at full resolution) are cut to the same box and resized alike. Returns the rows of
    :func:`localisation_table` with a ``condition`` column (``as_is``/``cropped``) and ``cropped`` (bool:
    did the cropper find a frame). Each version is explained ``batch_size`` images at a time.
    """
    from .images import read_radiograph, resize_square, to_model_input

    _require_columns(images, ("path", "abs_path", "patient", "label"), "images")
    crop = crop or _default_crop()
    masks_for = masks_for or _phantom_masks_for()
    read = read or read_radiograph
    versions: dict[str, list] = {"as_is": [], "cropped": []}
    found = []
    image_annotations = [_annotation(annotations, path) for path in images["path"]]
    for abs_path, annotation in zip(images["abs_path"], image_annotations, strict=True):
        full = read(abs_path)
        full_masks = masks_for(annotation, size=full.shape)
        cropped, box = crop(full)
        found.append(box is not None)
        for name, image, masks in (
            ("as_is", full, full_masks),
            ("cropped", cropped, full_masks if box is None else crop_masks(full_masks, box, cropped.shape)),
        ):
            small = {
                region: resize_mask(mask, image_size) for region, mask in masks.items() if region in REGIONS
            }
            versions[name].append((resize_square(image, image_size), small))
    tables = []
    for name, items in versions.items():
        if not items:
            continue
        rows, tolerance = [], 0
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            explanation = explainer.explain(to_model_input(np.stack([image for image, _ in chunk])))
            tolerance = grid_tolerance(image_size, np.shape(explanation.cam_lowres)[1], tolerance_cells)
            rows += image_rows(np.asarray(explanation.cam), np.asarray(explanation.probability),
                               [masks for _, masks in chunk], tolerance)  # fmt: skip
        table = _with_identity(
            pd.DataFrame(rows), images.reset_index(drop=True), image_annotations, model_set, tolerance
        )
        table.insert(1, "condition", name)
        table.insert(2, "cropped", found)
        tables.append(table)
    if not tables:
        return pd.DataFrame()
    return pd.concat(tables, ignore_index=True)


def framed_images(images: pd.DataFrame, annotations: Mapping[str, dict]) -> pd.DataFrame:
    """The rows of ``images`` whose phantom annotation has a non-empty frame (the images Figure 10 is about)."""
    _require_columns(images, ("path",), "images")
    framed = [bool(annotations.get(path, {}).get("frame")) for path in images["path"]]
    return images[np.asarray(framed, dtype=bool)].reset_index(drop=True)


def crop_masks(masks: Mapping[str, np.ndarray], box, cropped_shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Cut full-resolution masks to a crop box ``(top, bottom, left, right)`` (exclusive ends; ``frames.Box``)."""
    top, bottom, left, right = (int(v) for v in box)
    if (bottom - top, right - left) != tuple(cropped_shape):
        raise ValueError(
            f"crop box {box} spans {(bottom - top, right - left)} pixels but the cropped image is {cropped_shape}; "
            "expected (top, bottom, left, right) with exclusive ends, as frames.crop_frame returns"
        )
    return {region: np.asarray(mask)[top:bottom, left:right] for region, mask in masks.items()}


def _default_crop():
    from .frames import crop_frame

    return crop_frame


# ----------------------------------------------------------------------------------------------------------
# the paper's claims, tested


@dataclass(frozen=True)
class Claim:
    """One qualitative statement of the paper, the test run on it, the numbers, and the computed verdict.

    ``supported``: True when the 95 % interval lies entirely on the claimed side, False when it lies entirely
    on the other side, None when it includes "no effect" or there were too few images or patients to test on
    (fewer than :data:`MIN_PATIENTS` patients).
    """

    name: str
    statement: str
    test: str
    evidence: dict[str, object] = field(default_factory=dict)
    supported: bool | None = None
    verdict: str = ""


def direction(low: float, high: float, sign: int) -> bool | None:
    """True if the interval ``[low, high]`` is entirely on the ``sign`` side of 0, False if entirely opposite."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if sign * low > 0 and sign * high > 0:
        return True
    if sign * low < 0 and sign * high < 0:
        return False
    return None


def _verdict(supported: bool | None, effect: str, n_images: int, n_patients: int) -> str:
    if n_images == 0:
        return (
            "not testable: no validation images of this kind with a defined share (none exist, or their CAMs "
            "carry no mass under this reading)"
        )
    if n_patients < MIN_PATIENTS:
        return f"not testable: {effect}; fewer than {MIN_PATIENTS} patients, too few for a bootstrap interval"
    return {
        True: f"supported: {effect}",
        False: f"contradicted: {effect}",
        None: f"inconclusive: {effect}; the 95 % interval includes no effect",
    }[supported]


def _decided(low: float, high: float, sign: int, n_patients: int) -> bool | None:
    """:func:`direction`, or None when too few patients make the interval meaningless."""
    return direction(low, high, sign) if n_patients >= MIN_PATIENTS else None


def _diff_claim(
    name: str, statement: str, test: str, sign: int, result: dict[str, float], labels: tuple[str, str]
) -> Claim:
    """A claim decided by the sign of a paired difference ``a - b`` (``sign`` is the claimed side)."""
    a, b = labels
    n_images, n_patients = result["n_images"], result["n_patients"]
    effect = (
        f"{a} {format_interval(result['a'])} vs {b} {format_interval(result['b'])}, difference "
        f"{format_interval(result['diff'], result['diff_low'], result['diff_high'], signed=True)} over "
        f"{n_images} images of {n_patients} patients"
    )
    supported = _decided(result["diff_low"], result["diff_high"], sign, n_patients)
    return Claim(
        name, statement, test, dict(result), supported, _verdict(supported, effect, n_images, n_patients)
    )


def _excess_claim(
    name: str, statement: str, test: str, frame: pd.DataFrame, region: str, mass: str, n_boot: int, seed: int
) -> Claim:
    """A claim that the mass share of ``region`` exceeds its chance level on the images of ``frame``."""
    column = share_column(region, mass)
    stats = summary_row(frame, column, f"{region}_chance", n_boot, seed) if len(frame) else {}
    n_images, n_patients = int(stats.get("n_images", 0)), int(stats.get("n_patients", 0))
    if n_images == 0:
        return Claim(name, statement, test, {"n_images": 0}, None, _verdict(None, "", 0, 0))
    effect = (
        f"{region} share {format_interval(stats['share'])} vs chance {format_interval(stats['chance'])}, excess "
        f"{format_interval(stats['excess'], stats['excess_low'], stats['excess_high'], signed=True)} over "
        f"{n_images} images of {n_patients} patients"
    )
    supported = _decided(stats["excess_low"], stats["excess_high"], +1, n_patients)
    return Claim(name, statement, test, stats, supported, _verdict(supported, effect, n_images, n_patients))


def _paths(per_image: pd.DataFrame, model_set: str, keep: pd.Series | None = None) -> list[str]:
    rows = per_image[per_image["model_set"] == model_set]
    if keep is not None:
        rows = rows[keep.loc[rows.index]]
    return rows["path"].tolist()


def legend_claims(per_image: pd.DataFrame, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figures 5 and 8: the wrist-only model leans on the text legend for hardware; the all-extremity less."""
    hardware = (
        (per_image["kind"] == "hardware")
        & (per_image["body_part"] == "XR_WRIST")
        & (per_image["legend_chance"] > 0)
    )
    wrist = per_image[(per_image["model_set"] == "wrist_pretrained") & hardware]
    test = "wrist validation images with hardware and a text legend"
    column = share_column("legend", mass)
    versus = paired_difference(per_image, column, "wrist_pretrained", "all_pretrained",
                               _paths(per_image, "wrist_pretrained", hardware), n_boot, seed)  # fmt: skip
    return [
        _excess_claim(
            "1a legend bias (wrist-only)",
            "The wrist-only pre-trained model's CAM leans on the text legend in hardware cases (Fig. 5).",
            f"{test}: legend share of the CAM's {mass} mass minus the legend's area share, wrist_pretrained",
            wrist,
            "legend",
            mass,
            n_boot,
            seed,
        ),  # fmt: skip
        _diff_claim(
            "1b less legend bias (all extremities)",
            "A model trained on all extremity types leans less on the legend in the same cases (Fig. 8).",
            f"{test}: legend share ({mass} mass), wrist_pretrained minus all_pretrained on the same images",
            +1,
            versus,
            ("wrist_pretrained", "all_pretrained"),
        ),  # fmt: skip
    ]


def pretraining_claims(per_image: pd.DataFrame, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figure 7: without pre-training the model finds the wrist (and the lesion) worse."""
    lesion = per_image["lesion_chance"] > 0
    anatomy = paired_difference(per_image, share_column("anatomy", mass), "wrist_random", "wrist_pretrained",
                                None, n_boot, seed)  # fmt: skip
    lesion_diff = paired_difference(per_image, share_column("lesion", mass), "wrist_random", "wrist_pretrained",
                                    _paths(per_image, "wrist_pretrained", lesion), n_boot, seed)  # fmt: skip
    labels = ("wrist_random", "wrist_pretrained")
    return [
        _diff_claim(
            "2a anatomy (random init)",
            "The randomly initialised wrist model finds the anatomy worse than the pre-trained one (Fig. 7).",
            f"wrist validation images: anatomy share of the CAM's {mass} mass, wrist_random minus wrist_pretrained",
            -1,
            anatomy,
            labels,
        ),  # fmt: skip
        _diff_claim(
            "2b lesion (random init)",
            "... and puts less of its attention on the abnormality itself.",
            f"abnormal wrist validation images with a lesion mask: lesion share ({mass} mass), wrist_random minus "
            "wrist_pretrained",
            -1,
            lesion_diff,
            labels,
        ),  # fmt: skip
    ]


FRAME_EXPERIMENTS = {
    "finger_pretrained": ("3a", "3b", "framed finger validation images", "Fig. 10", "Fig. 11"),
    "all_pretrained": ("3c", "3d", "framed validation images of every body part", "Fig. 10", "Fig. 11, whose crop "
                       "is explained by the all-extremity model"),
}  # fmt: skip
"""Model sets the frame experiment runs on: claim numbers, the images, and the paper's figures."""


def frame_claims(frame_crop: pd.DataFrame | None, mass: str, n_boot: int, seed: int) -> list[Claim]:
    """Paper Figures 10-11: a frame draws the model's attention; cropping it restores the anatomy.

    One pair of claims per model set of :data:`FRAME_EXPERIMENTS`, on its rows of ``frame_crop`` (the output
    of :func:`frame_crop_table`, one or several model sets concatenated). Cropping enlarges the anatomy's share
    of the image, so the second claim compares the anatomy share's excess over its area share.
    """
    claims = []
    for model_set, (first, second, images, fig_frame, fig_crop) in FRAME_EXPERIMENTS.items():
        names = (
            f"{first} frame draws attention ({model_set})",
            f"{second} cropping restores anatomy ({model_set})",
        )
        statements = (
            f"An image frame draws the model's attention away from the anatomy ({fig_frame}).",
            f"Cropping the frame restores attention to the anatomy ({fig_crop}).",
        )
        tests = (
            f"{images} as they are: frame share of the CAM's {mass} mass minus the frame's area share, {model_set}",
            f"the same images auto-cropped (frames.crop_frame) vs as they are: anatomy share ({mass} mass) minus "
            "the anatomy's area share (which grows with the crop), cropped minus as is",
        )
        rows = (
            None
            if frame_crop is None or frame_crop.empty
            else frame_crop[frame_crop["model_set"] == model_set]
        )
        if rows is None or rows.empty:
            claims += [
                Claim(n, s, t, {"n_images": 0}, None, _verdict(None, "", 0, 0))
                for n, s, t in zip(names, statements, tests, strict=True)
            ]
            continue
        as_is = rows[rows["condition"] == "as_is"]
        excess = rows[share_column("anatomy", mass)] - rows["anatomy_chance"]
        paired = rows.assign(model_set=rows["condition"], anatomy_excess=excess)
        result = paired_difference(paired, "anatomy_excess", "cropped", "as_is", None, n_boot, seed)
        result["n_frame_found"] = int(as_is["cropped"].sum())
        claims += [
            _excess_claim(names[0], statements[0], tests[0], as_is, "frame", mass, n_boot, seed),
            _diff_claim(names[1], statements[1], tests[1], +1, result, ("cropped", "as is")),
        ]
    return claims


def wrong_focus(per_image: pd.DataFrame, mass: str = "relative") -> pd.Series:
    """Images whose CAM looks at the wrong thing: lesion share below chance, or most mass on legend and frame.

    Only images with a lesion mask qualify; an image whose share is undefined under ``mass`` is not counted.
    """
    lesion = per_image[share_column("lesion", mass)]
    below = lesion < per_image["lesion_chance"]
    distracted = (per_image[share_column("legend", mass)] + per_image[share_column("frame", mass)]) > 0.5
    return (below | distracted) & (per_image["lesion_chance"] > 0) & lesion.notna()


def right_for_wrong_reasons(per_image: pd.DataFrame, mass: str = "relative") -> pd.DataFrame:
    """Per model set: accuracy, the majority-class rate, and correctly classified abnormal images with wrong focus."""
    rows = []
    for model_set in pd.unique(per_image["model_set"]):
        frame = per_image[per_image["model_set"] == model_set]
        hits = frame[(frame["label"] == 1) & frame["correct"] & (frame["lesion_chance"] > 0)]
        lesion = hits[share_column("lesion", mass)]
        elsewhere = hits[share_column("legend", mass)] + hits[share_column("frame", mass)]
        rows.append(
            {
                "model_set": model_set,
                "mass": mass,
                "accuracy": float(frame["correct"].mean()),
                "majority_rate": float(max(frame["label"].mean(), 1 - frame["label"].mean())),
                "correct_abnormal": int(lesion.notna().sum()),
                "lesion_below_chance": int((lesion < hits["lesion_chance"]).sum()),
                "mostly_legend_or_frame": int((elsewhere > 0.5).sum()),
                "wrong_focus": int(wrong_focus(hits, mass).sum()),
            }
        )
    return pd.DataFrame(rows)


def accuracy_claim(per_image: pd.DataFrame, mass: str) -> Claim:
    """Paper section 5: a statistically accurate model can detect abnormality from the wrong features.

    Counted on the model sets that beat the majority-class rate (a constant predictor): correctly classified
    abnormal images whose CAM puts less mass on the lesion than its area share, or most mass on legend/frame.
    """
    table = right_for_wrong_reasons(per_image, mass)
    accurate = table[table["accuracy"] > table["majority_rate"]]
    evidence: dict[str, object] = {
        f"{r.model_set}: wrong focus / correct abnormal": f"{r.wrong_focus}/{r.correct_abnormal}"
        for r in table.itertuples()
    }
    evidence.update({f"{r.model_set}: accuracy": round(r.accuracy, 3) for r in table.itertuples()})
    n_correct = int(accurate["correct_abnormal"].sum())
    n_wrong = int(accurate["wrong_focus"].sum())
    if accurate.empty or n_correct == 0:
        supported = None
        verdict = (
            "not testable: no model set beats the majority-class rate with correctly classified abnormal images "
            "whose share is defined"
        )
    else:
        supported = n_wrong > 0
        verdict = (
            f"{'supported' if supported else 'not observed'}: {n_wrong} of {n_correct} correctly classified "
            f"abnormal images of the {len(accurate)} model set(s) above the majority-class rate look elsewhere "
            f"({', '.join(accurate['model_set'])})"
        )
    return Claim(
        "4 right for the wrong reasons",
        "A model that is accurate by statistical metrics can detect abnormality from the wrong features (sec. 5).",
        f"correctly classified abnormal validation images (model sets more accurate than the majority class) whose "
        f"lesion share ({mass} mass) is below the lesion's area share or whose mass is mostly on legend and frame",
        evidence,
        supported,
        verdict,
    )


def claims_report(
    per_image: pd.DataFrame,
    frame_crop: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    mass: str = "relative",
) -> list[Claim]:
    """The paper's qualitative claims, each with a verdict computed from the localisation numbers (one reading)."""
    share_column("lesion", mass)  # validates ``mass``
    _require_columns(
        per_image, ("model_set", "path", "patient", "kind", "body_part", "label", "correct"), "per-image"
    )
    return [
        *legend_claims(per_image, mass, n_boot, seed),
        *pretraining_claims(per_image, mass, n_boot, seed),
        *frame_claims(frame_crop, mass, n_boot, seed),
        accuracy_claim(per_image, mass),
    ]


def claims_markdown(claims_by_mass: Mapping[str, list[Claim]], data_label: str) -> str:
    """The claims as Markdown, one table per mass reading: statement, test and computed verdict (first word bold)."""
    lines = [
        "# The paper's qualitative claims, tested on the localisation numbers",
        "",
        "Verdicts come from 95 % percentile-bootstrap intervals resampling patients: *supported* when the interval "
        "lies on the claimed side of no effect, *contradicted* when it lies on the other side, *inconclusive* "
        "otherwise. Each claim is tested under both readings of the CAM as a mass (*relative*: above the map's "
        "own mean, as the paper reads its maps; *positive*: above 0).",
    ]
    for mass, claims in claims_by_mass.items():
        lines += [
            "",
            f"## CAM mass: {mass}",
            "",
            "| claim | paper | test | verdict |",
            "| --- | --- | --- | --- |",
        ]
        for claim in claims:
            head, _, rest = claim.verdict.partition(":")
            cells = [claim.name, claim.statement, claim.test, f"**{head}**:{rest}"]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", f"Data: {data_label}.", ""]
    return "\n".join(lines)


def claims_table(claims_by_mass: Mapping[str, list[Claim]]) -> pd.DataFrame:
    """The claims as a table (one row per claim and mass reading) for CSV output."""
    return pd.DataFrame(
        [
            {"mass": mass, "claim": c.name, "supported": c.supported, "verdict": c.verdict, "test": c.test}
            for mass, claims in claims_by_mass.items()
            for c in claims
        ]
    )
