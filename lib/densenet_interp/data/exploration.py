"""Data exploration for notebook 00: the paper's Figure 1 panels, a sample grid and distribution plots.

Figure 1 of the paper shows six kinds of radiograph: a normal wrist, foreign objects at the wrist, foreign
objects in a thumb, a wrist fracture, a degenerated wrist joint and a degenerated finger joint. On the phantom
MURA the panels are picked from the dataset by the generator's ground-truth annotation; a kind the dataset does
not hold (small profiles) is rendered on demand as the generator's named case, and its title says so. On real
MURA (no annotations) they are picked by body part and label only, and the titles say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .images import read_radiograph

# (panel title, body part, label, phantom abnormality kind, the phantom's named case for that panel)
FIGURE1_PANELS = (
    ("(a) Normal wrist", "XR_WRIST", 0, "normal", "wrist_normal"),
    ("(b) Foreign objects at the wrist", "XR_WRIST", 1, "hardware", "wrist_foreign_object"),
    ("(c) Foreign objects in thumb", "XR_FINGER", 1, "hardware", "thumb_nails"),
    ("(d) Wrist fracture", "XR_WRIST", 1, "fracture", "wrist_fracture"),
    ("(e) Degenerated wrist joint", "XR_WRIST", 1, "degenerative", "wrist_degenerative"),
    ("(f) Degenerated finger joint", "XR_FINGER", 1, "degenerative", "finger_degenerative"),
)


@dataclass(frozen=True)
class Sample:
    """One panel: an image file of the dataset, or an image rendered on demand (``image`` set)."""

    title: str
    path: str  # relative path as in the index CSV ("" for a rendered case)
    abs_path: str
    image: np.ndarray | None = None

    def pixels(self) -> np.ndarray:
        return self.image if self.image is not None else read_radiograph(self.abs_path)


def _annotated_images(images: pd.DataFrame, annotations: dict | None) -> pd.DataFrame:
    """The image table with the phantom's abnormality kind beside each image (None on real MURA)."""
    table = images.copy()
    table["kind"] = [
        (annotations.get(p, {}).get("kind") if annotations else None) for p in table["path"].tolist()
    ]
    table["has_lesion"] = [
        bool(annotations.get(p, {}).get("lesion")) if annotations else False for p in table["path"].tolist()
    ]
    return table


def pick_figure1(images: pd.DataFrame, annotations: dict | None, long_side: int = 512) -> list[Sample]:
    """One image per Figure 1 panel: by annotated kind on phantom data, by body part and label on MURA.

    On phantom data a kind missing from the dataset is rendered as the generator's named case.
    """
    table = _annotated_images(images, annotations)
    samples = []
    for title, part, label, kind, case_name in FIGURE1_PANELS:
        rows = table[(table["body_part"] == part) & (table["label"] == label)]
        if annotations:
            rows = rows[rows["kind"] == kind]
            if label == 1:
                rows = rows[rows["has_lesion"]]
        else:
            title = f"{title.split(')')[0]}) {part} {'abnormal' if label else 'normal'} (kind unknown)"
        if not rows.empty:
            row = rows.sort_values("path").iloc[0]
            samples.append(Sample(title, row["path"], row["abs_path"]))
        elif annotations:
            from ..phantom import render_case

            image, _ = render_case(case_name, long_side=long_side, seed=0)
            samples.append(Sample(f"{title}\n(rendered case '{case_name}')", "", "", image))
        else:
            raise LookupError(f"no image for Figure 1 panel {title!r} ({part}, label {label})")
    return samples


def pick_sample_grid(images: pd.DataFrame, annotations: dict | None, seed: int = 0) -> list[Sample]:
    """One normal and one abnormal (lesion-visible where known) image per body part, for the README grid."""
    table = _annotated_images(images, annotations)
    rng = np.random.default_rng(seed)
    samples = []
    for part in sorted(table["body_part"].unique()):
        for label in (0, 1):
            rows = table[(table["body_part"] == part) & (table["label"] == label)]
            if annotations and label == 1:
                rows = rows[rows["has_lesion"]]
            if rows.empty:
                continue
            row = rows.iloc[int(rng.integers(len(rows)))]
            kind = row["kind"] or ("abnormal" if label else "normal")
            samples.append(Sample(f"{part[3:].lower()}: {kind}", row["path"], row["abs_path"]))
    return samples


def plot_samples(samples: list[Sample], ncols: int, suptitle: str, panel_inches: float = 2.4) -> Figure:
    """A grid of radiographs with their titles (grey colour map, no axes)."""
    nrows = int(np.ceil(len(samples) / ncols))
    fig = Figure(figsize=(panel_inches * ncols, panel_inches * nrows * 1.1), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, sample in zip(axes.flat, samples, strict=False):
        ax.imshow(sample.pixels(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(sample.title, fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_distributions(index, sizes: pd.DataFrame) -> Figure:
    """Class balance per body part and split, images per study, and image sizes (seaborn)."""
    import seaborn as sns

    studies = index.studies.assign(label_name=index.studies["label"].map({0: "normal", 1: "abnormal"}))
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax_balance, ax_per_study, ax_sizes = fig.subplots(1, 3)
    sns.countplot(
        data=studies,
        y="body_part",
        hue="label_name",
        hue_order=["normal", "abnormal"],
        ax=ax_balance,
        palette=["#4c72b0", "#dd8452"],
    )
    ax_balance.set_title("Studies per body part and label (train + valid)")
    sns.countplot(data=studies, x="n_images", hue="split", ax=ax_per_study)
    ax_per_study.set_title("Images per study")
    sns.scatterplot(data=sizes, x="width", y="height", hue="body_part", s=12, ax=ax_sizes)
    ax_sizes.set_title(f"Image sizes (sample of {len(sizes)})")
    return fig


def image_sizes(images: pd.DataFrame, n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Width and height of a random sample of images (PNG headers only, no decode)."""
    from PIL import Image

    sample = images.sample(min(n, len(images)), random_state=seed)
    rows = []
    for path, part in zip(sample["abs_path"], sample["body_part"], strict=True):
        with Image.open(path) as img:
            rows.append({"body_part": part, "width": img.width, "height": img.height, "mode": img.mode})
    return pd.DataFrame(rows)
