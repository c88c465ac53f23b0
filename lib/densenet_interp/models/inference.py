"""Batch inference: per-image probabilities of a trained model on the validation images of its body parts.

The images come from the decode-once cache of :mod:`densenet_interp.data.pipeline`, so evaluation never decodes a
PNG that training already decoded. The result is the predictions table the evaluation notebook writes to
``results/<profile>/predictions/<model_set>.csv``: ``path, body_part, study_key, patient, label, probability``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.images import to_model_input
from ..paths import write_csv_atomic
from ..profiles import ModelSet

THRESHOLD = 0.5
"""The paper: "a final prediction value above 0.5 was regarded as positive (i.e. abnormal)". The one threshold."""

PREDICTION_COLUMNS = ("path", "body_part", "study_key", "patient", "label", "probability")
"""The columns of a predictions table (``results/<profile>/predictions/<model_set>.csv``), in order."""


def is_abnormal(probability):
    """True where ``probability`` (a float or an array) is above :data:`THRESHOLD`, the paper's rule."""
    return np.asarray(probability) > THRESHOLD if np.ndim(probability) else float(probability) > THRESHOLD


def verdict(probability: float) -> str:
    """``"abnormal"`` or ``"normal"`` for one probability, by :data:`THRESHOLD`."""
    return "abnormal" if is_abnormal(probability) else "normal"


def predict_images(model, images_u8: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Sigmoid probabilities for uint8 images (N, S, S), in batches (inference mode, no augmentation)."""
    probabilities = []
    for start in range(0, len(images_u8), batch_size):
        batch = to_model_input(images_u8[start : start + batch_size])
        probabilities.append(np.asarray(model.predict_on_batch(batch)).reshape(-1))
    return np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)


def predictions_table(model, index, model_set: ModelSet, cache, split: str = "valid") -> pd.DataFrame:
    """Predict every image of ``split`` for the model set's body parts; one row per image."""
    from ..data.mura import select_images

    images = select_images(index, split, model_set.body_parts).reset_index(drop=True)
    probabilities = predict_images(model, cache.arrays_for(images["path"].tolist()))
    table = images[[c for c in PREDICTION_COLUMNS if c != "probability"]].copy()
    table["probability"] = probabilities.astype(float)
    return table


def write_predictions(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a predictions table atomically as CSV."""
    return write_csv_atomic(table[list(PREDICTION_COLUMNS)], path, index=False, float_format="%.6f")
