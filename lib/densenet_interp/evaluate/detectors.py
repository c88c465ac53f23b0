"""How well the image-evidence detectors find what the phantom knows is there: precision and recall.

Two detectors read radiographs without a model: :func:`densenet_interp.data.metal.find_metal` (orthopaedic
hardware) and :func:`densenet_interp.data.frames.detect_frame` (a frame or collimation boundary). On real MURA
they choose the paper's case figures (:mod:`densenet_interp.explain.cases`); here they are scored on the phantom
MURA, whose annotations say which image has hardware (abnormality kind "hardware", visible in the view) and
which has a frame (a frame box). One row per detector and split: the counts, precision and recall with 95 %
Wilson intervals. The metal detector's constants were chosen on the training split of the ``mini`` phantom, so
its validation rows are the held-out measurement.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from ..data.frames import detect_frame
from ..data.images import read_radiograph
from ..data.metal import find_metal

DETECTORS = ("metal", "frame")
COLUMNS = [
    "detector",
    "split",
    "images",
    "with_it",
    "detected",
    "true_positives",
    "precision",
    "precision_low",
    "precision_high",
    "recall",
    "recall_low",
    "recall_high",
    "truth",
]
TRUTH = {
    "metal": 'annotation kind "hardware" and lesion_visible',
    "frame": "annotation frame_box is not null",
}


def has_metal(annotation: dict) -> bool:
    """The phantom's ground truth for :func:`find_metal`: hardware that the view shows."""
    return annotation["kind"] == "hardware" and bool(annotation["lesion_visible"])


def has_frame(annotation: dict) -> bool:
    """The phantom's ground truth for :func:`detect_frame`."""
    return annotation.get("frame_box") is not None


def detect(abs_path: str) -> tuple[bool, bool]:
    """``(metal found, frame found)`` for one image file."""
    image = read_radiograph(abs_path)
    return find_metal(image).found, detect_frame(image) is not None


def _proportion(hits: int, total: int) -> tuple[float, float, float]:
    if total == 0:
        return (float("nan"),) * 3
    interval = binomtest(hits, total).proportion_ci(confidence_level=0.95, method="wilson")
    return hits / total, float(interval.low), float(interval.high)


def detector_table(images: pd.DataFrame, annotations: dict, workers: int = 2) -> pd.DataFrame:
    """Score both detectors on ``images`` (a MURA index's images table: ``path``, ``abs_path``, ``split``).

    ``annotations`` maps each image path to its phantom annotation (:func:`~densenet_interp.phantom.load_annotations`).
    """
    missing = [path for path in images["path"] if path not in annotations]
    if missing:
        raise ValueError(
            f"{len(missing)} images have no phantom annotation (first: {missing[0]!r}); expected a phantom dataset"
        )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = np.array(list(pool.map(detect, images["abs_path"].tolist())), dtype=bool).reshape(-1, 2)
    truth = np.array(
        [(has_metal(annotations[p]), has_frame(annotations[p])) for p in images["path"]], dtype=bool
    ).reshape(-1, 2)
    rows = []
    for column, detector in enumerate(DETECTORS):
        for split in sorted(images["split"].unique()):
            chosen = (images["split"] == split).to_numpy()
            said, real = found[chosen, column], truth[chosen, column]
            hits = int((said & real).sum())
            precision = _proportion(hits, int(said.sum()))
            recall = _proportion(hits, int(real.sum()))
            rows.append(
                [
                    detector,
                    split,
                    int(chosen.sum()),
                    int(real.sum()),
                    int(said.sum()),
                    hits,
                    *precision,
                    *recall,
                ]
                + [TRUTH[detector]]
            )
    return pd.DataFrame(rows, columns=COLUMNS)
