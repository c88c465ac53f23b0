"""Metrics and tables: the paper's Table 1 (image-level accuracy and Cohen's kappa) and an extended version.

The paper evaluates each model set on the validation images of its own body parts, image by image, calling a
probability above 0.5 abnormal (section 3; :data:`~densenet_interp.models.inference.THRESHOLD`). :func:`table1`
reproduces that layout with the paper's values beside ours. :func:`table1_extended` adds AUROC, sensitivity,
specificity, the MURA paper's study-level aggregation (mean probability of a study's images) and 95 % percentile
bootstrap intervals. The bootstrap (:mod:`densenet_interp.evaluate.stats`) resamples *patients*, not images: a
patient's images (and studies) are correlated, so resampling them one by one would make the intervals too narrow.

Predictions contract (``results/<profile>/predictions/<model_set>.csv``): one row per image with columns
``path, body_part, study_key, patient, label, probability``
(:data:`~densenet_interp.models.inference.PREDICTION_COLUMNS`, written by
:func:`~densenet_interp.models.inference.write_predictions`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..errors import DataError
from ..models.inference import PREDICTION_COLUMNS, THRESHOLD
from ..profiles import BODY_PARTS, MODEL_SETS
from .stats import LEVEL, bootstrap_distribution, percentile_interval


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 1: its label and its image-level validation accuracy and kappa."""

    label: str
    accuracy: float
    kappa: float


# The paper's Table 1, in its row order, keyed by model set name (profiles.MODEL_SETS).
PAPER_TABLE1: dict[str, PaperRow] = {
    "all_pretrained": PaperRow("All Extremity Types (pre-trained)", 0.830, 0.658),
    "wrist_pretrained": PaperRow("Wrist-Only (pre-trained)", 0.862, 0.717),
    "wrist_random": PaperRow("Wrist-Only (random initialised)", 0.778, 0.539),
    "finger_pretrained": PaperRow("Finger-Only (pre-trained)", 0.766, 0.622),
}


# ----------------------------------------------------------------------------------------------------------
# metrics on arrays (vectorised numpy; equal to scikit-learn's, but fast enough for 1000s of bootstrap calls)


def _arrays(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(prob, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"expected two 1-D arrays of equal length, got shapes {y.shape} and {p.shape}")
    if y.size == 0:
        raise ValueError("expected at least one prediction, got none")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(y)[:5].tolist()}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    return y.astype(np.int64), p


def accuracy(y_true, prob, threshold: float = THRESHOLD) -> float:
    y, p = _arrays(y_true, prob)
    return float(np.mean((p > threshold) == y))


def cohen_kappa(y_true, prob, threshold: float = THRESHOLD) -> float:
    """Cohen's kappa between labels and thresholded predictions; nan when chance agreement is 1."""
    y, p = _arrays(y_true, prob)
    pred = p > threshold
    observed = np.mean(pred == y)
    true_pos, pred_pos = y.mean(), pred.mean()
    chance = true_pos * pred_pos + (1 - true_pos) * (1 - pred_pos)
    return float("nan") if chance == 1 else float((observed - chance) / (1 - chance))


def auroc(y_true, prob, threshold: float = THRESHOLD) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); nan with one class. Ignores ``threshold``."""
    y, p = _arrays(y_true, prob)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def sensitivity(y_true, prob, threshold: float = THRESHOLD) -> float:
    """Recall of abnormal images; nan without abnormal images."""
    y, p = _arrays(y_true, prob)
    positives = y == 1
    return float(np.mean(p[positives] > threshold)) if positives.any() else float("nan")


def specificity(y_true, prob, threshold: float = THRESHOLD) -> float:
    """Recall of normal images; nan without normal images."""
    y, p = _arrays(y_true, prob)
    negatives = y == 0
    return float(np.mean(p[negatives] <= threshold)) if negatives.any() else float("nan")


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "kappa": cohen_kappa,
    "auroc": auroc,
    "sensitivity": sensitivity,
    "specificity": specificity,
}


def image_metrics(y_true, prob, threshold: float = THRESHOLD) -> dict[str, float]:
    """``n``, accuracy, Cohen's kappa, AUROC (nan with one class), sensitivity and specificity."""
    y, p = _arrays(y_true, prob)
    return {"n": int(y.size), **{name: fn(y, p, threshold) for name, fn in METRICS.items()}}


# ----------------------------------------------------------------------------------------------------------
# predictions frames


def check_predictions(pred_df: pd.DataFrame, source: str | Path | None = None) -> pd.DataFrame:
    """Check a predictions frame against the contract; raise DataError naming ``source`` (or ValueError)."""
    error = (lambda problem: DataError(problem, source)) if source is not None else ValueError
    missing = [c for c in PREDICTION_COLUMNS if c not in pred_df.columns]
    if missing:
        raise error(
            f"predictions lack column(s) {', '.join(missing)}; expected {', '.join(PREDICTION_COLUMNS)}"
        )
    if pred_df.empty:
        raise error("predictions have no rows")
    if not pred_df["label"].isin([0, 1]).all():
        raise error(f"label must be 0 or 1, got {sorted(set(pred_df['label']) - {0, 1})[:5]}")
    prob = pd.to_numeric(pred_df["probability"], errors="coerce")
    if not prob.between(0, 1).all():
        raise error("probability must be a number in [0, 1] in every row")
    return pred_df


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and check ``results/<profile>/predictions/<model_set>.csv``."""
    path = Path(path)
    if not path.is_file():
        raise DataError("predictions file not found", path)
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read predictions CSV ({exc})", path) from None
    return check_predictions(frame, path)


def study_predictions(pred_df: pd.DataFrame) -> pd.DataFrame:
    """Aggregate image predictions per study as the MURA paper does: the mean probability of its images.

    Returns one row per ``study_key`` (first-seen order) with ``patient``, ``body_part``, ``label``,
    ``probability`` and ``n_images``. All images of a study must share its label.
    """
    check_predictions(pred_df)
    grouped = pred_df.groupby("study_key", sort=False)
    mixed = grouped["label"].nunique() > 1
    if mixed.any():
        raise ValueError(f"images of study {mixed[mixed].index[0]!r} carry different labels")
    studies = grouped.agg(
        patient=("patient", "first"),
        body_part=("body_part", "first"),
        label=("label", "first"),
        probability=("probability", "mean"),
        n_images=("probability", "size"),
    )
    return studies.reset_index()


# ----------------------------------------------------------------------------------------------------------
# tables


def _check_model_sets(predictions: Mapping[str, pd.DataFrame]) -> None:
    """Refuse unknown model sets and predictions on body parts a model set was not evaluated on."""
    for name, frame in predictions.items():
        if name not in PAPER_TABLE1:
            raise ValueError(f"unknown model set {name!r}; expected some of {', '.join(PAPER_TABLE1)}")
        check_predictions(frame)
        foreign = sorted(set(frame["body_part"]) - set(MODEL_SETS[name].body_parts))
        if foreign:
            raise ValueError(
                f"predictions for {name} include body part(s) {', '.join(foreign)}; the paper evaluates "
                f"{name} on {', '.join(MODEL_SETS[name].body_parts)} only"
            )


# Table 1's columns: machine names (CSV-friendly) -> the paper's headers (Markdown).
TABLE1_COLUMNS = {
    "model_set": "",
    "title": "Model Set",
    "validation_accuracy": "Validation Accuracy",
    "paper_validation_accuracy": "Validation Accuracy (paper)",
    "cohens_kappa": "Cohen's Kappa Statistics",
    "paper_cohens_kappa": "Cohen's Kappa Statistics (paper)",
    "n_images": "Validation Images",
}


def table1(predictions: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The paper's Table 1: its four rows in its order, with its labels, and ours beside its values.

    Columns: see :data:`TABLE1_COLUMNS` (``model_set`` is a column, so ``to_csv(index=False)`` keeps it).
    Model sets without predictions get nan for ours and ``n_images`` 0.
    """
    _check_model_sets(predictions)
    rows = []
    for name, paper in PAPER_TABLE1.items():
        ours = predictions.get(name)
        acc = kappa = math.nan
        n = 0
        if ours is not None:
            y, p = ours["label"].to_numpy(), ours["probability"].to_numpy()
            acc, kappa, n = accuracy(y, p), cohen_kappa(y, p), len(ours)
        rows.append([name, paper.label, acc, paper.accuracy, kappa, paper.kappa, n])
    return pd.DataFrame(rows, columns=list(TABLE1_COLUMNS))


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def table1_markdown(table: pd.DataFrame, data_label: str) -> str:
    """Table 1 as Markdown with the paper's headers, then where our numbers (``data_label``) and the paper's
    come from."""
    shown = [c for c in TABLE1_COLUMNS if c != "model_set"]
    lines = [
        "Table 1: Performance metrics for the different model sets (image level, validation images of each "
        f"model set's body parts, probability > {THRESHOLD} = abnormal)",
        "",
        "| " + " | ".join(TABLE1_COLUMNS[c] for c in shown) + " |",
        "| --- |" + " ---: |" * (len(shown) - 1),
    ]
    for _, row in table.iterrows():
        cells = [row["title"]] + [_fmt(row[c]) for c in shown[1:-1]] + [str(int(row["n_images"]))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Ours: {data_label}.",
        "Paper: MURA v1.1 (real), DenseNet-169, ImageNet pre-training, 320x320, 32 epochs (its Table 1).",
    ]
    return "\n".join(lines) + "\n"


_EXTENDED_IMAGE_METRICS = ("accuracy", "kappa", "auroc", "sensitivity", "specificity")
_EXTENDED_STUDY_METRICS = ("accuracy", "kappa")


def _with_intervals(
    frame: pd.DataFrame, names: tuple[str, ...], prefix: str, n_boot: int, seed: int
) -> dict[str, float]:
    """Point estimates and 95 % patient-bootstrap intervals of ``names`` on ``frame``, keys ``<prefix><name>``."""
    y, p = frame["label"].to_numpy(), frame["probability"].to_numpy()
    chosen = {name: METRICS[name] for name in names}
    boot = bootstrap_distribution(frame, chosen, n_boot=n_boot, seed=seed, group="patient")
    out: dict[str, float] = {}
    for name, fn in chosen.items():
        low, high = percentile_interval(boot[name].to_numpy(), LEVEL)
        out.update({f"{prefix}{name}": fn(y, p), f"{prefix}{name}_low": low, f"{prefix}{name}_high": high})
    return out


def table1_extended(
    predictions: Mapping[str, pd.DataFrame], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per model set (paper order): image- and study-level metrics with 95 % patient-bootstrap intervals.

    Columns: ``model_set``, ``title``, ``n_images``, ``n_studies``, ``n_patients``; image level (the paper's
    level, unprefixed): ``accuracy``, ``kappa``, ``auroc``, ``sensitivity``, ``specificity``, each followed by
    ``<metric>_low`` and ``<metric>_high``; study level (probability = mean of the study's images):
    ``study_accuracy`` and ``study_kappa`` with their ``_low``/``_high``.
    """
    _check_model_sets(predictions)
    rows = []
    for name in (n for n in PAPER_TABLE1 if n in predictions):
        images = predictions[name]
        studies = study_predictions(images)
        rows.append(
            {
                "model_set": name,
                "title": PAPER_TABLE1[name].label,
                "n_images": len(images),
                "n_studies": len(studies),
                "n_patients": images["patient"].nunique(),
                **_with_intervals(images, _EXTENDED_IMAGE_METRICS, "", n_boot, seed),
                **_with_intervals(studies, _EXTENDED_STUDY_METRICS, "study_", n_boot, seed),
            }
        )
    return pd.DataFrame(rows)


def per_body_part(pred_df: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Image-level metrics per body part (MURA order) and over all images (last row, ``body_part`` "all").

    Columns: ``body_part``, ``n``, ``accuracy``, ``kappa``, ``auroc``, ``sensitivity``, ``specificity``.
    """
    check_predictions(pred_df)
    rows = []
    for part in [p for p in BODY_PARTS if p in set(pred_df["body_part"])] + ["all"]:
        subset = pred_df if part == "all" else pred_df[pred_df["body_part"] == part]
        rows.append({"body_part": part, **image_metrics(subset["label"], subset["probability"], threshold)})
    return pd.DataFrame(rows)


def per_abnormality_kind(
    predictions: Mapping[str, pd.DataFrame], annotations: Mapping[str, dict], threshold: float = THRESHOLD
) -> pd.DataFrame:
    """Share of images called abnormal, per model set, label and rendered kind (phantom data only).

    The phantom's annotation says what each image really shows (``kind``; ``lesion`` empty when an abnormal
    study's lesion is hidden in that view), so this tells which abnormalities a model detects, which Table 1's
    single accuracy cannot: e.g. hardware found, fractures missed. Columns: ``model_set``, ``label``, ``kind``,
    ``lesion_visible``, ``n``, ``called_abnormal`` (share with probability > threshold), ``mean_probability``.
    """
    rows = []
    for name, table in predictions.items():
        check_predictions(table)
        missing = [p for p in table["path"] if p not in annotations]
        if missing:
            raise ValueError(
                f"{len(missing)} predicted images of {name} have no phantom annotation (first: {missing[0]}); "
                "expected predictions on the annotated phantom dataset"
            )
        frame = table.assign(
            kind=[annotations[p]["kind"] for p in table["path"]],
            lesion_visible=[bool(annotations[p].get("lesion")) for p in table["path"]],
            called=table["probability"] > threshold,
        )
        for (label, kind, visible), group in frame.groupby(["label", "kind", "lesion_visible"], sort=True):
            rows.append(
                {
                    "model_set": name,
                    "label": int(label),
                    "kind": kind,
                    "lesion_visible": bool(visible),
                    "n": len(group),
                    "called_abnormal": float(group["called"].mean()),
                    "mean_probability": float(group["probability"].mean()),
                }
            )
    return pd.DataFrame(rows)
