"""Evaluation plots: ROC curves and confusion matrices of the four model sets (matplotlib, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..models.inference import THRESHOLD
from ..profiles import MODEL_SETS


def roc_curves(predictions: dict[str, pd.DataFrame]) -> Figure:
    """One ROC curve per model set on its own validation images, AUROC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(5.2, 5), layout="constrained")
    ax = fig.subplots()
    for name, table in predictions.items():
        y, p = table["label"].to_numpy(), table["probability"].to_numpy()
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{MODEL_SETS[name].title} (AUROC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC, image level, validation")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def confusion_matrices(predictions: dict[str, pd.DataFrame], threshold: float = THRESHOLD) -> Figure:
    """Image-level confusion matrices at the paper's threshold (:data:`THRESHOLD`), counts and row shares."""
    from sklearn.metrics import confusion_matrix

    fig = Figure(figsize=(3.2 * len(predictions), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(predictions)))
    for ax, (name, table) in zip(axes, predictions.items(), strict=True):
        matrix = confusion_matrix(table["label"], table["probability"] > threshold, labels=[0, 1])
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                f"{count}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shares[i, j] > 0.6 else "black",
            )
        ax.set_xticks([0, 1], ["normal", "abnormal"])
        ax.set_yticks([0, 1], ["normal", "abnormal"])
        ax.set(xlabel="predicted", ylabel="true", title=name)
    return fig


def save(fig: Figure, path: str | Path, *, data_label: str | None, dpi: int = 120) -> Path:
    """Write a figure atomically (format from the suffix), with its data label as a footer and in the file's
    metadata (:func:`~densenet_interp.paths.save_figure_atomic`)."""
    from ..paths import save_figure_atomic

    return save_figure_atomic(fig, path, data_label=data_label, dpi=dpi)
