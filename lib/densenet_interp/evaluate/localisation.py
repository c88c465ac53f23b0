"""Where the model looks, measured against the phantom's ground truth: CAM mass in the lesion, legend, frame, anatomy.

The paper judges its class activation maps by eye on a handful of cases (its Figures 4-11). The phantom MURA
knows, for every image, where the lesion, the text legend, the frame and the anatomy are, so the same judgement
can be made on every validation image, with numbers. This module runs the model over batches of images and
aggregates; the per-image measures live in :mod:`densenet_interp.evaluate.measures`, the patient bootstrap in
:mod:`densenet_interp.evaluate.stats`:

* **mass share**: the CAM is turned into a non-negative "mass" and normalised to sum 1; the share of that mass
  inside a region is reported beside the region's share of the image area, which is what a map that ignored
  the image would score (the chance level). A share above chance means the model looks there. Two readings of
  the signed CAM are measured from the same forward pass (:data:`~densenet_interp.evaluate.measures.MASSES`):

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

Runners: :func:`localisation_table` (one row per image) and :func:`frame_crop_table` (the frame experiment of
Figures 10-11: each framed image as it is and auto-cropped). Aggregates: :func:`summarise`,
:func:`localisation_markdown`, :func:`plot_localisation`. The paper's qualitative claims are tested on these
numbers in :mod:`densenet_interp.evaluate.claims`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..models.inference import is_abnormal
from ..phantom.masks import REGIONS, resize_mask
from ..progress import progress
from .measures import MASSES, grid_tolerance, mass_shares, pointing_game, share_column
from .stats import bootstrap_mean, format_interval
from .stats import require_columns as _require_columns

POINTING = "pointing"


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
        explainer: a :class:`densenet_interp.explain.engine.Explainer`; one ``explain`` pass per batch. The pointing
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
    from ..explain.engine import iter_explanations

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
    batches = progress(iter_explanations(explainer, images_u8, batch_size), total=-(-len(images_u8) // batch_size),
                       what=f"localisation ({model_set})", unit="batch")  # fmt: skip
    for start, explanation in batches:
        tolerance = grid_tolerance(size, np.shape(explanation.cam_lowres)[1], tolerance_cells)
        chunk = image_annotations[start : start + batch_size]
        batch_masks = [masks_for(a, size=(size, size)) for a in chunk]
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
    table.insert(ident.shape[1] + 1, "correct", is_abnormal(table["probability"]) == (table["label"] == 1))
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
    from ..phantom import masks_for

    return masks_for


def model_set_tables(
    explainers: Mapping[str, object],
    index,
    annotations: Mapping[str, dict],
    cache,
    image_size: int,
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(per_image, frame_crop)`` of the paper's model sets: what notebook 50 and every training seed measure.

    ``per_image``: :func:`localisation_table` of each model set of ``explainers`` (name -> explainer) on the
    validation images of its own body parts, from the decode ``cache``; ``frame_crop``: :func:`frame_crop_table`
    of the model sets of the frame experiment (``claims.FRAME_EXPERIMENTS``) on their framed validation images,
    None if there are none. ``index``: the phantom's :class:`~densenet_interp.data.mura.MuraIndex`.
    """
    from ..data import mura
    from ..profiles import MODEL_SETS
    from .claims import FRAME_EXPERIMENTS

    tables = []
    for name, explainer in explainers.items():
        images = mura.select_images(index, "valid", MODEL_SETS[name].body_parts)
        arrays = cache.arrays_for(images["path"].tolist())
        tables.append(localisation_table(explainer, arrays, annotations, images, model_set=name))
        if log is not None:
            log(f"{name:18s} {len(images):5d} validation images explained")
    per_image = pd.concat(tables, ignore_index=True)
    crops = []
    for name in FRAME_EXPERIMENTS:
        if name not in explainers:
            continue
        framed = framed_images(mura.select_images(index, "valid", MODEL_SETS[name].body_parts), annotations)
        if len(framed):
            crops.append(frame_crop_table(explainers[name], framed, annotations, image_size, model_set=name))
        if log is not None:
            log(f"{name}: {len(framed)} framed validation images")
    return per_image, (pd.concat(crops, ignore_index=True) if crops else None)


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


def _interval(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``(2, n)`` distances from ``column`` down to ``<column>_low`` and up to ``<column>_high`` (for errorbar)."""
    value = frame[column].to_numpy(float)
    low, high = frame[f"{column}_low"].to_numpy(float), frame[f"{column}_high"].to_numpy(float)
    return np.nan_to_num(np.abs(np.vstack([value - low, high - value])))


def plot_localisation(summary: pd.DataFrame, mass: str = "relative") -> Figure:
    """Where the CAM points, per model set: its mass share in each annotated region beside the region's area
    share (what a CAM spread evenly would give), both with 95 % patient-bootstrap intervals; and, in its own
    panel, the pointing game (is the CAM's maximum within the lesion?) beside its chance rate.

    Top row: one panel per model set, images with the region (the summary's ``all``/``with ...`` rows).
    Bottom panel: the pointing-game hit rate of every model set on images with a lesion.
    """
    share_column("lesion", mass)  # validates ``mass``
    model_sets = list(pd.unique(summary["model_set"]))
    if not model_sets:
        raise ValueError("the summary is empty; expected rows from summarise()")
    rows = summary[~summary["subset"].str.startswith("kind=")]
    fig = Figure(figsize=(max(3.3 * len(model_sets), 7.0), 6.6), layout="constrained")
    grid = fig.add_gridspec(2, len(model_sets), height_ratios=[1.35, 1.0])
    x = np.arange(len(REGIONS))
    first = None
    for column, model_set in enumerate(model_sets):
        ax = fig.add_subplot(grid[0, column], sharey=first)
        first = first or ax
        main = rows[(rows["model_set"] == model_set) & (rows["mass"] == mass)]
        main = main.set_index("region").reindex(list(REGIONS))
        ax.bar(x - 0.2, main["share"].fillna(0.0), 0.4, yerr=_interval(main, "share"), capsize=3,
               color="tab:red", label="CAM mass share")  # fmt: skip
        ax.bar(x + 0.2, main["chance"].fillna(0.0), 0.4, yerr=_interval(main, "chance"), capsize=3,
               color="0.7", label="chance: the region's area share")  # fmt: skip
        for i in np.flatnonzero(main["n_images"].isna().to_numpy()):
            ax.text(x[i], 0.02, "no image", rotation=90, ha="center", va="bottom", fontsize=7, color="0.4")
        ax.set_xticks(x, list(REGIONS), fontsize=8)
        ax.set_title(model_set, fontsize=10)
        ax.set_ylim(0, 1)
        if column == 0:
            ax.set_ylabel(f"share of CAM mass ({mass})")
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.tick_params(labelleft=False)
    pointing = rows[rows["region"] == POINTING].set_index("model_set").reindex(model_sets)
    ax = fig.add_subplot(grid[1, :])
    xs = np.arange(len(model_sets))
    ax.bar(xs - 0.2, pointing["share"].fillna(0.0), 0.4, yerr=_interval(pointing, "share"), capsize=3,
           color="tab:blue", label="hit rate: the CAM's maximum within the lesion")  # fmt: skip
    ax.bar(xs + 0.2, pointing["chance"].fillna(0.0), 0.4, yerr=_interval(pointing, "chance"), capsize=3,
           color="0.7", label="chance: a random point lands in the lesion (its area share, with tolerance)")  # fmt: skip
    for i, n in enumerate(pointing["n_images"].to_numpy(float)):
        ax.text(xs[i] - 0.2, 0.02, "no image" if np.isnan(n) else f"n = {int(n)}", ha="center", va="bottom",
                fontsize=7, color="white" if not np.isnan(n) else "0.4")  # fmt: skip
    ax.set_xticks(xs, model_sets, fontsize=8)
    ax.set(ylim=(0, 1), ylabel="pointing-game hit rate", title="pointing game, images with a lesion")
    ax.title.set_fontsize(10)
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        "Where the CAM points: its share in each region vs chance (95 % patient-bootstrap intervals)",
        fontsize=11,
    )
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
    with ``crop`` (default :func:`densenet_interp.data.frames.crop_frame`, returning ``(cropped, box)``; box None
    when no frame was found), both versions are resized to ``image_size`` as the pipeline does, and the masks
    (rasterised at full resolution) are cut to the same box and resized alike. Returns the rows of
    :func:`localisation_table` with a ``condition`` column (``as_is``/``cropped``) and ``cropped`` (bool:
    did the cropper find a frame). Each version is explained ``batch_size`` images at a time.
    """
    from ..data.images import read_radiograph, resize_square
    from ..explain.engine import iter_explanations

    _require_columns(images, ("path", "abs_path", "patient", "label"), "images")
    crop = crop or _default_crop()
    masks_for = masks_for or _phantom_masks_for()
    read = read or read_radiograph
    versions: dict[str, list] = {"as_is": [], "cropped": []}
    found = []
    image_annotations = [_annotation(annotations, path) for path in images["path"]]
    pairs = zip(images["abs_path"], image_annotations, strict=True)
    for abs_path, annotation in progress(pairs, total=len(images), what=f"frame crops ({model_set})"):
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
        explained = iter_explanations(explainer, [image for image, _ in items], batch_size)
        batches = progress(explained, total=-(-len(items) // batch_size), what=f"frame experiment ({name})",
                           unit="batch")  # fmt: skip
        for start, explanation in batches:
            tolerance = grid_tolerance(image_size, np.shape(explanation.cam_lowres)[1], tolerance_cells)
            chunk = items[start : start + batch_size]
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
    from ..data.frames import crop_frame

    return crop_frame
