"""The training schedule of the paper (section 3): the learning rate of each epoch, and which epoch is kept.

- :func:`learning_rate_at`: the step schedule "divided by 10, 50 and 100 after 25 %, 50 % and 75 % of the
  epochs" (the divisors and fractions come from the profile).
- :func:`select_epochs`: the paper's choice of the epoch "with the smallest gap between training and
  validation accuracy", with the majority-class filter this project adds (:data:`SELECTION_RULE`; a departure
  every profile lists), beside the least-validation-loss epoch.
- :func:`epochs_to_keep`: which epochs' weights the large models keep on disk (the rest are pruned).

Pure functions of a history table and a profile: no TensorFlow, so the rules are tested on histories built
for the purpose (:mod:`densenet_interp.models.training` runs them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..profiles import Profile

SELECTION_RULE = (
    "the epoch with the least |training accuracy - validation accuracy| (paper, section 3: 'to avoid "
    "over-fitting'), among the epochs whose validation accuracy beats the validation majority-class rate "
    "(all epochs if none does); ties go to the lower validation loss, then to the earlier epoch"
)


def majority_rate(labels) -> float:
    """Accuracy of always predicting the more frequent class: the bar an epoch must clear to be selected."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if labels.size == 0:
        return 0.0
    share = float(labels.mean())
    return max(share, 1.0 - share)


KEEP_ALL_EPOCHS_MAX_PARAMS = 5_000_000  # keep every epoch's weights below this size (the compact models)


def learning_rate_at(epoch: int, profile: Profile) -> float:
    """The learning rate of ``epoch`` (0-based): ``profile.learning_rate`` divided by the divisor of the last
    drop whose fraction of ``profile.epochs`` has passed (paper: /10, /50, /100 at 25 %, 50 %, 75 %)."""
    if not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer (0-based), got {epoch!r}")
    divisor = 1.0
    for fraction, drop in zip(profile.lr_drop_fractions, profile.lr_drop_divisors, strict=True):
        if epoch >= fraction * profile.epochs - 1e-9:
            divisor = drop
    return profile.learning_rate / divisor


def select_epochs(history: pd.DataFrame, val_majority: float | None = None) -> tuple[int, int]:
    """``(selected epoch, least-validation-loss epoch)``, 1-based, from history rows (see SELECTION_RULE).

    The paper's rule alone prefers the first epochs of a short run, where a model that has learnt nothing
    predicts the majority class on both splits and so shows no gap; ``val_majority`` (see
    :func:`majority_rate`) excludes those epochs, as long as any epoch beats it.
    """
    if history.empty:
        raise ValueError("history has no epochs; expected at least one finished epoch")
    candidates = history
    if val_majority is not None and (history["val_accuracy"] > val_majority + 1e-9).any():
        candidates = history[history["val_accuracy"] > val_majority + 1e-9]
    gap = (candidates["accuracy"] - candidates["val_accuracy"]).abs()
    ranked = candidates.assign(_gap=gap.round(12)).sort_values(["_gap", "val_loss", "epoch"], kind="stable")
    by_loss = history.sort_values(["val_loss", "epoch"], kind="stable")
    return int(ranked["epoch"].iloc[0]), int(by_loss["epoch"].iloc[0])


def epochs_to_keep(history: pd.DataFrame, val_majority: float | None = None) -> set[int]:
    """The epochs (1-based) whose weights a large model keeps while it trains: the selected and the
    least-validation-loss epoch of the history so far (either may still be chosen) and the last epoch (the one
    a resumed run continues from). Every other epoch's weights can be deleted."""
    if history.empty:
        return set()
    return set(select_epochs(history, val_majority)) | {int(history["epoch"].max())}
